/**
 * Compression back ends. The core sees only this interface; each platform injects the fastest
 * implementation it has (Node's native zlib in the CLI, wasm/pako in browsers). Calls may be
 * async so a pool of workers can sit behind them.
 */
export interface DeflateParams {
  /** zlib's level (0…9), for the engines that are zlib (pako, Node's zlib). */
  level: number;
  /** 9…15: log2 of the window size; QEMU's qcow2 uses 12 (4 KiB). No match reaches further back. */
  windowBits: number;
  /** zlib's memLevel (pako, Node's zlib). */
  memLevel: number;
  /**
   * The level of the wasm engine (libdeflate, deflate-wasm/), chosen by `libdeflateLevelFor`:
   * libdeflate's levels compress harder than zlib's of the same number.
   */
  libdeflateLevel: number;
}

export interface Codecs {
  /** Raw deflate (RFC 1951, no wrapper). */
  deflateRaw(data: Uint8Array, params: DeflateParams): Uint8Array | Promise<Uint8Array>;
  /** Raw inflate into exactly `outSize` bytes (32 KiB window, trailing input ignored); throws on bad data or short output. */
  inflateRaw(data: Uint8Array, outSize: number): Uint8Array | Promise<Uint8Array>;
  /** zlib-wrapped (RFC 1950), for VMDK stream grains and cloop blocks. */
  zlibDeflate(data: Uint8Array, level: number): Uint8Array | Promise<Uint8Array>;
  /** zlib-wrapped inflate; `outSize` is the expected maximum; returns what was produced. */
  zlibInflate(data: Uint8Array, outSize: number): Uint8Array | Promise<Uint8Array>;
  zstdCompress(data: Uint8Array, level: number): Uint8Array | Promise<Uint8Array>;
  /** Decompress frames until `outSize` bytes are produced. */
  zstdDecompress(data: Uint8Array, outSize: number): Uint8Array | Promise<Uint8Array>;
  /**
   * PBKDF2-HMAC (LUKS key slots). Optional: without it the core uses @noble/hashes, which is
   * correct everywhere but much slower than a platform's native implementation.
   */
  pbkdf2?: Pbkdf2;
  /**
   * AES-ECB over whole 16-byte blocks, no padding (the building block of the disk cipher
   * modes). Optional: without it the core uses @noble/ciphers; Node injects OpenSSL's (~6×).
   */
  aesEcb?: AesEcb;
}

/** Hash names as QEMU and LUKS headers spell them. */
export type HashName = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512' | 'ripemd160';

export type AesEcb = (key: Uint8Array, data: Uint8Array, decrypt: boolean) => Uint8Array;

export type Pbkdf2 = (hash: HashName, password: Uint8Array, salt: Uint8Array, iterations: number, length: number) => Promise<Uint8Array>;

/**
 * The libdeflate level that compresses at least as small as zlib's `zlibLevel`, measured on the
 * bench disk's 64 KiB clusters (wasm, 2 cores; docs/performance.md): with a 4 KiB window
 * libdeflate 5 is 0.8 % smaller than zlib 6 at 2.5× its speed; with a 32 KiB window libdeflate 5
 * is 0.3 % smaller than zlib 6 (3×) and libdeflate 6 smaller than zlib 9 (8×). Levels 1–4 are
 * not measured and keep their number.
 */
export function libdeflateLevelFor(zlibLevel: number): number {
  const level = zlibLevel < 0 ? 6 : zlibLevel; // zlib's Z_DEFAULT_COMPRESSION (-1) is its level 6
  return level >= 7 ? 6 : level === 6 ? 5 : level;
}

/**
 * qcow/qcow2 clusters: QEMU's settings (block/qcow2-threads.c: raw deflate, level 6, a 4 KiB
 * window, memLevel 9), so the window every reader expects; on the wasm engine libdeflate's
 * level 5, which writes smaller clusters than QEMU's at 2.5× zlib's speed.
 */
export const QCOW_DEFLATE: DeflateParams = { level: 6, windowBits: 12, memLevel: 9, libdeflateLevel: libdeflateLevelFor(6) };

/** zlib streams (RFC 1950: VMDK stream grains, cloop blocks) as zlib's `deflate(data, level)` makes them: a 32 KiB window, memLevel 8. */
export function zlibStreamParams(level: number): DeflateParams {
  return { level, windowBits: 15, memLevel: 8, libdeflateLevel: libdeflateLevelFor(level) };
}
