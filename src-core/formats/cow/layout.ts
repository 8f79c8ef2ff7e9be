import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { Struct } from '../../io/struct.ts';

/**
 * Every cow header layout, in this one file (docs/formats/cow.md, Layout).
 *
 * "cow" is User-Mode-Linux's copy-on-write file (arch/um/drivers/cow_user.c). QEMU had a driver
 * for it (block/cow.c) until commit 550830f935 (2014) but only for version 2 and with its own
 * idea of the layout: QEMU declared the header as an unpacked C struct, so where `size` lands
 * depends on the compiler's alignment of uint64_t, and UML's own version 2 has a 4096-byte name
 * field. All variants share the magic 0x4F4F4F4D ("OOOM" big-endian) and a bitmap with one bit
 * per sector, least significant bit first (set = the sector is in this file, clear = read the
 * backing file), followed by the sectors themselves.
 *
 *  layout         | endian | magic ver | backing name | mtime | size | sectorsize | align | format | header
 *  ---------------|--------|-----------|--------------|-------|------|------------|-------|--------|-------
 *  qemu-v2 (x86-64 build, what QEMU's cow_create wrote on 64-bit hosts)
 *                 | BE     | 0   4     | 8 [1024]     | 1032  | 1040 | 1048       | –     | –      | 1056
 *  qemu-v2-32 (i386 build: uint64_t 4-byte aligned, no padding)
 *                 | BE     | 0   4     | 8 [1024]     | 1032  | 1036 | 1044       | –     | –      | 1048
 *  uml-v1         | host   | 0   4     | 8 [256]      | 264   | 268  | 276        | –     | –      | 280
 *  uml-v2         | BE     | 0   4     | 8 [4096]     | 4104  | 4108 | 4116       | –     | –      | 4120
 *  uml-v3         | BE     | 0   4     | 32 [4096]    | 8     | 12   | 20         | 24    | 28     | 4128
 *  uml-v3-broken (64-bit UML before Dec 2005: 4 pad bytes after mtime, not zeroed — UML
 *                 malloc'd the header — so only the zero word at 32 tells it apart, as cow_user.c does)
 *                 | BE     | 0   4     | 36 [4096]    | 8     | 16   | 24         | 28    | 32     | 4136
 *
 * Where the bitmap and the data go:
 *  qemu-v2*:  bitmap at sizeof(header), ceil(sectors/8) bytes; data at round_up(header+bitmap, 512)
 *             (block/cow.c cow_open), sector s at data + 512·s. The sectorsize field is 512 and ignored.
 *  uml-v1/v2: bitmap at sizeof(header), (size+ss−1)/(8·ss) bytes (cow_user.c sizes(): it rounds
 *             down, a historic quirk that later sectors' bits live past it); data at
 *             round_up(bitmap_offset + that length, ss), sector s at data + ss·s.
 *  uml-v3:    bitmap at round_up(sizeof(header), align), ceil(ceil(size/ss)/8) bytes; data at
 *             round_up(bitmap + length, align). cow_format must be 0 (bitmap).
 */
export const COW_MAGIC = 0x4f4f4f4d;
export const COW_SECTOR = 512;

export type CowLayoutName = 'qemu-v2' | 'qemu-v2-32' | 'uml-v1' | 'uml-v2' | 'uml-v3' | 'uml-v3-broken';

interface LayoutFields {
  version: number;
  nameOffset: number;
  nameLength: number;
  mtime: number;
  size: number;
  sectorSize: number;
  align?: number;
  format?: number;
  headerSize: number;
}

export const COW_LAYOUTS: Record<CowLayoutName, LayoutFields> = {
  'qemu-v2': { version: 2, nameOffset: 8, nameLength: 1024, mtime: 1032, size: 1040, sectorSize: 1048, headerSize: 1056 },
  'qemu-v2-32': { version: 2, nameOffset: 8, nameLength: 1024, mtime: 1032, size: 1036, sectorSize: 1044, headerSize: 1048 },
  'uml-v1': { version: 1, nameOffset: 8, nameLength: 256, mtime: 264, size: 268, sectorSize: 276, headerSize: 280 },
  'uml-v2': { version: 2, nameOffset: 8, nameLength: 4096, mtime: 4104, size: 4108, sectorSize: 4116, headerSize: 4120 },
  'uml-v3': { version: 3, nameOffset: 32, nameLength: 4096, mtime: 8, size: 12, sectorSize: 20, align: 24, format: 28, headerSize: 4128 },
  'uml-v3-broken': {
    version: 3,
    nameOffset: 36,
    nameLength: 4096,
    mtime: 8,
    size: 16,
    sectorSize: 24,
    align: 28,
    format: 32,
    headerSize: 4136,
  },
};

/** Bytes to read from the start of a file to parse any layout. */
export const COW_MAX_HEADER = 4136;

export interface CowHeader {
  layout: CowLayoutName;
  version: number;
  littleEndian: boolean;
  backingFile: string;
  mtime: number;
  /** Disk size in bytes as stored. */
  size: number;
  /** Sectors the bitmap describes and the data area holds. */
  sectors: number;
  sectorSize: number;
  bitmapOffset: number;
  /** Bitmap bytes that describe the disk: ceil(sectors / 8). */
  bitmapBytes: number;
  dataOffset: number;
}

/** "OOOM" in file order, or "MOOO" (UML version 1 written in little-endian host order). */
export function cowEndianness(head: Uint8Array): 'be' | 'le' | undefined {
  if (head.length < 8) return undefined;
  const s = new Struct(head);
  if (s.u32(0) === COW_MAGIC) return 'be';
  if (new Struct(head, true).u32(0) === COW_MAGIC) return 'le';
  return undefined;
}

const plausibleSectorSize = (n: number) => n >= 512 && n <= 65536 && (n & (n - 1)) === 0;

/** Reads the layout's fields; undefined when they cannot be this layout. */
function tryLayout(head: Uint8Array, le: boolean, layout: CowLayoutName): CowHeader | undefined {
  const f = COW_LAYOUTS[layout];
  if (head.length < f.headerSize) return undefined;
  const s = new Struct(head, le);
  const size = Number(s.big64(f.size));
  const sectorSize = s.u32(f.sectorSize);
  if (!Number.isSafeInteger(size) || size <= 0) return undefined;
  const qemu = layout.startsWith('qemu');
  // QEMU always wrote 512 and ignored the field; UML used it.
  if (qemu ? sectorSize !== COW_SECTOR : !plausibleSectorSize(sectorSize)) return undefined;
  const ss = qemu ? COW_SECTOR : sectorSize;
  const sectors = qemu ? Math.floor(size / COW_SECTOR) : Math.ceil(size / ss);
  const bitmapBytes = Math.ceil(sectors / 8);
  let bitmapOffset = f.headerSize;
  let dataOffset: number;
  if (f.align !== undefined) {
    const align = s.u32(f.align);
    if (!(align >= 1 && align <= 1 << 20 && (align & (align - 1)) === 0)) return undefined;
    if (s.u32(f.format!) !== 0) return undefined;
    bitmapOffset = alignUp(f.headerSize, align);
    dataOffset = alignUp(bitmapOffset + bitmapBytes, align);
  } else if (qemu) {
    dataOffset = alignUp(f.headerSize + bitmapBytes, COW_SECTOR);
  } else {
    dataOffset = alignUp(bitmapOffset + Math.floor((size + ss - 1) / (8 * ss)), ss);
  }
  return {
    layout,
    version: f.version,
    littleEndian: le,
    backingFile: s.cstring(f.nameOffset, f.nameLength),
    mtime: s.u32(f.mtime),
    size,
    sectors,
    sectorSize: ss,
    bitmapOffset,
    bitmapBytes,
    dataOffset,
  };
}

/**
 * Finds the layout of a cow header. Version 2 is ambiguous (QEMU's two ABIs and UML's), so the
 * candidates are tried in the order of how likely a file is to be one: QEMU x86-64 (its padding
 * before `size` must be zero), QEMU i386, then UML. Version 3's pre-2005 64-bit variant is told
 * apart by the 4 zero bytes at offset 32 where a real v3 has the '/' of its absolute backing path.
 */
export function parseCowHeader(file: string, head: Uint8Array): CowHeader {
  const endian = cowEndianness(head);
  if (!endian) throw new CorruptImageError(file, 'cow header: bad magic');
  const le = endian === 'le';
  const s = new Struct(head, le);
  const version = s.u32(4);
  const candidates: CowLayoutName[] = [];
  if (version === 1) candidates.push('uml-v1');
  else if (version === 2) {
    if (head.length >= 1040 && s.u32(1036) === 0) candidates.push('qemu-v2');
    candidates.push('qemu-v2-32', 'uml-v2');
  } else if (version === 3) {
    candidates.push(head.length >= 36 && s.u32(32) === 0 ? 'uml-v3-broken' : 'uml-v3');
    candidates.push(candidates[0] === 'uml-v3' ? 'uml-v3-broken' : 'uml-v3');
  } else throw new UnsupportedError(file, `cow version ${version} is not supported (1, 2 and 3 are)`);
  for (const c of candidates) {
    const h = tryLayout(head, le, c);
    if (h) return h;
  }
  if (head.length < COW_LAYOUTS[candidates[0]!].headerSize)
    throw new CorruptImageError(file, `cow header: file is only ${head.length} bytes, shorter than a version ${version} header`);
  throw new CorruptImageError(file, `cow version ${version} header: size, sector size or alignment is invalid`);
}

/** The header QEMU's cow_create wrote (x86-64 layout): what DiskFerry writes. */
export function buildQemuV2Header(size: number, backingFile: Uint8Array, mtime = 0): Uint8Array {
  const f = COW_LAYOUTS['qemu-v2'];
  if (backingFile.length >= f.nameLength) throw new RangeError('cow backing file name too long');
  const s = Struct.alloc(f.headerSize);
  s.setU32(0, COW_MAGIC).setU32(4, 2).setBytes(f.nameOffset, backingFile);
  s.setU32(f.mtime, mtime).setU64(f.size, size).setU32(f.sectorSize, COW_SECTOR);
  return s.bytes;
}
