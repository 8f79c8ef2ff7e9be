import type { DeflateParams } from './types.ts';

/**
 * The zlib wrapper (RFC 1950) around a raw deflate stream: a two-byte header and the Adler-32 of
 * the uncompressed bytes. With it, a pool that only does raw deflate also makes the zlib streams
 * VMDK stream grains and cloop blocks hold — the deflate body of zlib's `deflate()` at a level
 * is the raw deflate at that level with a 32 KiB window, byte for byte.
 */

/** Raw deflate settings equal to zlib's `deflate(data, level)` (window 32 KiB, memLevel 8, the level's own search). */
export function zlibStreamParams(level: number): DeflateParams {
  return { level, windowBits: 15, memLevel: 8 };
}

/** Adler-32 (RFC 1950 §9), in blocks small enough that the sums never leave 32-bit range. */
export function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  const NMAX = 5552;
  for (let i = 0; i < data.length;) {
    const end = Math.min(i + NMAX, data.length);
    for (; i < end; i++) {
      a += data[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return b * 65536 + a;
}

/** zlib's header for a 32 KiB window: CMF 0x78, FLEVEL from the level, FCHECK so that the pair is a multiple of 31. */
function header(level: number): [number, number] {
  const flevel = level <= 1 ? 0 : level <= 5 ? 1 : level === 6 ? 2 : 3;
  const cmf = 0x78;
  let flg = flevel << 6;
  flg += 31 - ((cmf * 256 + flg) % 31);
  return [cmf, flg];
}

/** header + raw deflate stream + big-endian Adler-32 of the input. */
export function wrapZlib(raw: Uint8Array, checksum: number, level: number): Uint8Array {
  const out = new Uint8Array(raw.length + 6);
  out.set(header(level), 0);
  out.set(raw, 2);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint32(raw.length + 2, checksum);
  return out;
}
