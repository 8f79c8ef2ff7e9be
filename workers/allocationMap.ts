import type { BlockDevice, Extent } from '../src-core/image/types.ts';
import type { AllocationSummary } from './protocol.ts';

/** Cells in the picture: enough to see structure, small enough to send and draw instantly. */
export const MAP_CELLS = 512;

/**
 * Folds the device's extents (metadata only, no data reads) into equal cells, each holding the
 * share of data / compressed / zero / unallocated bytes. Enumeration stops after `budgetMs`
 * so a huge, fragmented image still previews at once; the summary then says it is partial.
 */
export async function allocationSummary(
  dev: BlockDevice,
  cells = MAP_CELLS,
  budgetMs = 4000,
  /** Sees every extent the scan reads (the preview's integrity check rides on the same walk). */
  onExtent?: (e: Extent) => void,
): Promise<AllocationSummary> {
  const size = dev.virtualSize;
  const n = Math.max(1, Math.min(cells, size));
  const cellBytes = size / n;
  const kinds = { data: new Float64Array(n), compressed: new Float64Array(n), zero: new Float64Array(n), unallocated: new Float64Array(n) };
  const totals = { data: 0, compressed: 0, zero: 0, unallocated: 0 };
  let fromBacking = 0;
  let covered: number;
  let partial = false;
  const started = performance.now();
  let count = 0;
  for await (const e of dev.extents()) {
    onExtent?.(e);
    const kind: keyof typeof kinds = e.kind === 'data' ? (e.compressed ? 'compressed' : 'data') : e.kind;
    totals[kind] += e.length;
    if (e.kind === 'data' && (e.depth ?? 0) > 0) fromBacking += e.length;
    addSpan(kinds[kind], e.offset, e.offset + e.length, cellBytes);
    covered = e.offset + e.length;
    // Checking the clock costs little, but not nothing: every 256 extents is plenty.
    if (++count % 256 === 0 && performance.now() - started > budgetMs) {
      partial = covered < size;
      break;
    }
  }
  const share = (a: Float64Array) => Array.from(a, (v) => Math.min(1, v / cellBytes));
  return {
    cells: n,
    cellBytes,
    data: share(kinds.data),
    compressed: share(kinds.compressed),
    zero: share(kinds.zero),
    unallocated: share(kinds.unallocated),
    totals,
    fromBacking,
    partial,
  };
}

/** Adds the bytes of [start, end) to the cells they overlap. */
function addSpan(cells: Float64Array, start: number, end: number, cellBytes: number): void {
  let i = Math.floor(start / cellBytes);
  while (i < cells.length && start < end) {
    const cellEnd = (i + 1) * cellBytes;
    const upTo = Math.min(end, cellEnd);
    cells[i] = cells[i]! + (upTo - start);
    start = upTo;
    i++;
  }
}
