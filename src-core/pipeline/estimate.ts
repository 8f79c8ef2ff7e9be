import type { ByteSink, FileResolver } from '../io/bytes.ts';
import { isAllZero } from '../io/struct.ts';
import { coalesce } from '../image/extents.ts';
import { DelegatingDevice } from '../image/delegatingDevice.ts';
import type { BlockDevice, CreateOptions, Extent, FormatDriver } from '../image/types.ts';
import { convert } from './convert.ts';
import type { ProgressCallback } from './progress.ts';

/** The output size a conversion will have, found before it runs. */
export interface SizeEstimate {
  /** Bytes of every output file together. */
  bytes: number;
  /** Bytes of the source's data that are not zeros (raw disks learn it only by reading). */
  nonZeroBytes: number;
  /** True when measured on the whole source; false when extrapolated from a sample. */
  exact: boolean;
  /** Seconds the conversion's computing takes for all the source's data, as the dry run measured it (writing not included). */
  seconds: number;
}

export interface EstimateOptions {
  source: BlockDevice;
  target: FormatDriver;
  /** `virtualSize` when the output is larger than the source (a destination's size rule). */
  create: Omit<CreateOptions, 'virtualSize' | 'resolver'> & { resolver?: FileResolver; virtualSize?: number };
  /** Sources holding at most this much data are converted whole (exact); larger ones are sampled. */
  wholeUpTo?: number;
  /** Data a sample holds, roughly. */
  sampleBytes?: number;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
}

/** Windows a sample keeps or drops whole: the largest allocation unit of any writer (VHDX's 32 MiB blocks). */
const SAMPLE_WINDOW = 32 * 1024 * 1024;
/** Units the zero count looks at (the converter's granularity is 64 KiB or less). */
const ZERO_UNIT = 64 * 1024;

/**
 * The exact way to know an output's size is to write it; this does, into sinks that keep
 * nothing but the highest byte written. A small source is converted whole, so the estimate is
 * the size (compression included); a large one is converted through a sample — every k-th
 * 32 MiB window of its data — and the growth over an empty image is scaled up to all the data.
 * Zero detection happens as in a real conversion, so a raw disk's zeros are found on the way.
 */
export async function estimateOutput(opts: EstimateOptions): Promise<SizeEstimate> {
  const { source } = opts;
  const total = await dataBytes(source);
  const wholeUpTo = opts.wholeUpTo ?? 256 * 1024 * 1024;
  if (total <= wholeUpTo) {
    const counted = new ZeroCountingDevice(source);
    const started = now();
    const bytes = await dryRun(counted, opts);
    return { bytes, nonZeroBytes: counted.nonZero, exact: true, seconds: (now() - started) / 1000 };
  }
  const every = Math.max(2, Math.ceil(total / (opts.sampleBytes ?? 128 * 1024 * 1024)));
  const sample = new ZeroCountingDevice(new SampledDevice(source, every));
  const sampled = await dataBytes(sample);
  const started = now();
  const withSample = await dryRun(sample, opts);
  const seconds = (now() - started) / 1000;
  const empty = await dryRun(new SampledDevice(source, 0), { ...opts, onProgress: undefined });
  const scale = sampled ? total / sampled : 0;
  return {
    bytes: Math.round(empty + (withSample - empty) * scale),
    nonZeroBytes: Math.round(sample.nonZero * scale),
    exact: false,
    seconds: sampled ? (seconds / sampled) * total : 0,
  };
}

async function dataBytes(dev: BlockDevice): Promise<number> {
  let n = 0;
  for await (const e of coalesce(dev.extents())) if (e.kind === 'data') n += e.length;
  return n;
}

/** Converts `source` into counting sinks (the output and any extra files) and returns their total size. */
async function dryRun(source: BlockDevice, opts: EstimateOptions): Promise<number> {
  const sinks: CountingSink[] = [];
  const make = (name: string) => {
    const s = new CountingSink(name);
    sinks.push(s);
    return s;
  };
  const main = make(opts.create.filename);
  const input = opts.create.resolver;
  const resolver: FileResolver = {
    open: (name, rel) => (input ? input.open(name, rel) : Promise.reject(new Error(`cannot open ${name}`))),
    create: async (name) => make(name),
  };
  try {
    await convert({
      source,
      target: opts.target,
      sink: main,
      signal: opts.signal,
      onProgress: opts.onProgress,
      create: { ...opts.create, resolver },
    });
  } finally {
    await main.close(); // opened here, so closed here (the writer closes only the companions it created)
  }
  return sinks.reduce((n, s) => n + s.size, 0);
}

/** A sink that keeps only the file's length. */
class CountingSink implements ByteSink {
  size = 0;
  constructor(readonly name: string) {}
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.size = Math.max(this.size, offset + data.length);
  }
  async truncate(size: number): Promise<void> {
    this.size = size;
  }
  async close(): Promise<void> {}
}

/** Passes a device through and counts the non-zero bytes of its data, in 64 KiB units, as the converter reads them. */
class ZeroCountingDevice extends DelegatingDevice {
  nonZero = 0;
  override async read(offset: number, length: number): Promise<Uint8Array> {
    const b = await this.inner.read(offset, length);
    for (let i = 0; i < b.length; i += ZERO_UNIT) {
      const unit = b.subarray(i, i + ZERO_UNIT);
      if (!isAllZero(unit)) this.nonZero += unit.length;
    }
    return b;
  }
  /** The estimate borrows the source; whoever opened it closes it. */
  override async close(): Promise<void> {}
}

/**
 * The source with only every `every`-th 32 MiB window of data kept (0: none — an empty disk of
 * the same size); the rest reads as unallocated. Windows are whole so that every writer's
 * allocation unit is as full in the sample as in the real thing.
 */
class SampledDevice extends DelegatingDevice {
  constructor(
    inner: BlockDevice,
    private readonly every: number,
  ) {
    super(inner);
  }
  private kept(offset: number): boolean {
    return this.every > 0 && Math.floor(offset / SAMPLE_WINDOW) % this.every === 0;
  }
  override async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    for await (const e of this.inner.extents(from, to)) {
      for (let pos = e.offset; pos < e.offset + e.length;) {
        const end = Math.min(e.offset + e.length, (Math.floor(pos / SAMPLE_WINDOW) + 1) * SAMPLE_WINDOW);
        const keep = e.kind !== 'data' || this.kept(pos);
        yield { offset: pos, length: end - pos, kind: keep ? e.kind : 'unallocated' };
        pos = end;
      }
    }
  }
  override async read(offset: number, length: number): Promise<Uint8Array> {
    // The converter reads only where extents say data, so dropped windows are rarely asked for;
    // when they are, they read as zeros (on a copy: the inner buffer may be a reader's cache).
    let out = await this.inner.read(offset, length);
    let copied = false;
    for (let pos = offset; pos < offset + length;) {
      const end = Math.min(offset + length, (Math.floor(pos / SAMPLE_WINDOW) + 1) * SAMPLE_WINDOW);
      if (!this.kept(pos)) {
        if (!copied) out = out.slice();
        copied = true;
        out.fill(0, pos - offset, end - offset);
      }
      pos = end;
    }
    return out;
  }
  /** The estimate borrows the source; whoever opened it closes it. */
  override async close(): Promise<void> {}
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
