import { CorruptImageError } from '../../io/errors.ts';
import { alignUp, isPowerOfTwo } from '../../io/int64.ts';
import { Struct } from '../../io/struct.ts';
import { DYNAMIC_COOKIE, hasCookie, vhdChecksum } from './footer.ts';

/** The dynamic disk header (VHD spec §"Dynamic Disk Header Format"): 1024 bytes, big-endian. */
export const DYNAMIC_HEADER_SIZE = 1024;
export const BAT_UNUSED = 0xffffffff;

export interface ParentLocator {
  /** Platform code as text: W2ru, W2ku, Wi2r, Wi2k, MacX. */
  code: string;
  dataSpace: number;
  dataLength: number;
  dataOffset: number;
}

export interface DynamicHeader {
  tableOffset: number;
  version: number;
  maxTableEntries: number;
  blockSize: number;
  checksum: number;
  parentUuid: Uint8Array;
  parentTimestamp: number;
  /** The parent's file name (UTF-16BE in the file). */
  parentName: string;
  locators: ParentLocator[];
}

export function parseDynamicHeader(file: string, buf: Uint8Array): DynamicHeader {
  if (!hasCookie(buf, DYNAMIC_COOKIE))
    throw new CorruptImageError(file, 'no VHD dynamic disk header cookie "cxsparse" at the footer\'s data offset');
  const s = new Struct(buf.subarray(0, DYNAMIC_HEADER_SIZE));
  const stored = s.u32(36);
  const computed = vhdChecksum(s.bytes, 36);
  if (stored !== computed) {
    // QEMU does not check this one; a wrong value still means the header cannot be trusted.
    throw new CorruptImageError(
      file,
      `VHD dynamic disk header checksum is wrong (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')})`,
    );
  }
  const blockSize = s.u32(32);
  if (!isPowerOfTwo(blockSize) || blockSize < 512)
    throw new CorruptImageError(file, `VHD block size ${blockSize} is not a power of two of at least 512`);
  const locators: ParentLocator[] = [];
  for (let i = 0; i < 8; i++) {
    const o = 576 + i * 24;
    const codeBytes = s.bytesAt(o, 4);
    if (codeBytes.every((c) => c === 0)) continue;
    locators.push({
      code: String.fromCharCode(...codeBytes),
      dataSpace: s.u32(o + 4),
      dataLength: s.u32(o + 8),
      dataOffset: s.u64(o + 16, 'VHD parent locator offset'),
    });
  }
  return {
    tableOffset: s.u64(16, 'VHD BAT offset'),
    version: s.u32(24),
    maxTableEntries: s.u32(28),
    blockSize,
    checksum: stored,
    parentUuid: s.bytesAt(40, 16).slice(),
    parentTimestamp: s.u32(56),
    parentName: decodeUtf16(s.bytesAt(64, 512), false),
    locators,
  };
}

/** Sector bitmap bytes before each block's data, padded to a sector (VHD spec; 512 for 2 MiB blocks). */
export function bitmapBytes(blockSize: number): number {
  return alignUp(Math.ceil(blockSize / 512 / 8), 512);
}

export function decodeUtf16(b: Uint8Array, littleEndian: boolean): string {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let out = '';
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = v.getUint16(i, littleEndian);
    if (c === 0) break;
    out += String.fromCharCode(c);
  }
  return out;
}

export function encodeUtf16(text: string, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  const v = new DataView(out.buffer);
  for (let i = 0; i < text.length; i++) v.setUint16(i * 2, text.charCodeAt(i), littleEndian);
  return out;
}

/** The parent fields of a differencing disk's header (VHD spec §"Dynamic Disk Header Format"). */
export interface ParentFields {
  uuid: Uint8Array;
  timestamp: number;
  /** At most 255 UTF-16 units; stored big-endian. */
  name: string;
  locators: ParentLocator[];
}

export function buildDynamicHeader(tableOffset: number, maxTableEntries: number, blockSize: number, parent?: ParentFields): Uint8Array {
  const s = Struct.alloc(DYNAMIC_HEADER_SIZE);
  s.setString(0, DYNAMIC_COOKIE);
  // The spec says 0xFFFFFFFF, but Microsoft's tools expect all 64 bits set (QEMU create_dynamic_disk).
  s.setBig64(8, 0xffffffffffffffffn);
  s.setU64(16, tableOffset).setU32(24, 0x00010000).setU32(28, maxTableEntries).setU32(32, blockSize);
  if (parent) {
    if (parent.locators.length > 8) throw new RangeError('a VHD header holds at most 8 parent locators');
    s.setBytes(40, parent.uuid).setU32(56, parent.timestamp);
    s.setBytes(64, encodeUtf16(parent.name, false).subarray(0, 510));
    parent.locators.forEach((l, i) => {
      const o = 576 + i * 24;
      s.setString(o, l.code)
        .setU32(o + 4, l.dataSpace)
        .setU32(o + 8, l.dataLength)
        .setU64(o + 16, l.dataOffset);
    });
  }
  s.setU32(36, vhdChecksum(s.bytes, 36));
  return s.bytes;
}
