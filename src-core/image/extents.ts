import type { ByteSource } from '../io/bytes.ts';
import type { BlockDevice, Extent } from './types.ts';

export function extentEnd(e: Extent): number {
  return e.offset + e.length;
}

/** Two extents that a map would print as one run. */
function sameRun(a: Extent, b: Extent): boolean {
  if (a.kind !== b.kind || extentEnd(a) !== b.offset) return false;
  if ((a.depth ?? 0) !== (b.depth ?? 0) || !!a.compressed !== !!b.compressed || a.hostFile !== b.hostFile) return false;
  if (!!a.mappedData !== !!b.mappedData) return false;
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

/**
 * The extents of a guest range stored as a plain byte range of a file (raw, a fixed VHD, a flat
 * VMDK extent): guest [from, to) sits at host [hostStart + from, …). Data where the file holds
 * data; where the file system reports a hole, a 'zero' extent that is never read, as qemu-img
 * skips holes. `mappedData` marks those holes as qemu-img's formats that recurse into the file
 * print them (zero and data at once: vpc, vmdk); raw prints them as plain zeros. Past the file's
 * end, as inside it: a short file reads as zeros there either way.
 */
export function* fileBackedExtents(src: ByteSource, from: number, to: number, hostStart: number, mappedData: boolean): Iterable<Extent> {
  if (to <= from) return;
  if (!src.dataRuns) {
    yield { offset: from, length: to - from, kind: 'data', hostOffset: hostStart + from };
    return;
  }
  const hole = (a: number, b: number): Extent => {
    const e: Extent = { offset: a, length: b - a, kind: 'zero', hostOffset: hostStart + a };
    if (mappedData) e.mappedData = true;
    return e;
  };
  const fileEnd = src.size - hostStart;
  let pos = from;
  for (const [hostA, hostB] of src.dataRuns(hostStart + from, hostStart + Math.min(to, fileEnd))) {
    const a = hostA - hostStart;
    // A run reaching the file's end takes the rest of the range with it (the short last sector).
    const b = hostB - hostStart >= fileEnd ? to : hostB - hostStart;
    if (a > pos) yield hole(pos, a);
    yield { offset: a, length: b - a, kind: 'data', hostOffset: hostA };
    pos = b;
  }
  if (pos < to) yield hole(pos, to);
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
