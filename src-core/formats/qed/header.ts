import { CorruptImageError, NotThisFormatError, UnsupportedError } from '../../io/errors.ts';
import { Struct } from '../../io/struct.ts';

/**
 * The QED header (QEMU docs/interop/qed_spec.txt, block/qed.h): little-endian, at offset 0 of
 * a header of `header_size` clusters that also holds the backing file name.
 */
export const QED_MAGIC = 0x00444551; // "QED\0"
export const QED_HEADER_BYTES = 64;
export const QED_F_BACKING_FILE = 0x01;
export const QED_F_NEED_CHECK = 0x02;
export const QED_F_BACKING_FORMAT_NO_PROBE = 0x04;
export const QED_FEATURE_MASK = 0x07;
export const QED_MIN_CLUSTER = 4096;
export const QED_MAX_CLUSTER = 64 * 1024 * 1024;
export const QED_DEFAULT_CLUSTER = 64 * 1024;
export const QED_MIN_TABLE = 1;
export const QED_MAX_TABLE = 16;
export const QED_DEFAULT_TABLE = 4;
/** An L2 entry of 1: the cluster reads as zeros, even over a backing file. */
export const QED_ZERO_CLUSTER = 1;

export interface QedHeader {
  clusterSize: number;
  /** In clusters. */
  tableSize: number;
  /** In clusters. */
  headerSize: number;
  features: number;
  compatFeatures: bigint;
  autoclearFeatures: bigint;
  l1TableOffset: number;
  imageSize: number;
  backingNameOffset: number;
  backingNameSize: number;
}

export const isPow2 = (n: number): boolean => Number.isInteger(n) && n > 0 && Math.log2(n) % 1 === 0;
export const validClusterSize = (n: number): boolean => isPow2(n) && n >= QED_MIN_CLUSTER && n <= QED_MAX_CLUSTER;
export const validTableSize = (n: number): boolean => isPow2(n) && n >= QED_MIN_TABLE && n <= QED_MAX_TABLE;
/** Entries in one table (L1 and L2 are the same size). */
export const tableEntries = (clusterSize: number, tableSize: number): number => (clusterSize * tableSize) / 8;
/** QEMU's qed_max_image_size: what one L1 table of full L2 tables can map. */
export const maxImageSize = (clusterSize: number, tableSize: number): number => clusterSize * tableEntries(clusterSize, tableSize) ** 2;

export function isQed(head: Uint8Array): boolean {
  return head.length >= QED_HEADER_BYTES && new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0, true) === QED_MAGIC;
}

/** Parses and validates the header as QEMU's bdrv_qed_do_open does; `fileSize` bounds the offsets. */
export function parseQedHeader(file: string, buf: Uint8Array, fileSize: number): QedHeader {
  if (!isQed(buf)) throw new NotThisFormatError(file, 'not a QED image (no "QED\\0" magic)');
  const s = new Struct(buf.subarray(0, QED_HEADER_BYTES), true);
  const featuresBig = s.big64(16);
  const h: QedHeader = {
    clusterSize: s.u32(4),
    tableSize: s.u32(8),
    headerSize: s.u32(12),
    features: Number(featuresBig & 0xffn),
    compatFeatures: s.big64(24),
    autoclearFeatures: s.big64(32),
    l1TableOffset: s.u64(40, 'QED L1 table offset'),
    imageSize: s.u64(48, 'QED image size'),
    backingNameOffset: s.u32(56),
    backingNameSize: s.u32(60),
  };
  if (featuresBig & ~BigInt(QED_FEATURE_MASK))
    throw new UnsupportedError(file, `unsupported QED features 0x${(featuresBig & ~BigInt(QED_FEATURE_MASK)).toString(16)}`);
  if (!validClusterSize(h.clusterSize))
    throw new CorruptImageError(file, `QED cluster size ${h.clusterSize} is not a power of two from 4 KiB to 64 MiB`);
  if (!validTableSize(h.tableSize))
    throw new CorruptImageError(file, `QED table size ${h.tableSize} is not a power of two from 1 to 16 clusters`);
  if (h.imageSize % 512 !== 0 || h.imageSize > maxImageSize(h.clusterSize, h.tableSize)) {
    throw new CorruptImageError(file, `QED image size ${h.imageSize} is not a multiple of 512 or too large for its cluster and table size`);
  }
  if (h.headerSize === 0 || h.headerSize * h.clusterSize > 0xffffffff)
    throw new CorruptImageError(file, `QED header size of ${h.headerSize} clusters is invalid`);
  if (!validTableOffset(h, h.l1TableOffset, qedFileEnd(h, fileSize)))
    throw new CorruptImageError(file, `QED L1 table offset ${h.l1TableOffset} is invalid or past the end of the file`);
  if (h.features & QED_F_BACKING_FILE) {
    if (h.backingNameOffset + h.backingNameSize > h.headerSize * h.clusterSize) {
      throw new CorruptImageError(file, 'QED backing file name lies outside the header');
    }
  }
  return h;
}

/** QEMU rounds the file size down to a whole cluster: a partial last cluster is not part of the image. */
export function qedFileEnd(h: QedHeader, fileSize: number): number {
  return Math.floor(fileSize / h.clusterSize) * h.clusterSize;
}

/** QEMU's qed_check_cluster_offset: cluster-aligned, past the header, inside the file. */
export function validClusterOffset(h: QedHeader, offset: number, fileSize: number): boolean {
  return offset % h.clusterSize === 0 && offset >= h.headerSize * h.clusterSize && offset < fileSize;
}

/** QEMU's qed_check_table_offset: the table's first and last cluster are valid. */
export function validTableOffset(h: QedHeader, offset: number, fileSize: number): boolean {
  return validClusterOffset(h, offset, fileSize) && validClusterOffset(h, offset + (h.tableSize - 1) * h.clusterSize, fileSize);
}

export interface QedHeaderFields {
  clusterSize: number;
  tableSize: number;
  imageSize: number;
  backingName?: string;
  backingRaw?: boolean;
}

/** The header cluster as QEMU's qed_create writes it: the backing file name right after the header. */
export function buildQedHeader(f: QedHeaderFields, name: Uint8Array | undefined): Uint8Array {
  const s = Struct.alloc(f.clusterSize, true);
  let features = 0;
  if (name) features |= QED_F_BACKING_FILE | (f.backingRaw ? QED_F_BACKING_FORMAT_NO_PROBE : 0);
  s.setU32(0, QED_MAGIC).setU32(4, f.clusterSize).setU32(8, f.tableSize).setU32(12, 1);
  s.setU64(16, features).setU64(40, f.clusterSize).setU64(48, f.imageSize);
  if (name) {
    s.setU32(56, QED_HEADER_BYTES).setU32(60, name.length);
    s.setBytes(QED_HEADER_BYTES, name);
  }
  return s.bytes;
}
