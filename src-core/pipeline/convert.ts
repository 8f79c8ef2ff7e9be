import type { ByteSink } from '../io/bytes.ts';
import { assertNotAborted, InvalidArgumentError } from '../io/errors.ts';
import { alignUp } from '../io/int64.ts';
import { bytesEqual, isAllZero } from '../io/struct.ts';
import { coalesce } from '../image/extents.ts';
import type { BlockDevice, CreateOptions, FormatDriver, ImageWriter } from '../image/types.ts';
import { ProgressMeter, type ProgressCallback } from './progress.ts';
import { ZeroScout } from './zeroScout.ts';

export interface ConvertOptions {
  source: BlockDevice;
  target: FormatDriver;
  /** The output: left open when convert() returns or throws; the caller that opened it closes it. */
  sink: ByteSink;
  create: Omit<CreateOptions, 'virtualSize'> & { virtualSize?: number };
  /** -B: the opened backing image; output keeps only what differs from it. */
  backing?: BlockDevice;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Bytes read per step; rounded to the writer's granularity. */
  batchSize?: number;
  /**
   * qemu-img -S: a run of zeros after data shorter than this many bytes is written as data.
   * 0 writes every byte, zeros included (a fully allocated output, or a target that is not
   * known to read as zeros: convert -n). Absent: whole all-zero units are never written.
   */
  minSparse?: number;
  /**
   * Opens the source a second time, for a ZeroScout (zeroScout.ts): asked for only when the
   * source's metadata calls every byte data, so its holes can only be found by reading. convert
   * closes what it returns.
   */
  openScout?: () => Promise<BlockDevice>;
}

export interface ConvertResult {
  virtualSize: number;
  bytesRead: number;
  /** Bytes the source's metadata marks as data (the progress total). */
  dataBytes: number;
  /** Bytes of zeros handed to the writer as data (-S, fully allocated output). */
  zeroBytesWritten: number;
  warnings: string[];
}

const DEFAULT_BATCH = 4 * 1024 * 1024;

/** Bytes of a window that metadata says hold data: 0 means there is nothing to read. */
async function windowDataBytes(dev: BlockDevice, from: number, to: number, ranges?: [number, number][]): Promise<number> {
  if (from >= dev.virtualSize) return 0;
  let n = 0;
  for await (const e of dev.extents(from, Math.min(to, dev.virtualSize))) {
    if (e.kind !== 'data') continue;
    n += e.length;
    ranges?.push([e.offset, e.offset + e.length]);
  }
  return n;
}

/** Sum of the bytes metadata says hold data: the progress total. */
async function dataBytes(dev: BlockDevice): Promise<number> {
  let n = 0;
  for await (const e of coalesce(dev.extents())) if (e.kind === 'data') n += e.length;
  return n;
}

/**
 * Copies a disk into a new image: plans from extents (sparse and zero ranges are never read),
 * reads windows of several MiB, drops all-zero units, and hands the rest to the format writer.
 */
export async function convert(opts: ConvertOptions): Promise<ConvertResult> {
  const { source, backing, signal } = opts;
  const virtualSize = opts.create.virtualSize ?? source.virtualSize;
  if (virtualSize <= 0) throw new InvalidArgumentError('the source disk is empty', source.filename);
  if (!opts.target.create) throw new InvalidArgumentError(`DiskFerry cannot write ${opts.target.name} images`);
  assertNotAborted(signal);
  const writer = await opts.target.create(opts.sink, { ...opts.create, virtualSize });
  const g = writer.granularity;
  const batch = Math.max(g, alignUp(opts.batchSize ?? DEFAULT_BATCH, g));
  const total = await dataBytes(source);
  const meter = new ProgressMeter(total, opts.onProgress);
  let bytesRead = 0;
  const full = opts.minSparse === 0;
  const stats = { zeroBytesWritten: 0 };
  // All data by its metadata, and large enough for the scout to get ahead of the reads.
  const scouting = opts.openScout && !backing && !full && total === source.virtualSize && total > 8 * batch;
  const scoutDevice = scouting ? await opts.openScout!().catch(() => undefined) : undefined;
  const scout = scoutDevice ? new ZeroScout(scoutDevice, batch, source.virtualSize, (n) => meter.add(n)) : undefined;
  /** The next window from `pos` on that holds data, read; undefined at the end of the disk. */
  const load = async (pos: number): Promise<Window | undefined> => {
    for (; pos < virtualSize; pos += batch) {
      assertNotAborted(signal);
      const end = Math.min(pos + batch, virtualSize);
      const dataRanges: [number, number][] = [];
      scout?.reading(pos);
      const srcBytes = await windowDataBytes(source, pos, end, dataRanges);
      const backHas = backing ? (await windowDataBytes(backing, pos, end)) > 0 : false;
      if (!srcBytes && !backHas && !full) continue;
      if (scout?.isZero(pos)) continue; // read by the scout (and counted): all zeros
      const data = srcBytes ? await source.read(pos, end - pos) : new Uint8Array(end - pos);
      const base = backHas ? await backing!.read(pos, end - pos) : undefined;
      return { pos, end, data, base, srcBytes, dataRanges };
    }
    return undefined;
  };
  try {
    // One window of read-ahead: the next read runs while the writer works on the current one
    // (with -c the writer returns once its compression queue is under its bound), so reading,
    // compressing and writing overlap while memory stays at a few windows.
    let next = load(0);
    for (;;) {
      const w = await next;
      if (!w) break;
      next = load(w.end);
      next.catch(() => {}); // a read error surfaces when the loop awaits it
      bytesRead += w.srcBytes ? w.end - w.pos : 0;
      await writeWindow(writer, w.pos, w.data, w.base, opts.minSparse, stats, w.dataRanges);
      if (w.srcBytes) meter.add(w.srcBytes);
    }
    assertNotAborted(signal);
    meter.report('finalizing');
    await writer.finish();
    meter.report('done');
  } finally {
    await scout?.stop();
    await scoutDevice?.close().catch(() => {});
  }
  bytesRead += scout?.bytesRead ?? 0;
  return { virtualSize, bytesRead, dataBytes: meter.total, zeroBytesWritten: stats.zeroBytesWritten, warnings: writer.warnings ?? [] };
}

interface Window {
  pos: number;
  end: number;
  data: Uint8Array;
  base: Uint8Array | undefined;
  /** Bytes the source's metadata marks as data (progress). */
  srcBytes: number;
  /** Where in the window the source's metadata says data is (-S fills zeros only there). */
  dataRanges: [number, number][];
}

type UnitAction = 'skip' | 'data' | 'zero';

/** Splits a window into granules and sends runs of data (and, over a backing file, zeros). */
async function writeWindow(
  writer: ImageWriter,
  pos: number,
  data: Uint8Array,
  base: Uint8Array | undefined,
  minSparse: number | undefined,
  stats: { zeroBytesWritten: number },
  dataRanges: [number, number][],
): Promise<void> {
  const g = writer.granularity;
  const actions: UnitAction[] = [];
  const zero: boolean[] = [];
  for (let off = 0; off < data.length; off += g) {
    const unit = data.subarray(off, off + g);
    const baseUnit = base?.subarray(off, off + g);
    const allZero = isAllZero(unit);
    zero.push(allZero);
    if (baseUnit) {
      if (bytesEqual(unit, baseUnit)) actions.push('skip');
      else actions.push(allZero ? 'zero' : 'data');
    } else actions.push(allZero ? (minSparse === 0 ? 'data' : 'skip') : 'data');
  }
  // -S N (qemu-img's is_allocated_sectors_min): inside what the source calls data, a run of
  // zero units between data units shorter than N bytes is written as data. Ranges the source's
  // metadata calls zero or unallocated stay holes whatever N is.
  if (minSparse !== undefined && minSparse > 0 && !base) {
    const inData = (i: number) => {
      const a = pos + i * g;
      const b = Math.min(a + g, pos + data.length);
      return dataRanges.some(([s, e]) => s <= a && e >= b);
    };
    let lastData = -1;
    for (let i = 0; i < actions.length; i++) {
      if (actions[i] !== 'data') continue;
      const gap = i - lastData - 1;
      if (lastData >= 0 && gap > 0 && gap * g < minSparse) {
        let all = true;
        for (let k = lastData + 1; k < i && all; k++) all = inData(k);
        if (all) for (let k = lastData + 1; k < i; k++) actions[k] = 'data';
      }
      lastData = i;
    }
  }
  let runStart = -1;
  const flush = async (upTo: number) => {
    if (runStart < 0) return;
    await writer.write(pos + runStart, data.subarray(runStart, upTo));
    runStart = -1;
  };
  for (let i = 0, off = 0; off < data.length; i++, off += g) {
    const action = actions[i]!;
    const unit = data.subarray(off, off + g);
    if (action === 'data') {
      if (zero[i]) stats.zeroBytesWritten += unit.length;
      if (runStart < 0) runStart = off;
      continue;
    }
    await flush(off);
    if (action === 'zero') {
      if (writer.writeZeroes) await writer.writeZeroes(pos + off, unit.length);
      else await writer.write(pos + off, unit);
    }
  }
  await flush(data.length);
}
