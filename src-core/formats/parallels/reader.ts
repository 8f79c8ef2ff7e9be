import { readExact, readPadded, type ByteSource } from '../../io/bytes.ts';
import { UnsupportedError } from '../../io/errors.ts';
import { readU32Table } from '../../io/struct.ts';
import { unitExtents } from '../../image/extents.ts';
import { planReads, type HostRead } from '../../image/readPlan.ts';
import { DEFAULT_LIMITS, type BlockDevice, type Extent, type ImageInfo, type OpenContext } from '../../image/types.ts';
import { infoBasics } from '../../image/info.ts';
import { readPrlExtension, type PrlBitmap } from './ext.ts';
import { INUSE_MAGIC, parsePrlHeader, PRL_HEADER_BYTES, prlOffMultiplier, type PrlHeader } from './header.ts';

export interface PrlMeta {
  header: PrlHeader;
  bat: Uint32Array;
  clusterSize: number;
}

/** Header and BAT (one read, its size checked against the limit first). */
export async function readPrlMeta(src: ByteSource, ctx: OpenContext): Promise<PrlMeta> {
  const header = parsePrlHeader(src.name, await readExact(src, 0, Math.min(src.size, PRL_HEADER_BYTES)));
  const limits = ctx.limits ?? DEFAULT_LIMITS;
  if (header.batEntries * 4 > limits.maxTableBytes) {
    throw new UnsupportedError(
      src.name,
      `Parallels BAT of ${header.batEntries} entries is larger than the ${limits.maxTableBytes}-byte limit`,
    );
  }
  const bat = readU32Table(await readExact(src, PRL_HEADER_BYTES, header.batEntries * 4), header.batEntries, true);
  return { header, bat, clusterSize: header.tracks * 512 };
}

/**
 * A Parallels expandable image: BAT entry i maps guest cluster i to a file offset (clusters in
 * "WithouFreSpacExt" images, sectors in "WithoutFreeSpace" ones); zero means unallocated.
 */
export class ParallelsDevice implements BlockDevice {
  readonly format = 'parallels';
  readonly virtualSize: number;
  private readonly mult: number;

  private constructor(
    readonly src: ByteSource,
    readonly header: PrlHeader,
    readonly bat: Uint32Array,
    readonly clusterSize: number,
    readonly bitmaps: PrlBitmap[],
  ) {
    this.virtualSize = header.nbSectors * 512;
    this.mult = prlOffMultiplier(header);
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<ParallelsDevice> {
    const { header, bat, clusterSize } = await readPrlMeta(src, ctx);
    // QEMU reads the format extension of images it opens read-only (as we always do).
    const bitmaps = header.extOff ? await readPrlExtension(src, header.extOff * 512, clusterSize, header.nbSectors) : [];
    return new ParallelsDevice(src, header, bat, clusterSize, bitmaps);
  }

  get filename(): string {
    return this.src.name;
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    // Past the BAT everything is unallocated (QEMU's seek_to_sector): one extent, however large
    // a hostile nb_sectors makes the disk, so a walk never steps cluster by cluster through it.
    const batEnd = Math.min(to, this.bat.length * this.clusterSize);
    if (from < batEnd) {
      yield* unitExtents(from, batEnd, this.clusterSize, (i) => {
        const entry = this.bat[i]!;
        return entry ? { kind: 'data', hostOffset: entry * this.mult } : { kind: 'unallocated' };
      });
    }
    const rest = Math.max(from, batEnd);
    if (rest < to) yield { offset: rest, length: to - rest, kind: 'unallocated' };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const reads: HostRead[] = [];
    const size = this.src.size;
    for await (const e of this.extents(offset, Math.min(offset + length, this.virtualSize))) {
      if (e.kind !== 'data') continue;
      const r = { hostOffset: e.hostOffset!, length: e.length, outPos: e.offset - offset };
      // A cluster at or past the end of the file reads as zeros, as QEMU reads a short file
      // (its check calls a cluster that starts exactly at the end of the file valid).
      if (r.hostOffset + r.length <= size) reads.push(r);
      else if (r.hostOffset < size) out.set(await readPadded(this.src, r.hostOffset, r.length), r.outPos);
    }
    await planReads(this.src, reads, (r, bytes) => out.set(bytes, r.outPos));
    return out;
  }

  info(): ImageInfo {
    const h = this.header;
    return {
      ...infoBasics(this.src, 'parallels', this.virtualSize),
      extra: {
        'parallels-magic': h.ext ? 'WithouFreSpacExt' : 'WithoutFreeSpace',
        'parallels-cluster-size': this.clusterSize,
        'parallels-bat-entries': h.batEntries,
        'parallels-in-use': h.inuse === INUSE_MAGIC,
        ...(this.bitmaps.length ? { 'parallels-dirty-bitmaps': this.bitmaps.map((b) => b.id) } : {}),
      },
    };
  }

  async close(): Promise<void> {
    await this.src.close?.();
  }
}
