import { CorruptImageError, NotThisFormatError, UnsupportedError } from '../../io/errors.ts';
import { Struct, utf8Decode } from '../../io/struct.ts';

/**
 * The Parallels expandable image header (QEMU docs/interop/parallels.txt, block/parallels.h):
 * 64 bytes, little-endian, followed by the BAT (u32 per cluster).
 */
export const PRL_HEADER_BYTES = 64;
/** Old images: BAT entries in sectors, nb_sectors only 32 bits. */
export const MAGIC_V1 = 'WithoutFreeSpace';
/** Newer images: BAT entries in clusters, optional format extension. */
export const MAGIC_V2 = 'WithouFreSpacExt';
export const PRL_VERSION = 2;
/** `inuse` while software has the image open read/write (a dirty image). */
export const INUSE_MAGIC = 0x746f6e59;
export const HEADS_NUMBER = 16;
export const SEC_IN_CYL = 32;
export const DEFAULT_CLUSTER = 1024 * 1024;
/** QEMU refuses clusters of more than INT32_MAX/513 sectors ("Too big cluster"). */
export const MAX_TRACKS = Math.floor(0x7fffffff / 513);

export interface PrlHeader {
  ext: boolean;
  heads: number;
  cylinders: number;
  /** Cluster size in sectors. */
  tracks: number;
  batEntries: number;
  /** Disk size in sectors. */
  nbSectors: number;
  inuse: number;
  /** Start of the data area in sectors (0 in old images: computed). */
  dataOff: number;
  flags: number;
  /** Format extension cluster, in sectors (0: none). */
  extOff: number;
}

export function prlMagic(head: Uint8Array): 1 | 2 | 0 {
  if (head.length < PRL_HEADER_BYTES) return 0;
  const magic = utf8Decode(head.subarray(0, 16));
  const version = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(16, true);
  if (version !== PRL_VERSION) return 0;
  return magic === MAGIC_V1 ? 1 : magic === MAGIC_V2 ? 2 : 0;
}

export function parsePrlHeader(file: string, buf: Uint8Array): PrlHeader {
  const kind = prlMagic(buf);
  if (!kind) throw new NotThisFormatError(file, 'not a Parallels image (no "WithoutFreeSpace"/"WithouFreSpacExt" magic with version 2)');
  const s = new Struct(buf.subarray(0, PRL_HEADER_BYTES), true);
  const ext = kind === 2;
  const big = s.big64(36);
  const h: PrlHeader = {
    ext,
    heads: s.u32(20),
    cylinders: s.u32(24),
    tracks: s.u32(28),
    batEntries: s.u32(32),
    // QEMU uses only the low 32 bits of nb_sectors in "WithoutFreeSpace" images.
    nbSectors: ext ? Number(big) : Number(big & 0xffffffffn),
    inuse: s.u32(44),
    dataOff: s.u32(48),
    flags: s.u32(52),
    extOff: 0,
  };
  if (ext) h.extOff = s.u64(56, 'Parallels ext_off');
  if (h.tracks === 0) throw new CorruptImageError(file, 'invalid Parallels image: zero sectors per track (cluster size 0)');
  if (h.tracks > MAX_TRACKS) throw new UnsupportedError(file, `Parallels cluster of ${h.tracks} sectors is too big`);
  // Sizes beyond 2^53 bytes cannot be addressed; QEMU's own limit is far below.
  if (!Number.isSafeInteger(h.nbSectors * 512)) throw new CorruptImageError(file, `Parallels disk size of ${big} sectors is too large`);
  return h;
}

/** Bytes of file offset per BAT unit: clusters in "Ext" images, sectors in old ones. */
export function prlOffMultiplier(h: PrlHeader): number {
  return (h.ext ? h.tracks : 1) * 512;
}

export interface PrlHeaderFields {
  clusterSize: number;
  virtualSize: number;
  batEntries: number;
  dataOffSectors: number;
}

/** The header qemu-img create writes: "Ext" magic, 16 heads, geometry from the size, inuse 0. */
export function buildPrlHeader(f: PrlHeaderFields): Uint8Array {
  const s = Struct.alloc(PRL_HEADER_BYTES, true);
  s.setString(0, MAGIC_V2);
  s.setU32(16, PRL_VERSION).setU32(20, HEADS_NUMBER);
  s.setU32(24, Math.floor(f.virtualSize / 512 / HEADS_NUMBER / SEC_IN_CYL));
  s.setU32(28, f.clusterSize / 512).setU32(32, f.batEntries);
  s.setU64(36, Math.ceil(f.virtualSize / 512));
  s.setU32(48, f.dataOffSectors);
  return s.bytes;
}
