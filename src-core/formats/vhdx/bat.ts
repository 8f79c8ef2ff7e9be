import { SECTORS_PER_CHUNK } from './layout.ts';

/**
 * BAT geometry (MS-VHDX 2.5; QEMU vhdx_calc_bat_entries / vhdx_block_translate). Payload entries
 * and sector-bitmap entries are interleaved: after every `chunkRatio` payload entries comes one
 * sector-bitmap entry, whose 1 MiB block says, one bit per sector, which sectors of those
 * payload blocks this (differencing) file holds.
 */
export interface BatGeometry {
  blockSize: number;
  logicalSectorSize: number;
  /** Payload blocks per sector-bitmap block. */
  chunkRatio: number;
  payloadBlocks: number;
  entries: number;
}

export function batGeometry(virtualSize: number, blockSize: number, logicalSectorSize: number, hasParent: boolean): BatGeometry {
  const chunkRatio = (SECTORS_PER_CHUNK * logicalSectorSize) / blockSize;
  const payloadBlocks = Math.ceil(virtualSize / blockSize);
  const chunks = Math.ceil(payloadBlocks / chunkRatio);
  // Non-differencing files may omit the trailing sector-bitmap entry; differencing files carry whole chunks.
  const entries = hasParent ? chunks * (chunkRatio + 1) : payloadBlocks + Math.floor(Math.max(0, payloadBlocks - 1) / chunkRatio);
  return { blockSize, logicalSectorSize, chunkRatio, payloadBlocks, entries };
}

/** BAT index of payload block `block`. */
export function payloadIndex(g: BatGeometry, block: number): number {
  return block + Math.floor(block / g.chunkRatio);
}

/** BAT index of the sector-bitmap block of chunk `chunk`. */
export function bitmapIndex(g: BatGeometry, chunk: number): number {
  return chunk * (g.chunkRatio + 1) + g.chunkRatio;
}

/** True when BAT index `i` is a sector-bitmap slot. */
export function isBitmapIndex(g: BatGeometry, i: number): boolean {
  return i % (g.chunkRatio + 1) === g.chunkRatio;
}

/** Bits 0–2: the state. */
export const entryState = (e: bigint): number => Number(e & 7n);

/** Bits 20–63: FileOffsetMB, as a byte offset (checked against 2^53). */
export function entryOffset(e: bigint): number {
  const mb = e >> 20n;
  // 2^53 / 2^20 = 2^33 MiB: anything larger cannot be a real offset.
  if (mb >= 2n ** 33n) return Number.MAX_SAFE_INTEGER;
  return Number(mb) * 1024 * 1024;
}

export function makeEntry(state: number, fileOffset: number): bigint {
  return BigInt(fileOffset) | BigInt(state);
}
