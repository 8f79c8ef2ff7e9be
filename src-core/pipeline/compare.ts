import { assertNotAborted } from '../io/errors.ts';
import { isAllZero } from '../io/struct.ts';
import type { BlockDevice } from '../image/types.ts';
import { ProgressMeter, type ProgressCallback } from './progress.ts';

export interface CompareResult {
  identical: boolean;
  /** First differing guest offset, when not identical. */
  mismatchAt?: number;
  /** Set when the sizes differ (the larger disk's tail must then be zero). */
  sizeMismatch?: boolean;
  message: string;
}

const WINDOW = 4 * 1024 * 1024;

async function hasData(dev: BlockDevice, from: number, to: number): Promise<boolean> {
  if (from >= dev.virtualSize) return false;
  for await (const e of dev.extents(from, Math.min(to, dev.virtualSize))) if (e.kind === 'data') return true;
  return false;
}

/**
 * qemu-img compare: identical when every guest byte matches; a larger disk's extra tail must
 * read as zero (unless `strict`). Ranges that both disks' metadata call zero are not read.
 */
export async function compare(
  a: BlockDevice,
  b: BlockDevice,
  opts: { strict?: boolean; signal?: AbortSignal; onProgress?: ProgressCallback } = {},
): Promise<CompareResult> {
  if (opts.strict && a.virtualSize !== b.virtualSize) {
    return { identical: false, sizeMismatch: true, message: 'Strict mode: Image size mismatch!' };
  }
  const size = Math.max(a.virtualSize, b.virtualSize);
  // Progress counts the windows that must be read: empty ones pass in no time, so counting them
  // would make the rate (and the time left) swing wildly with where the data sits.
  // (Two passes over the metadata keep memory flat on a disk of any size.)
  const windowHasData = async (pos: number, end: number) => (await hasData(a, pos, end)) || (await hasData(b, pos, end));
  let toRead = 0;
  for (let pos = 0; pos < size; pos += WINDOW) {
    assertNotAborted(opts.signal);
    const end = Math.min(pos + WINDOW, size);
    if (await windowHasData(pos, end)) toRead += end - pos;
  }
  const meter = new ProgressMeter(toRead, opts.onProgress);
  for (let pos = 0; pos < size; pos += WINDOW) {
    assertNotAborted(opts.signal);
    const end = Math.min(pos + WINDOW, size);
    const read = await windowHasData(pos, end);
    if (read) {
      const x = pos < a.virtualSize ? await a.read(pos, Math.min(end, a.virtualSize) - pos) : new Uint8Array(0);
      const y = pos < b.virtualSize ? await b.read(pos, Math.min(end, b.virtualSize) - pos) : new Uint8Array(0);
      const at = firstDifference(x, y, end - pos);
      if (at >= 0) {
        const off = pos + at;
        return { identical: false, mismatchAt: off, message: `Content mismatch at offset ${off}!` };
      }
      meter.add(end - pos);
    }
  }
  meter.report('done');
  return { identical: true, message: 'Images are identical.' };
}

/** Index of the first differing byte, reading missing bytes as zero; -1 when equal. */
function firstDifference(x: Uint8Array, y: Uint8Array, len: number): number {
  const common = Math.min(x.length, y.length);
  // Compare 512-byte sectors first (qemu-img reports sector-aligned offsets).
  for (let s = 0; s < common; s += 512) {
    const e = Math.min(s + 512, common);
    for (let i = s; i < e; i++) if (x[i] !== y[i]) return s;
  }
  const longer = x.length > y.length ? x : y;
  for (let s = common; s < len; s += 512) {
    if (!isAllZero(longer.subarray(s, Math.min(s + 512, longer.length)))) return s;
  }
  return -1;
}
