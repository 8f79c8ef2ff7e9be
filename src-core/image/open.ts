import type { ByteSource } from '../io/bytes.ts';
import { CorruptImageError, InvalidArgumentError, MissingFileError, NotThisFormatError, UnsupportedError, withFile } from '../io/errors.ts';
import { GuardedDevice } from './guard.ts';
import { identifyForeign, type ForeignFormat } from './foreignFormats.ts';
import { ChainDevice } from './chain.ts';
import { DEFAULT_LIMITS, type BlockDevice, type FormatDriver, type OpenContext } from './types.ts';

/** Bytes handed to `probe`: enough for every format's magic and the VMDK descriptor check. */
export const PROBE_BYTES = 64 * 1024;

export interface ProbeResult {
  driver: FormatDriver;
  score: number;
}

/** Every driver's score for a file, best first (ties keep registry order). */
export async function probeAll(src: ByteSource, drivers: readonly FormatDriver[]): Promise<ProbeResult[]> {
  return (await probeDetailed(src, drivers)).scored;
}

/**
 * The drivers' scores, and — when nothing better than raw claims the file — the format qemu-img
 * knows and DiskFerry cannot read that the bytes are (image/foreignFormats.ts), if any; and the
 * head it read, for callers that look further (the page's rawDoubt).
 */
export async function probeDetailed(
  src: ByteSource,
  drivers: readonly FormatDriver[],
): Promise<{ scored: ProbeResult[]; foreign?: ForeignFormat; head: Uint8Array }> {
  const head = await src.read(0, Math.min(PROBE_BYTES, src.size));
  const scored: ProbeResult[] = [];
  for (const driver of drivers) {
    const score = await driver.probe(head, src.size, src.name, src);
    if (score > 0) scored.push({ driver, score });
  }
  scored.sort((a, b) => b.score - a.score);
  const best = scored[0];
  if (best && best.driver.name !== 'raw') return { scored, head };
  const foreign = await identifyForeign(
    head,
    src.size,
    src,
    drivers.map((d) => d.name),
  );
  return foreign ? { scored, foreign, head } : { scored, head };
}

/**
 * The driver for a file. A file only raw claims but whose bytes are a format DiskFerry cannot
 * read is refused rather than taken as raw: its metadata would otherwise be copied as guest data.
 */
export async function probe(src: ByteSource, drivers: readonly FormatDriver[]): Promise<FormatDriver> {
  const { scored, foreign } = await probeDetailed(src, drivers);
  if (foreign) throw new UnsupportedError(src.name, `this is a ${foreign.name} image, which DiskFerry cannot read yet`);
  const [best] = scored;
  if (!best) throw new NotThisFormatError(src.name, 'not a disk image format DiskFerry knows');
  return best.driver;
}

export function findDriver(drivers: readonly FormatDriver[], name: string): FormatDriver {
  const d = drivers.find((x) => x.name === name);
  if (!d) throw new InvalidArgumentError(`unknown format "${name}" (known: ${drivers.map((x) => x.name).join(', ')})`);
  return d;
}

export interface OpenImageOptions extends OpenContext {
  /** Force a format instead of probing (-f). */
  format?: string;
}

/**
 * Opens an image and, unless told not to, its whole backing chain through the resolver.
 * A chain that loops or grows past the depth limit is refused before it can exhaust anything.
 * Takes ownership of `src`: it is closed with the device, or at once if opening fails.
 */
export async function openImage(
  src: ByteSource,
  drivers: readonly FormatDriver[],
  opts: OpenImageOptions,
  seen: string[] = [],
): Promise<BlockDevice> {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  let layer: BlockDevice;
  try {
    const driver = opts.format ? findDriver(drivers, opts.format) : await probe(src, drivers);
    layer = new GuardedDevice(await driver.open(src, { ...opts, drivers }));
  } catch (e) {
    await src.close?.();
    throw withFile(e, src.name);
  }
  const ref = layer.backingRef;
  if (!ref || opts.noBacking) return layer;
  try {
    if (seen.includes(src.name)) throw new CorruptImageError(src.name, `backing chain loops back to "${src.name}"`);
    if (seen.length + 1 >= limits.maxChainDepth) {
      throw new UnsupportedError(src.name, `backing chain deeper than ${limits.maxChainDepth} images`);
    }
    if (!opts.resolver) throw new MissingFileError(src.name, ref.name, 'backing file');
    const backingSrc = await opts.resolver.open(ref.name, src.name);
    // The snapshot, password and driver options belong to the top image only.
    const backing = await openImage(
      backingSrc,
      drivers,
      {
        ...opts,
        format: ref.format ?? opts.backingFormat,
        backingFormat: undefined,
        snapshot: undefined,
        password: undefined,
        driverOptions: undefined,
      },
      [...seen, src.name],
    );
    return new ChainDevice(layer, backing);
  } catch (e) {
    await layer.close();
    throw e;
  }
}
