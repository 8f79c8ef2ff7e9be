import { CorruptImageError, NotThisFormatError, UnsupportedError } from '../../io/errors.ts';
import { Int64RangeError, toSafeNumber } from '../../io/int64.ts';
import { Struct } from '../../io/struct.ts';

// qcow version 1: QEMU block/qcow.c (QCowHeader, qcow_open, qcow_co_create) and
// docs/formats/qcow.md. Same magic as qcow2; the version field tells them apart.
export const QCOW_MAGIC = 0x514649fb;
export const QCOW_VERSION = 1;
/** sizeof(QCowHeader): the packed 48-byte header. */
export const QCOW_HEADER_SIZE = 48;
export const QCOW_CRYPT_NONE = 0;
export const QCOW_CRYPT_AES = 1;
/** Bit 63 of an L2 entry marks a compressed cluster. */
export const QCOW_OFLAG_COMPRESSED = 1n << 63n;
/** qcow_open refuses longer backing names. */
export const QCOW_MAX_BACKING_NAME = 1023;
/** Our own bound on the L1 table (QEMU allows INT_MAX/8 entries): 32 MiB maps 256 TiB at defaults. */
export const QCOW_MAX_L1_BYTES = 32 * 1024 * 1024;

export interface QcowHeader {
  backingFileOffset: number;
  backingFileSize: number;
  mtime: number;
  /** Virtual size as QEMU uses it: the header's size cut down to whole 512-byte sectors. */
  size: number;
  /** The size field as stored. */
  storedSize: number;
  clusterBits: number;
  clusterSize: number;
  l2Bits: number;
  l2Entries: number;
  cryptMethod: number;
  l1TableOffset: number;
  l1Size: number;
}

export function isQcow1(head: Uint8Array): boolean {
  if (head.length < QCOW_HEADER_SIZE) return false;
  const s = new Struct(head);
  return s.u32(0) === QCOW_MAGIC && s.u32(4) === QCOW_VERSION;
}

/** Parses and validates the 48-byte header with qcow_open's checks, before anything is allocated. */
export function parseQcowHeader(file: string, head: Uint8Array): QcowHeader {
  try {
    return parseFields(file, head);
  } catch (e) {
    // A 64-bit field beyond 2^53 can only be corruption: say so in the header's terms.
    if (e instanceof Int64RangeError) throw new CorruptImageError(file, `qcow header: ${e.message}`);
    throw e;
  }
}

function parseFields(file: string, head: Uint8Array): QcowHeader {
  const bad = (msg: string) => new CorruptImageError(file, `qcow header: ${msg}`);
  if (head.length >= 4 && new Struct(head).u32(0) !== QCOW_MAGIC) throw new NotThisFormatError(file, 'not a qcow image (bad magic)');
  if (head.length < QCOW_HEADER_SIZE) throw bad(`file is only ${head.length} bytes, shorter than a header`);
  const s = new Struct(head);
  const version = s.u32(4);
  if (version !== QCOW_VERSION) throw new UnsupportedError(file, `qcow version ${version} is not supported by the qcow (v1) reader`);
  const storedSize = s.u64(24, 'size');
  if (storedSize <= 1) throw bad('image size is too small (must be at least 2 bytes)');
  const clusterBits = s.u8(32);
  if (clusterBits < 9 || clusterBits > 16) throw bad(`cluster_bits ${clusterBits} is outside 9…16 (cluster size 512 to 64k)`);
  const l2Bits = s.u8(33);
  // l2_bits counts 8-byte entries: a table of 512 bytes to 64 KiB.
  if (l2Bits < 6 || l2Bits > 13) throw bad(`l2_bits ${l2Bits} is outside 6…13 (L2 table 512 to 64k)`);
  const cryptMethod = s.u32(36);
  if (cryptMethod > QCOW_CRYPT_AES) throw bad(`invalid encryption method ${cryptMethod}`);
  const span = 2 ** (clusterBits + l2Bits);
  const l1Size = Math.ceil(storedSize / span);
  if (l1Size * 8 > QCOW_MAX_L1_BYTES) throw new UnsupportedError(file, `qcow image too large (${l1Size} L1 entries)`);
  const backingFileOffset = s.u64(8, 'backing_file_offset');
  const backingFileSize = s.u32(16);
  if (backingFileOffset && backingFileSize > QCOW_MAX_BACKING_NAME) throw bad(`backing file name is too long (${backingFileSize} bytes)`);
  return {
    backingFileOffset,
    backingFileSize,
    mtime: s.u32(20),
    // qcow_open: total_sectors = size / 512, so a partial last sector is not part of the disk.
    size: Math.floor(storedSize / 512) * 512,
    storedSize,
    clusterBits,
    clusterSize: 2 ** clusterBits,
    l2Bits,
    l2Entries: 2 ** l2Bits,
    cryptMethod,
    l1TableOffset: s.u64(40, 'l1_table_offset'),
    l1Size,
  };
}

/** A compressed L2 entry: `csize` bytes (not sectors) at `offset` (docs/formats/qcow.md, Compressed clusters). */
export function decodeQcowCompressed(entry: bigint, clusterBits: number): { offset: number; size: number } {
  const shift = BigInt(63 - clusterBits);
  const size = Number((entry >> shift) & BigInt(2 ** clusterBits - 1));
  return { offset: toSafeNumber(entry & ((1n << shift) - 1n), 'compressed cluster offset'), size };
}

export function encodeQcowCompressed(offset: number, size: number, clusterBits: number): bigint {
  return QCOW_OFLAG_COMPRESSED | (BigInt(size) << BigInt(63 - clusterBits)) | BigInt(offset);
}
