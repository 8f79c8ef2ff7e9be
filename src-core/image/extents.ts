import type { BlockDevice, Extent } from './types.ts';

export function extentEnd(e: Extent): number {
  return e.offset + e.length;
}

/** Two extents that a map would print as one run. */
function sameRun(a: Extent, b: Extent): boolean {
  if (a.kind !== b.kind || extentEnd(a) !== b.offset) return false;
  if ((a.depth ?? 0) !== (b.depth ?? 0) || !!a.compressed !== !!b.compressed || a.hostFile !== b.hostFile) return false;
  if (a.hostOffset === undefined || b.hostOffset === undefined) return a.hostOffset === b.hostOffset;
  return a.hostOffset + a.length === b.hostOffset;
}

/** Appends `e` to `list`, extending the last extent instead when they form one run. */
export function pushMerged(list: Extent[], e: Extent): void {
  const last = list[list.length - 1];
  if (last && sameRun(last, e)) last.length += e.length;
  else list.push(e);
}

/** Merges adjacent extents of the same kind (and contiguous host offsets). */
export async function* coalesce(src: AsyncIterable<Extent>): AsyncIterable<Extent> {
  let cur: Extent | undefined;
  for await (const e of src) {
    if (e.length <= 0) continue;
    if (cur && sameRun(cur, e)) {
      cur.length += e.length;
      continue;
    }
    if (cur) yield cur;
    cur = { ...e };
  }
  if (cur) yield cur;
}

/** Clips an extent to [from, to). */
export function clip(e: Extent, from: number, to: number): Extent | undefined {
  const start = Math.max(e.offset, from);
  const end = Math.min(extentEnd(e), to);
  if (end <= start) return undefined;
  const out: Extent = { ...e, offset: start, length: end - start };
  if (e.hostOffset !== undefined) out.hostOffset = e.hostOffset + (start - e.offset);
  return out;
}

export async function collectExtents(src: AsyncIterable<Extent>): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of src) out.push(e);
  return out;
}

/**
 * Builds extents from a per-unit classifier (clusters, grains, blocks): the common shape of
 * every table-driven format. `unit(i)` describes unit i; consecutive units are merged later.
 */
export async function* unitExtents(
  from: number,
  to: number,
  unitSize: number,
  unit: (index: number) => Promise<Omit<Extent, 'offset' | 'length'>> | Omit<Extent, 'offset' | 'length'>,
): AsyncIterable<Extent> {
  let pos = from;
  while (pos < to) {
    const index = Math.floor(pos / unitSize);
    const unitStart = index * unitSize;
    const end = Math.min(unitStart + unitSize, to);
    const u = await unit(index);
    const e: Extent = { ...u, offset: pos, length: end - pos };
    if (u.hostOffset !== undefined) e.hostOffset = u.hostOffset + (pos - unitStart);
    yield e;
    pos = end;
  }
}

/**
 * Bytes of whole `granularity` units that hold data, as qemu's measure counts them: a unit
 * touched by data counts whole; zero and unallocated ranges count nothing.
 */
export async function allocatedUnits(dev: BlockDevice, granularity: number): Promise<number> {
  let bytes = 0;
  let lastUnitEnd = 0;
  for await (const e of coalesce(dev.extents())) {
    if (e.kind !== 'data') continue;
    const first = Math.max(Math.floor(e.offset / granularity) * granularity, lastUnitEnd);
    const end = Math.ceil((e.offset + e.length) / granularity) * granularity;
    if (end > first) bytes += end - first;
    lastUnitEnd = Math.max(lastUnitEnd, end);
  }
  return bytes;
}
