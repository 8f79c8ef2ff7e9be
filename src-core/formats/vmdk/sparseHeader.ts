import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { Struct } from '../../io/struct.ts';
import { Int64RangeError } from '../../io/int64.ts';

/**
 * The hosted sparse extent header (VMware "SparseExtentHeader", 512 bytes, little-endian), as
 * QEMU's block/vmdk.c (VMDK4Header) and the VMDK 1.1 spec lay it out.
 */
export const SECTOR = 512;
export const KDMV = 0x564d444b; // bytes "KDMV" read as a little-endian u32
export const COWD = 0x44574f43; // bytes "COWD"

export const FLAG_NL_DETECT = 0x1;
export const FLAG_RGD = 0x2;
export const FLAG_ZERO_GRAIN = 0x4;
export const FLAG_COMPRESSED = 0x10000;
export const FLAG_MARKERS = 0x20000;
/** Flags a reader may meet; the high 16 bits are "incompatible" (vmdk.c rejects what it does not know). */
const KNOWN_INCOMPAT = FLAG_COMPRESSED | FLAG_MARKERS;

export const COMPRESS_NONE = 0;
export const COMPRESS_DEFLATE = 1;

/** gdOffset value meaning "the grain directory is at the end: read the footer". */
export const GD_AT_END = 0xffffffffffffffffn;

export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;

export interface SparseHeader {
  version: number;
  flags: number;
  /** Sectors. */
  capacity: number;
  grainSectors: number;
  descriptorOffset: number;
  descriptorSize: number;
  gtesPerGt: number;
  rgdOffset: number;
  /** Sectors, or -1 for GD_AT_END. */
  gdOffset: number;
  overhead: number;
  uncleanShutdown: boolean;
  compressAlgorithm: number;
}

export function isSparseMagic(head: Uint8Array): boolean {
  return head.length >= 4 && new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) === KDMV;
}

/** Largest values we accept before allocating tables sized by them. */
const MAX_GTES_PER_GT = 512; // QEMU: "L2 table size too big"
const MAX_GRAIN_SECTORS = 0x200000; // vmdk_add_extent: "Invalid granularity" above 1 GiB

export function parseSparseHeader(file: string, b: Uint8Array): SparseHeader {
  try {
    return parseSparseHeaderFields(file, b);
  } catch (e) {
    // A 64-bit field past 2^53 is corruption here, not a program error.
    if (e instanceof Int64RangeError) throw new CorruptImageError(file, `sparse extent header: ${e.message}`);
    throw e;
  }
}

/** Largest capacity whose byte size is still an exact JavaScript number. */
export const MAX_CAPACITY_SECTORS = Math.floor(Number.MAX_SAFE_INTEGER / SECTOR);

function parseSparseHeaderFields(file: string, b: Uint8Array): SparseHeader {
  if (b.length < SECTOR) throw new CorruptImageError(file, 'sparse extent header is truncated');
  const s = new Struct(b, true);
  if (s.u32(0) !== KDMV) throw new CorruptImageError(file, 'sparse extent header has no KDMV magic');
  const version = s.u32(4);
  const flags = s.u32(8);
  const gdRaw = s.big64(56);
  const h: SparseHeader = {
    version,
    flags,
    capacity: s.u64(12, 'capacity'),
    grainSectors: s.u64(20, 'grainSize'),
    descriptorOffset: s.u64(28, 'descriptorOffset'),
    descriptorSize: s.u64(36, 'descriptorSize'),
    gtesPerGt: s.u32(44),
    rgdOffset: s.u64(48, 'rgdOffset'),
    gdOffset: gdRaw === GD_AT_END ? -1 : s.u64(56, 'gdOffset'),
    overhead: s.u64(64, 'overHead'),
    uncleanShutdown: s.u8(72) !== 0,
    compressAlgorithm: s.u16(77),
  };
  if (version < 1 || version > 3) throw new UnsupportedError(file, `sparse extent version ${version} is not supported (1 to 3)`);
  if (flags & 0xffff0000 & ~KNOWN_INCOMPAT) {
    throw new UnsupportedError(file, `sparse extent has unknown incompatible flags 0x${(flags >>> 0).toString(16)}`);
  }
  if (h.gtesPerGt === 0 || h.gtesPerGt > MAX_GTES_PER_GT)
    throw new CorruptImageError(file, `grain table has ${h.gtesPerGt} entries (1 to ${MAX_GTES_PER_GT} allowed)`);
  if (h.grainSectors === 0 || h.grainSectors > MAX_GRAIN_SECTORS) {
    throw new CorruptImageError(file, `grain size of ${h.grainSectors} sectors is invalid (1 to ${MAX_GRAIN_SECTORS})`);
  }
  if (h.capacity > MAX_CAPACITY_SECTORS)
    throw new CorruptImageError(file, `capacity of ${h.capacity} sectors is beyond what can be addressed`);
  if (h.compressAlgorithm > COMPRESS_DEFLATE) throw new UnsupportedError(file, `unknown compression algorithm ${h.compressAlgorithm}`);
  return h;
}

export function isCompressed(h: SparseHeader): boolean {
  return h.compressAlgorithm === COMPRESS_DEFLATE;
}

export function hasMarkers(h: SparseHeader): boolean {
  return (h.flags & FLAG_MARKERS) !== 0;
}

/** Builds a 512-byte header; `gdOffset` -1 writes GD_AT_END. */
export function buildSparseHeader(h: SparseHeader): Uint8Array {
  const s = Struct.alloc(SECTOR, true);
  s.setU32(0, KDMV).setU32(4, h.version).setU32(8, h.flags);
  s.setU64(12, h.capacity).setU64(20, h.grainSectors);
  s.setU64(28, h.descriptorOffset).setU64(36, h.descriptorSize);
  s.setU32(44, h.gtesPerGt).setU64(48, h.rgdOffset);
  if (h.gdOffset < 0) s.setBig64(56, GD_AT_END);
  else s.setU64(56, h.gdOffset);
  s.setU64(64, h.overhead).setU8(72, h.uncleanShutdown ? 1 : 0);
  // The newline-mangling check characters (detects text-mode transfers).
  s.setU8(73, 0x0a).setU8(74, 0x20).setU8(75, 0x0d).setU8(76, 0x0a);
  s.setU16(77, h.compressAlgorithm);
  return s.bytes;
}

/** One metadata marker sector: numSectors, size 0, type. An EOS marker is all zeros. */
export function buildMarker(numSectors: number, type: number): Uint8Array {
  const s = Struct.alloc(SECTOR, true);
  s.setU64(0, numSectors).setU32(8, 0).setU32(12, type);
  return s.bytes;
}

export interface Marker {
  value: number;
  size: number;
  type: number;
}

export function parseMarker(b: Uint8Array): Marker {
  const s = new Struct(b, true);
  return { value: Number(s.big64(0)), size: s.u32(8), type: s.u32(12) };
}

/** Grain directory size in entries: one per grain table covering the capacity. */
export function gdEntries(h: Pick<SparseHeader, 'capacity' | 'grainSectors' | 'gtesPerGt'>): number {
  return Math.ceil(h.capacity / (h.grainSectors * h.gtesPerGt));
}
