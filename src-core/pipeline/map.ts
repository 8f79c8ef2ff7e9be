import { coalesce } from '../image/extents.ts';
import type { BlockDevice } from '../image/types.ts';

/** One row of `qemu-img map --output=json`. */
export interface MapEntry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

/** The allocation map of a whole chain, as qemu-img prints it. */
export async function* mapImage(dev: BlockDevice): AsyncIterable<MapEntry> {
  let prev: MapEntry | undefined;
  for await (const e of coalesce(dev.extents())) {
    const entry: MapEntry = {
      start: e.offset,
      length: e.length,
      depth: e.depth ?? 0,
      present: e.kind !== 'unallocated',
      zero: e.kind !== 'data',
      data: e.kind === 'data' || !!e.mappedData,
    };
    if (e.hostOffset !== undefined && !e.compressed) entry.offset = e.hostOffset;
    if (prev && mergeable(prev, entry)) {
      prev.length += entry.length;
      continue;
    }
    if (prev) yield prev;
    prev = entry;
  }
  if (prev) yield prev;
}

function mergeable(a: MapEntry, b: MapEntry): boolean {
  if (a.depth !== b.depth || a.present !== b.present || a.zero !== b.zero || a.data !== b.data) return false;
  if (a.offset === undefined || b.offset === undefined) return a.offset === b.offset;
  return a.offset + a.length === b.offset;
}

export function mapEntryJson(e: MapEntry): string {
  const off = e.offset !== undefined ? `, "offset": ${e.offset}` : '';
  return `{ "start": ${e.start}, "length": ${e.length}, "depth": ${e.depth}, "present": ${e.present}, "zero": ${e.zero}, "data": ${e.data}${off}}`;
}
