import { toSafeNumber } from '../../io/int64.ts';

// L1/L2 entry layouts: qcow2.txt "Cluster mapping". Flags are bigint bit tests; offsets leave
// through toSafeNumber, so no 64-bit value is ever truncated by a 32-bit operator.
export const OFLAG_COPIED = 1n << 63n;
export const OFLAG_COMPRESSED = 1n << 62n;
export const OFLAG_ZERO = 1n;
export const L1E_OFFSET_MASK = 0x00fffffffffffe00n;
export const L2E_OFFSET_MASK = 0x00fffffffffffe00n;
export const L1E_RESERVED_MASK = 0x7f000000000001ffn;
export const L2E_RESERVED_MASK = 0x3f000000000001fen;

export type ClusterType = 'unallocated' | 'zero-plain' | 'zero-alloc' | 'normal' | 'compressed';

export interface CompressedRef {
  /** Byte offset of the stream (any alignment). */
  offset: number;
  /** Upper bound on the stream length: whole sectors from the first one touched. */
  maxLength: number;
}

export function l1Offset(entry: bigint): number {
  return toSafeNumber(entry & L1E_OFFSET_MASK, 'L1 entry');
}

export function l2Offset(entry: bigint): number {
  return toSafeNumber(entry & L2E_OFFSET_MASK, 'L2 entry');
}

export function clusterType(entry: bigint, version: number, extendedL2: boolean, externalData = false): ClusterType {
  if (entry & OFLAG_COMPRESSED) return 'compressed';
  // With an external data file, guest offset 0 maps to host offset 0: only COPIED says it is allocated.
  if (externalData && !(entry & L2E_OFFSET_MASK) && entry & OFLAG_COPIED && !(entry & OFLAG_ZERO && !extendedL2)) return 'normal';
  // In extended L2 the zero state lives in the bitmap, and bit 0 must be clear.
  if (!extendedL2 && version >= 3 && entry & OFLAG_ZERO) {
    return entry & L2E_OFFSET_MASK ? 'zero-alloc' : 'zero-plain';
  }
  return entry & L2E_OFFSET_MASK ? 'normal' : 'unallocated';
}

/** Bits of the compressed descriptor: x = 62 − (cluster_bits − 8). */
export function compressedOffsetBits(clusterBits: number): number {
  return 62 - (clusterBits - 8);
}

export function decodeCompressed(entry: bigint, clusterBits: number): CompressedRef {
  const x = BigInt(compressedOffsetBits(clusterBits));
  const offset = toSafeNumber(entry & ((1n << x) - 1n), 'compressed cluster offset');
  const extraSectors = Number((entry >> x) & ((1n << BigInt(clusterBits - 8)) - 1n));
  const maxLength = (extraSectors + 1) * 512 - (offset % 512);
  return { offset, maxLength };
}

export function encodeCompressed(offset: number, length: number, clusterBits: number): bigint {
  const x = BigInt(compressedOffsetBits(clusterBits));
  const extraSectors = Math.floor((offset + length - 1) / 512) - Math.floor(offset / 512);
  if (extraSectors >= 2 ** (clusterBits - 8)) throw new RangeError('compressed cluster spans too many sectors');
  return OFLAG_COMPRESSED | (BigInt(extraSectors) << x) | BigInt(offset);
}

/** Extended L2 bitmap: subcluster i allocated (bit i) or reads as zero (bit 32+i). */
export function subclusterState(bitmap: bigint, i: number): 'data' | 'zero' | 'unallocated' | 'invalid' {
  const alloc = (bitmap >> BigInt(i)) & 1n;
  const zero = (bitmap >> BigInt(32 + i)) & 1n;
  if (alloc && zero) return 'invalid';
  if (alloc) return 'data';
  if (zero) return 'zero';
  return 'unallocated';
}
