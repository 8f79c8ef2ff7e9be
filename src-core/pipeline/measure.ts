import { coalesce } from '../image/extents.ts';
import type { BlockDevice } from '../image/types.ts';

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
