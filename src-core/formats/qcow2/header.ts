import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { Struct, utf8Decode } from '../../io/struct.ts';

// Layout and limits: QEMU docs/interop/qcow2.txt and block/qcow2.c (qcow2_do_open), 7.2.
export const QCOW_MAGIC = 0x514649fb;
export const V2_HEADER_LENGTH = 72;
export const V3_HEADER_LENGTH = 104;
/** QEMU writes 112: the 104-byte header plus compression_type and its padding. */
export const V3_HEADER_LENGTH_WITH_COMPRESSION = 112;

export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
const INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;
export const AUTOCLEAR_BITMAPS = 1n << 0n;
export const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;

export const EXT_END = 0;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

export const CRYPT_NONE = 0;
export const CRYPT_AES = 1;
export const CRYPT_LUKS = 2;

/** QEMU's limits (block/qcow2.h): checked before anything is allocated. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
export const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
export const MAX_SNAPSHOTS = 65536;
export const MAX_SNAPSHOT_TABLE_BYTES = 64 * 1024 * 1024;
export const MAX_SNAPSHOT_EXTRA = 1024;
export const MAX_BACKING_NAME = 1023;
export const MAX_BACKING_FORMAT = 15;
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  clusterSize: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatible: bigint;
  compatible: bigint;
  autoclear: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  // From extensions and the backing name:
  backingFile?: string;
  backingFormat?: string;
  dataFile?: string;
  crypto?: { offset: number; length: number };
  bitmaps?: { count: number; dirSize: number; dirOffset: number };
  featureNames: { type: number; bit: number; name: string }[];
  unknownExtensions: number[];
  extendedL2: boolean;
}

export function isQcow2(head: Uint8Array): boolean {
  if (head.length < 8) return false;
  const s = new Struct(head);
  return s.u32(0) === QCOW_MAGIC && (s.u32(4) === 2 || s.u32(4) === 3);
}

/** Parses and validates the header and its extensions; `cluster0` is the first cluster (or the whole file if smaller). */
export function parseHeader(file: string, cluster0: Uint8Array, fileSize: number): Qcow2Header {
  const bad = (msg: string) => new CorruptImageError(file, `qcow2 header: ${msg}`);
  if (cluster0.length < V2_HEADER_LENGTH) throw bad(`file is only ${cluster0.length} bytes, shorter than a header`);
  const s = new Struct(cluster0);
  if (s.u32(0) !== QCOW_MAGIC) throw bad('bad magic');
  const version = s.u32(4);
  if (version !== 2 && version !== 3) throw new UnsupportedError(file, `qcow2 version ${version} is not supported`);
  const clusterBits = s.u32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw bad(`cluster_bits ${clusterBits} is outside ${MIN_CLUSTER_BITS}…${MAX_CLUSTER_BITS}`);
  }
  const clusterSize = 2 ** clusterBits;
  const h: Qcow2Header = {
    version,
    backingFileOffset: s.u64(8, 'backing_file_offset'),
    backingFileSize: s.u32(16),
    clusterBits,
    clusterSize,
    size: s.u64(24, 'size'),
    cryptMethod: s.u32(32),
    l1Size: s.u32(36),
    l1TableOffset: s.u64(40, 'l1_table_offset'),
    refcountTableOffset: s.u64(48, 'refcount_table_offset'),
    refcountTableClusters: s.u32(56),
    nbSnapshots: s.u32(60),
    snapshotsOffset: s.u64(64, 'snapshots_offset'),
    incompatible: 0n,
    compatible: 0n,
    autoclear: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: 0,
    featureNames: [],
    unknownExtensions: [],
    extendedL2: false,
  };
  if (version === 3) {
    if (cluster0.length < V3_HEADER_LENGTH) throw bad('file is shorter than a version 3 header');
    h.incompatible = s.big64(72);
    h.compatible = s.big64(80);
    h.autoclear = s.big64(88);
    h.refcountOrder = s.u32(96);
    h.headerLength = s.u32(100);
    if (h.headerLength < V3_HEADER_LENGTH) throw bad(`header_length ${h.headerLength} is below 104`);
    if (h.headerLength > clusterSize) throw bad(`header_length ${h.headerLength} exceeds the cluster size`);
    if (h.headerLength > V3_HEADER_LENGTH) h.compressionType = s.u8(104);
  }
  if (h.refcountOrder > 6) throw bad(`refcount_order ${h.refcountOrder} is above 6`);
  const unknown = h.incompatible & ~INCOMPAT_KNOWN;
  if (unknown) throw new UnsupportedError(file, `qcow2 incompatible feature bits 0x${unknown.toString(16)} are not supported`);
  if (h.cryptMethod > CRYPT_LUKS) throw new UnsupportedError(file, `qcow2 encryption method ${h.cryptMethod} is not supported`);
  if ((h.compressionType !== 0) !== !!(h.incompatible & INCOMPAT_COMPRESSION)) {
    throw bad('compression type and the compression feature bit disagree');
  }
  if (h.compressionType > 1) throw new UnsupportedError(file, `qcow2 compression type ${h.compressionType} is not supported`);
  h.extendedL2 = !!(h.incompatible & INCOMPAT_EXTL2);
  if (h.extendedL2 && clusterBits < 14) throw bad('extended L2 entries need clusters of at least 16 KiB');
  if (h.size % 512 !== 0) h.size -= h.size % 512; // QEMU uses size/512 sectors: the tail is dropped
  if (h.l1Size * 8 > MAX_L1_BYTES) throw bad(`active L1 table is too large (${h.l1Size} entries)`);
  if (h.l1TableOffset % clusterSize !== 0) throw bad('L1 table offset is not cluster aligned');
  const l2Entries = clusterSize / (h.extendedL2 ? 16 : 8);
  const minL1 = Math.ceil(h.size / (clusterSize * l2Entries));
  if (h.l1Size < minL1) throw bad(`L1 table is too small (${h.l1Size} entries for ${h.size} bytes)`);
  if (h.refcountTableClusters === 0) throw bad('refcount table has no clusters');
  if (h.refcountTableClusters * clusterSize > MAX_REFTABLE_BYTES) throw bad('refcount table is too large');
  if (h.refcountTableOffset % clusterSize !== 0) throw bad('refcount table offset is not cluster aligned');
  if (h.nbSnapshots > MAX_SNAPSHOTS) throw bad(`too many snapshots (${h.nbSnapshots})`);
  if (h.nbSnapshots && h.snapshotsOffset % clusterSize !== 0) throw bad('snapshot table offset is not cluster aligned');
  if (h.backingFileOffset) {
    if (h.backingFileSize > MAX_BACKING_NAME) throw bad(`backing file name is too long (${h.backingFileSize} bytes)`);
    if (h.backingFileOffset + h.backingFileSize > Math.min(clusterSize, cluster0.length)) {
      throw bad('backing file name does not fit in the first cluster');
    }
    h.backingFile = utf8Decode(cluster0.subarray(h.backingFileOffset, h.backingFileOffset + h.backingFileSize));
  }
  parseExtensions(h, s, cluster0.length, bad);
  if (h.cryptMethod === CRYPT_LUKS && !h.crypto) throw bad('LUKS encryption without its header extension');
  void fileSize;
  return h;
}

function parseExtensions(h: Qcow2Header, s: Struct, available: number, bad: (m: string) => Error): void {
  const end = Math.min(h.backingFileOffset || h.clusterSize, available);
  let off = h.headerLength;
  while (off + 8 <= end) {
    const type = s.u32(off);
    const len = s.u32(off + 4);
    off += 8;
    if (type === EXT_END) return;
    if (len > end - off) throw bad(`header extension 0x${type.toString(16)} is too large`);
    const data = s.bytesAt(off, len);
    const d = new Struct(data);
    switch (type) {
      case EXT_BACKING_FORMAT:
        if (len > MAX_BACKING_FORMAT) throw bad('backing format name is too long');
        h.backingFormat = utf8Decode(data);
        break;
      case EXT_FEATURE_TABLE:
        for (let i = 0; i + 48 <= len; i += 48) {
          h.featureNames.push({ type: d.u8(i), bit: d.u8(i + 1), name: d.cstring(i + 2, 46) });
        }
        break;
      case EXT_CRYPTO:
        if (len !== 16) throw bad('crypto header extension has the wrong size');
        h.crypto = { offset: d.u64(0, 'crypto header offset'), length: d.u64(8, 'crypto header length') };
        if (h.crypto.offset % h.clusterSize !== 0) throw bad('crypto header is not cluster aligned');
        break;
      case EXT_BITMAPS:
        if (len !== 24) throw bad('bitmaps header extension has the wrong size');
        h.bitmaps = { count: d.u32(0), dirSize: d.u64(8, 'bitmap directory size'), dirOffset: d.u64(16, 'bitmap directory offset') };
        break;
      case EXT_DATA_FILE:
        h.dataFile = utf8Decode(data);
        break;
      default:
        h.unknownExtensions.push(type);
    }
    off += Math.ceil(len / 8) * 8;
  }
}

/** Human names for the incompatible bits that are set. */
export function describeFeatures(h: Qcow2Header): string[] {
  const out: string[] = [];
  if (h.incompatible & INCOMPAT_DIRTY) out.push('dirty');
  if (h.incompatible & INCOMPAT_CORRUPT) out.push('corrupt');
  if (h.incompatible & INCOMPAT_DATA_FILE) out.push('external data file');
  if (h.incompatible & INCOMPAT_COMPRESSION) out.push('zstd compression');
  if (h.incompatible & INCOMPAT_EXTL2) out.push('extended L2');
  return out;
}
