import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { Struct, utf8Decode } from '../../io/struct.ts';

/** The one file a zip holds, as its central directory describes it (APPNOTE 6.3, zip64 included). */
export interface ZipMember {
  name: string;
  /** 0 stored, 8 deflate, 12 bzip2, 93 zstd (others are refused). */
  method: number;
  compressedSize: number;
  size: number;
  /** Where the member's compressed bytes start. */
  dataOffset: number;
}

const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
export const ZIP_METHODS: Record<number, string> = {
  0: 'stored',
  8: 'deflate',
  9: 'deflate64',
  12: 'bzip2',
  14: 'lzma',
  93: 'zstd',
  95: 'xz',
  99: 'AES-encrypted',
};
const READABLE = new Set([0, 8, 12, 93]);
const MAX_ENTRIES = 100_000;

/** Finds the single file in a zip (folders and macOS "__MACOSX/" resource forks aside). */
export async function zipMember(src: ByteSource): Promise<ZipMember> {
  const file = src.name;
  const tailLen = Math.min(src.size, 65535 + 22);
  const tail = await readExact(src, src.size - tailLen, tailLen);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail[i] === 0x50 && tail[i + 1] === 0x4b && tail[i + 2] === 5 && tail[i + 3] === 6) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new CorruptImageError(file, 'zip: no end of central directory record (truncated file?)');
  const e = new Struct(tail.subarray(at), true);
  let entries = e.u16(10);
  let cdSize = e.u32(12);
  let cdOffset = e.u32(16);
  const eocdPos = src.size - tailLen + at;
  if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdPos < 20) throw new CorruptImageError(file, 'zip64: no end of central directory locator');
    const loc = new Struct(await readExact(src, eocdPos - 20, 20), true);
    if (loc.u32(0) !== EOCD64_LOCATOR) throw new CorruptImageError(file, 'zip64: no end of central directory locator');
    const e64 = new Struct(await readExact(src, loc.u64(8, 'zip64 record offset'), 56), true);
    if (e64.u32(0) !== EOCD64) throw new CorruptImageError(file, 'zip64: bad end of central directory record');
    entries = e64.u64(32, 'zip64 entry count');
    cdSize = e64.u64(40, 'zip64 central directory size');
    cdOffset = e64.u64(48, 'zip64 central directory offset');
  }
  if (entries > MAX_ENTRIES || cdSize > 64 * 1024 * 1024)
    throw new UnsupportedError(file, `zip with ${entries} entries is too large to list`);
  const cd = new Struct(await readExact(src, cdOffset, cdSize), true);
  const files: ZipMember[] = [];
  const names: string[] = [];
  let p = 0;
  for (let i = 0; i < entries; i++) {
    if (p + 46 > cd.length || cd.u32(p) !== CENTRAL) throw new CorruptImageError(file, `zip: central directory entry ${i} is damaged`);
    const flags = cd.u16(p + 8);
    const method = cd.u16(p + 10);
    let compressedSize = cd.u32(p + 20);
    let size = cd.u32(p + 24);
    const nameLen = cd.u16(p + 28);
    const extraLen = cd.u16(p + 30);
    const commentLen = cd.u16(p + 32);
    let localOffset = cd.u32(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length)
      throw new CorruptImageError(file, `zip: central directory entry ${i} runs past the directory`);
    const name = utf8Decode(cd.bytesAt(p + 46, nameLen));
    // Zip64 extended information: the 64-bit values, in order, of the fields that hold 0xFFFFFFFF.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.u16(x);
      const len = cd.u16(x + 2);
      if (id === 1) {
        let q = x + 4;
        const take = () => {
          if (q + 8 > x + 4 + len) throw new CorruptImageError(file, `zip: zip64 field of "${name}" is too short`);
          const v = cd.u64(q, 'zip64 size');
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localOffset === 0xffffffff) localOffset = take();
      }
      x += 4 + len;
    }
    p = xEnd + commentLen;
    if (name.endsWith('/') || name.startsWith('__MACOSX/')) continue;
    names.push(name);
    if (flags & 1) throw new UnsupportedError(file, `zip member "${name}" is encrypted`);
    files.push({ name, method, compressedSize, size, dataOffset: localOffset });
  }
  if (files.length !== 1) {
    throw new UnsupportedError(
      file,
      files.length
        ? `zip holds ${files.length} files (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}); unpack the disk image first`
        : 'zip holds no file',
    );
  }
  const m = files[0]!;
  if (!READABLE.has(m.method))
    throw new UnsupportedError(
      file,
      `zip member "${m.name}" is compressed with ${ZIP_METHODS[m.method] ?? `method ${m.method}`}, which DiskFerry cannot unpack`,
    );
  const local = new Struct(await readExact(src, m.dataOffset, 30), true);
  if (local.u32(0) !== LOCAL) throw new CorruptImageError(file, `zip: local header of "${m.name}" is missing`);
  m.dataOffset += 30 + local.u16(26) + local.u16(28);
  if (m.dataOffset + m.compressedSize > src.size)
    throw new CorruptImageError(file, `zip member "${m.name}" runs past the end of the file (truncated file?)`);
  return m;
}
