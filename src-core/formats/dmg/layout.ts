import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { Struct, utf8Decode } from '../../io/struct.ts';

/**
 * Apple UDIF disk images (.dmg), as QEMU's block/dmg.c reads them. All big-endian.
 *
 * The 512-byte "koly" trailer ends the file (QEMU looks for its magic in the last 515 bytes):
 *   0x00 "koly"  0x04 version  0x08 header size (512)  0x18 u64 data fork offset
 *   0x28 u64 resource fork offset  0x30 u64 resource fork length
 *   0xD8 u64 XML plist offset      0xE0 u64 XML plist length      0x1EC u64 sector count
 * The chunk tables ("mish" blocks) sit in the resource fork, or — when it is empty — in the
 * XML plist's <data> elements (base64); QEMU takes every <data> that decodes to a mish block.
 *   mish: 0x00 "mish"  0x08 u64 first sector  0x18 u64 data offset (in the data fork)
 *         0xCC chunks of 40 bytes: u32 type, u32 comment, u64 sector, u64 sector count,
 *              u64 offset, u64 length (offsets relative to the data fork + data offset,
 *              sectors relative to the mish block's first sector)
 */
export const KOLY_SIZE = 512;
export const KOLY_MAGIC = 0x6b6f6c79;
export const MISH_MAGIC = 0x6d697368;
export const MISH_HEADER = 204;
export const CHUNK_ENTRY = 40;

export const CHUNK_ZERO = 0;
export const CHUNK_RAW = 1;
export const CHUNK_IGNORE = 2;
export const CHUNK_ADC = 0x80000004;
export const CHUNK_ZLIB = 0x80000005;
export const CHUNK_BZIP2 = 0x80000006;
export const CHUNK_LZFSE = 0x80000007;
export const CHUNK_COMMENT = 0x7ffffffe;
export const CHUNK_END = 0xffffffff;

export const CHUNK_NAMES: Record<number, string> = {
  [CHUNK_ZERO]: 'zero',
  [CHUNK_RAW]: 'raw',
  [CHUNK_IGNORE]: 'ignore',
  [CHUNK_ADC]: 'ADC',
  [CHUNK_ZLIB]: 'zlib',
  [CHUNK_BZIP2]: 'bzip2',
  [CHUNK_LZFSE]: 'lzfse',
};

/** QEMU's limits: a chunk holds at most 64 MiB, compressed or not; the XML plist at most 16 MiB. */
export const DMG_LENGTHS_MAX = 64 * 1024 * 1024;
export const DMG_SECTORCOUNTS_MAX = DMG_LENGTHS_MAX / 512;
export const DMG_XML_MAX = 16 * 1024 * 1024;
/** Ours: chunk entries kept in memory (40 bytes each on disk). */
export const DMG_MAX_CHUNKS = 4 * 1024 * 1024;

export interface Koly {
  at: number;
  dataForkOffset: number;
  rsrcOffset: number;
  rsrcLength: number;
  xmlOffset: number;
  xmlLength: number;
  sectorCount: number;
}

export interface Chunk {
  type: number;
  /** First guest sector and count. */
  sector: number;
  sectors: number;
  /** Absolute file offset and length of its stored bytes. */
  offset: number;
  length: number;
}

/** Where "koly" starts within the last 515 bytes of the file (dmg_find_koly_offset), or -1. */
export function findKoly(tail: Uint8Array, tailStart: number): number {
  for (let i = 0; i + 3 < tail.length; i++) {
    if (tail[i] === 0x6b && tail[i + 1] === 0x6f && tail[i + 2] === 0x6c && tail[i + 3] === 0x79) return tailStart + i;
  }
  return -1;
}

/** dmg_open's checks on the trailer. */
export function parseKoly(file: string, b: Uint8Array, at: number): Koly {
  if (b.length < KOLY_SIZE) throw new CorruptImageError(file, 'dmg: the koly trailer is cut short');
  const s = new Struct(b);
  const dataForkOffset = s.u64(0x18, 'dmg data fork offset');
  const rsrcOffset = s.u64(0x28, 'dmg resource fork offset');
  const rsrcLength = s.u64(0x30, 'dmg resource fork length');
  const xmlOffset = s.u64(0xd8, 'dmg XML offset');
  const xmlLength = s.u64(0xe0, 'dmg XML length');
  const sectorCount = s.u64(0x1ec, 'dmg sector count');
  if (dataForkOffset > at) throw new CorruptImageError(file, `dmg data fork offset ${dataForkOffset} is past the trailer`);
  if (rsrcOffset >= at || rsrcLength > at - rsrcOffset)
    throw new CorruptImageError(file, 'dmg resource fork lies outside the file before the trailer');
  if (xmlOffset >= at || xmlLength > at - xmlOffset)
    throw new CorruptImageError(file, 'dmg XML plist lies outside the file before the trailer');
  if (!rsrcLength && !xmlLength) throw new CorruptImageError(file, 'dmg has neither a resource fork nor an XML plist');
  if (sectorCount > Number.MAX_SAFE_INTEGER / 512)
    throw new CorruptImageError(file, `dmg sector count ${sectorCount} is beyond the 2^53 limit this program can address`);
  return { at, dataForkOffset, rsrcOffset, rsrcLength, xmlOffset, xmlLength, sectorCount };
}

/**
 * dmg_read_mish_block: the chunks of one mish block. Blocks with another magic or shorter than
 * 244 bytes are skipped; comment and end entries, and types QEMU does not know, are dropped.
 */
export function readMish(file: string, b: Uint8Array, dataForkOffset: number, out: Chunk[]): void {
  if (b.length < 244) return;
  const s = new Struct(b);
  if (s.u32(0) !== MISH_MAGIC) return;
  const firstSector = s.u64(8, 'dmg mish first sector');
  const inOffset = dataForkOffset + s.u64(0x18, 'dmg mish data offset');
  const n = Math.floor((b.length - MISH_HEADER) / CHUNK_ENTRY);
  if (out.length + n > DMG_MAX_CHUNKS) throw new UnsupportedError(file, `dmg has more than ${DMG_MAX_CHUNKS} chunks`);
  for (let i = 0; i < n; i++) {
    const e = MISH_HEADER + i * CHUNK_ENTRY;
    const type = s.u32(e);
    if (!(type in CHUNK_NAMES)) continue;
    const sector = firstSector + s.u64(e + 8, 'dmg chunk sector');
    const sectors = s.u64(e + 0x10, 'dmg chunk sector count');
    const where = `dmg chunk ${out.length}`;
    if (type !== CHUNK_ZERO && type !== CHUNK_IGNORE && sectors > DMG_SECTORCOUNTS_MAX) {
      throw new CorruptImageError(file, `${where}: sector count ${sectors} is larger than the maximum ${DMG_SECTORCOUNTS_MAX}`);
    }
    const offset = inOffset + s.u64(e + 0x18, 'dmg chunk offset');
    const length = s.u64(e + 0x20, 'dmg chunk length');
    if (length > DMG_LENGTHS_MAX)
      throw new CorruptImageError(file, `${where}: length ${length} is larger than the maximum ${DMG_LENGTHS_MAX}`);
    if (!Number.isSafeInteger(sector + sectors) || !Number.isSafeInteger(offset + length))
      throw new CorruptImageError(file, `${where} lies beyond the 2^53 limit this program can address`);
    out.push({ type, sector, sectors, offset, length });
  }
}

const B64 = (() => {
  const t = new Int16Array(256).fill(-1);
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < abc.length; i++) t[abc.charCodeAt(i)] = i;
  return t;
})();

/** Base64 as GLib decodes it in dmg_read_plist_xml: other characters (whitespace) are skipped, '=' ends. */
export function base64Decode(b: Uint8Array, from: number, to: number): Uint8Array {
  const out = new Uint8Array(Math.floor(((to - from) * 3) / 4) + 3);
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c === 0x3d) break;
    const v = B64[c]!;
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

/** Every <data>…</data> of the plist, decoded (dmg_read_plist_xml). */
export function* plistData(file: string, xml: Uint8Array): Generator<Uint8Array> {
  const open = [0x3c, 0x64, 0x61, 0x74, 0x61, 0x3e]; // <data>
  const close = [0x3c, 0x2f, 0x64, 0x61, 0x74, 0x61, 0x3e]; // </data>
  const find = (pat: number[], from: number): number => {
    outer: for (let i = from; i + pat.length <= xml.length; i++) {
      for (let k = 0; k < pat.length; k++) if (xml[i + k] !== pat[k]) continue outer;
      return i;
    }
    return -1;
  };
  let at = 0;
  for (;;) {
    const start = find(open, at);
    if (start < 0) return;
    const end = find(close, start + open.length);
    if (end < 0) throw new CorruptImageError(file, 'dmg XML plist: a <data> element is not closed');
    yield base64Decode(xml, start + open.length, end);
    at = end + close.length;
  }
}

export const describeType = (t: number) => `${CHUNK_NAMES[t] ?? 'unknown'} (type 0x${t.toString(16)})`;
export { utf8Decode };
