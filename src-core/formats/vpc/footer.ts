import { CorruptImageError, InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { Struct } from '../../io/struct.ts';

/**
 * The VHD hard disk footer (VHD spec 1.0 §"Hard Disk Footer Format"; QEMU block/vpc.c VHDFooter).
 * 512 bytes, big-endian, at the end of every VHD and, for dynamic and differencing disks, also
 * copied at offset 0.
 */
export const FOOTER_SIZE = 512;
export const COOKIE = 'conectix';
export const DYNAMIC_COOKIE = 'cxsparse';

export const DISK_FIXED = 2;
export const DISK_DYNAMIC = 3;
export const DISK_DIFFERENCING = 4;

/** VHD timestamps count seconds from 2000-01-01 00:00:00 UTC. */
export const VHD_EPOCH_MS = Date.UTC(2000, 0, 1);

/** CHS that marks "use the current size" (QEMU's VHD_MAX_GEOMETRY, also what force_size writes). */
export const MAX_CYLINDERS = 65535;
export const MAX_HEADS = 16;
export const MAX_SPT = 255;
export const VHD_MAX_GEOMETRY = MAX_CYLINDERS * MAX_HEADS * MAX_SPT;
/** QEMU refuses disks above 2040 GiB (VHD_MAX_SECTORS = 0xff000000). */
export const VHD_MAX_SECTORS = 0xff000000;

export interface VhdFooter {
  features: number;
  version: number;
  /** Offset of the dynamic disk header; all ones (here: -1) for fixed disks. */
  dataOffset: number;
  timestamp: number;
  creatorApp: string;
  /** The four creator bytes as stored, for the size rule (which tells 'd2v ' from 'd2v\0'). */
  creatorAppBytes: Uint8Array;
  creatorVersion: number;
  creatorOs: string;
  originalSize: number;
  currentSize: number;
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
  diskType: number;
  checksum: number;
  uuid: Uint8Array;
  savedState: number;
}

/** One's complement of the byte sum, with the checksum field itself counted as zero. */
export function vhdChecksum(buf: Uint8Array, checksumOffset: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) {
    if (i >= checksumOffset && i < checksumOffset + 4) continue;
    sum = (sum + buf[i]!) >>> 0;
  }
  return ~sum >>> 0;
}

export function hasCookie(b: Uint8Array, cookie = COOKIE): boolean {
  if (b.length < cookie.length) return false;
  for (let i = 0; i < cookie.length; i++) if (b[i] !== cookie.charCodeAt(i)) return false;
  return true;
}

/** The creator app as text for display: trailing spaces kept, NULs shown as \0. */
function fourCC(b: Uint8Array): string {
  return Array.from(b, (c) => (c === 0 ? '\\0' : String.fromCharCode(c))).join('');
}

export function parseFooter(file: string, buf: Uint8Array, where: string): VhdFooter {
  if (!hasCookie(buf)) throw new CorruptImageError(file, `no VHD footer cookie "conectix" ${where}`);
  const s = new Struct(buf.subarray(0, FOOTER_SIZE));
  const stored = s.u32(64);
  const computed = vhdChecksum(s.bytes, 64);
  if (stored !== computed) {
    throw new CorruptImageError(
      file,
      `VHD footer checksum ${where} is wrong (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')})`,
    );
  }
  const rawDataOffset = s.big64(16);
  return {
    features: s.u32(8),
    version: s.u32(12),
    dataOffset: rawDataOffset === 0xffffffffffffffffn ? -1 : s.u64(16, 'VHD footer data offset'),
    timestamp: s.u32(24),
    creatorApp: fourCC(s.bytesAt(28, 4)),
    creatorAppBytes: s.bytesAt(28, 4).slice(),
    creatorVersion: s.u32(32),
    creatorOs: fourCC(s.bytesAt(36, 4)),
    originalSize: s.u64(40, 'VHD original size'),
    currentSize: s.u64(48, 'VHD current size'),
    cylinders: s.u16(56),
    heads: s.u8(58),
    sectorsPerTrack: s.u8(59),
    diskType: s.u32(60),
    checksum: stored,
    uuid: s.bytesAt(68, 16).slice(),
    savedState: s.u8(84),
  };
}

/**
 * QEMU's rule for the guest size (vpc_open): Virtual PC sizes a disk by its CHS geometry,
 * Hyper-V, disk2vhd, XenServer and QEMU's own force_size images by the current size. A
 * saturated geometry (65535/16/255) always means the current size, whatever the creator.
 */
export function sizeRule(f: VhdFooter, force?: SizeCalc): { size: number; source: 'current-size' | 'chs' } {
  const app = f.creatorAppBytes;
  const is = (name: string) => app.every((c, i) => c === name.charCodeAt(i));
  const currentSizeApps = ['win ', 'qem2', 'd2v ', 'CTXS', 'tap\u0000'];
  const useChs = !currentSizeApps.some(is) || force === 'chs';
  const chsSectors = f.cylinders * f.heads * f.sectorsPerTrack;
  // Even a forced "chs" yields to a saturated geometry, as in QEMU.
  if (!useChs || chsSectors === VHD_MAX_GEOMETRY || force === 'current_size')
    return { size: Math.floor(f.currentSize / 512) * 512, source: 'current-size' };
  return { size: chsSectors * 512, source: 'chs' };
}

/** QEMU's runtime override, `--image-opts driver=vpc,force_size_calc=chs|current_size,…`. */
export type SizeCalc = 'chs' | 'current_size';

export function parseSizeCalc(file: string, options: Record<string, string> | undefined): SizeCalc | undefined {
  const v = options?.force_size_calc;
  if (v === undefined) return undefined;
  if (v === 'chs' || v === 'current_size') return v;
  throw new InvalidArgumentError(`invalid force_size_calc "${v}" (use chs or current_size)`, file);
}

export function checkSize(file: string, size: number): void {
  if (size / 512 > VHD_MAX_SECTORS) throw new UnsupportedError(file, `VHD disk size ${size} is above the 2040 GiB limit`);
}

/** CHS for a sector count, as the VHD spec appendix and QEMU's calculate_geometry compute it (rounds down). */
export function chsGeometry(totalSectors: number): { cylinders: number; heads: number; sectorsPerTrack: number } {
  const ts = Math.min(totalSectors, VHD_MAX_GEOMETRY);
  let spt: number;
  let heads: number;
  let cth: number;
  if (ts >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(ts / spt);
  } else {
    spt = 17;
    cth = Math.floor(ts / spt);
    heads = Math.max(4, Math.ceil(cth / 1024));
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(ts / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(ts / spt);
    }
  }
  return { cylinders: Math.floor(cth / heads), heads, sectorsPerTrack: spt };
}

/** qemu-img's default sizing: the smallest CHS geometry that covers the size (vpc calculate_rounded_image_size). */
export function roundUpToChs(totalSectors: number): { cylinders: number; heads: number; sectorsPerTrack: number; sectors: number } {
  let g = { cylinders: 0, heads: 0, sectorsPerTrack: 0 };
  const want = Math.min(totalSectors, VHD_MAX_GEOMETRY);
  for (let i = 0; want > g.cylinders * g.heads * g.sectorsPerTrack; i++) g = chsGeometry(want + i);
  const chs = g.cylinders * g.heads * g.sectorsPerTrack;
  return { ...g, sectors: chs === VHD_MAX_GEOMETRY ? totalSectors : chs };
}

export interface FooterFields {
  dataOffset: number;
  creatorApp: string;
  creatorVersion: number;
  size: number;
  geometry: { cylinders: number; heads: number; sectorsPerTrack: number };
  diskType: number;
  uuid: Uint8Array;
  timestamp: number;
}

export function buildFooter(f: FooterFields): Uint8Array {
  const s = Struct.alloc(FOOTER_SIZE);
  s.setString(0, COOKIE);
  s.setU32(8, 0x2).setU32(12, 0x00010000);
  if (f.dataOffset < 0) s.setBig64(16, 0xffffffffffffffffn);
  else s.setU64(16, f.dataOffset);
  s.setU32(24, f.timestamp);
  for (let i = 0; i < 4; i++) s.setU8(28 + i, f.creatorApp.charCodeAt(i));
  s.setU32(32, f.creatorVersion).setString(36, 'Wi2k');
  s.setU64(40, f.size).setU64(48, f.size);
  s.setU16(56, f.geometry.cylinders).setU8(58, f.geometry.heads).setU8(59, f.geometry.sectorsPerTrack);
  s.setU32(60, f.diskType);
  s.setBytes(68, f.uuid);
  s.setU32(64, vhdChecksum(s.bytes, 64));
  return s.bytes;
}

/** Seconds since 2000-01-01 UTC for a time in ms since 1970 (0 for anything earlier). */
export function vhdTimestamp(ms: number): number {
  return Math.max(0, Math.floor((ms - VHD_EPOCH_MS) / 1000)) >>> 0;
}
