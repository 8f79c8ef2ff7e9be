import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { Struct } from '../../io/struct.ts';

/**
 * Bochs "growing" redolog images (QEMU block/bochs.c; bochs' harddisk-redologs documentation).
 * All little-endian. A 512-byte header:
 *
 *    0  char[32] magic   "Bochs Virtual HD Image"      (NUL-terminated strings)
 *   32  char[16] type    "Redolog"
 *   48  char[16] subtype "Growing" (QEMU reads no other: "Undoable"/"Volatile" need a base disk)
 *   64  u32 version      0x00010000 (v1) or 0x00020000 (v2)
 *   68  u32 header       size of the header = where the catalog starts
 *   72  u32 catalog      number of catalog entries
 *   76  u32 bitmap       bitmap size in bytes
 *   80  u32 extent       extent size in bytes
 *   84  u64 disk (v1) | u32 timestamp (v2)
 *   88  u64 disk (v2)    disk size in bytes
 *
 * The catalog (u32 per extent, 0xFFFFFFFF = not allocated) follows at `header`; data starts
 * right after it. Extent k of the catalog sits at data + 512·k·(bitmap blocks + extent blocks):
 * a bitmap (bit i set = sector i of the extent is present), then the sectors.
 */
export const BOCHS_HEADER_SIZE = 512;
export const BOCHS_MAGIC = 'Bochs Virtual HD Image';
export const BOCHS_TYPE = 'Redolog';
export const BOCHS_SUBTYPE = 'Growing';
export const BOCHS_V1 = 0x00010000;
export const BOCHS_V2 = 0x00020000;
export const BOCHS_UNALLOCATED = 0xffffffff;
/** QEMU's limits: 1 Mi catalog entries (bximage's largest, ~8 TB), extents of 512 B … 8 MiB. */
export const BOCHS_MAX_CATALOG = 0x100000;
export const BOCHS_MAX_EXTENT = 0x800000;

export interface BochsHeader {
  version: number;
  catalogOffset: number;
  catalogEntries: number;
  bitmapSize: number;
  extentSize: number;
  /** Whole sectors: QEMU drops a partial last one. */
  virtualSize: number;
  /** Blocks of 512 bytes the bitmap and the extent take (QEMU: 1 + (size - 1) / 512). */
  bitmapBlocks: number;
  extentBlocks: number;
  dataOffset: number;
}

/** strcmp against a NUL-terminated field: the text, then a NUL, inside the field. */
function fieldIs(b: Uint8Array, at: number, len: number, text: string): boolean {
  if (text.length >= len || b.length < at + len) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return b[at + text.length] === 0;
}

/** bochs_probe's test: the three strings and a known version. */
export function isBochsHeader(b: Uint8Array): boolean {
  if (b.length < BOCHS_HEADER_SIZE) return false;
  if (!fieldIs(b, 0, 32, BOCHS_MAGIC) || !fieldIs(b, 32, 16, BOCHS_TYPE) || !fieldIs(b, 48, 16, BOCHS_SUBTYPE)) return false;
  const v = new Struct(b, true).u32(64);
  return v === BOCHS_V1 || v === BOCHS_V2;
}

/** bochs_open's checks, in its order. */
export function parseBochsHeader(file: string, b: Uint8Array): BochsHeader {
  if (!isBochsHeader(b)) throw new CorruptImageError(file, 'not a Bochs growing redolog image (magic, type, subtype or version)');
  const s = new Struct(b, true);
  const version = s.u32(64);
  const disk = s.u64(version === BOCHS_V1 ? 84 : 88, 'bochs disk size');
  const virtualSize = Math.floor(disk / 512) * 512;
  const catalogEntries = s.u32(72);
  if (catalogEntries > BOCHS_MAX_CATALOG)
    throw new UnsupportedError(file, `bochs catalog of ${catalogEntries} entries is too large (limit ${BOCHS_MAX_CATALOG})`);
  const catalogOffset = s.u32(68);
  const bitmapSize = s.u32(76);
  const extentSize = s.u32(80);
  if (extentSize < 512) throw new CorruptImageError(file, `bochs extent size ${extentSize} must be at least 512`);
  if (extentSize & (extentSize - 1)) throw new CorruptImageError(file, `bochs extent size ${extentSize} is not a power of two`);
  if (extentSize > BOCHS_MAX_EXTENT)
    throw new UnsupportedError(file, `bochs extent size ${extentSize} is too large (limit ${BOCHS_MAX_EXTENT})`);
  const sectorsPerExtent = Math.floor(extentSize / 512);
  if (catalogEntries < Math.ceil(virtualSize / 512 / sectorsPerExtent)) {
    throw new CorruptImageError(file, `bochs catalog of ${catalogEntries} entries is too small for a disk of ${virtualSize} bytes`);
  }
  // QEMU computes 1 + (size - 1) / 512 in 32 bits: a size of 0 wraps to 0x800000 blocks.
  const blocks = (n: number) => 1 + Math.floor(((n - 1) >>> 0) / 512);
  return {
    version,
    catalogOffset,
    catalogEntries,
    bitmapSize,
    extentSize,
    virtualSize,
    bitmapBlocks: blocks(bitmapSize),
    extentBlocks: blocks(extentSize),
    dataOffset: catalogOffset + catalogEntries * 4,
  };
}
