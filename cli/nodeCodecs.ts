import type * as NodeCrypto from 'node:crypto';
import type * as NodeZlib from 'node:zlib';
import { CodecError, portableCodecs } from '../src-core/codecs/portable.ts';
import type { Codecs } from '../src-core/codecs/types.ts';

// node:crypto and node:zlib are fetched on first use, synchronously: `diskferry info` on an
// image without compressed or encrypted clusters never loads them (start-up time).
let cryptoMod: typeof NodeCrypto | undefined;
let zlibMod: typeof NodeZlib | undefined;
const crypto = () => (cryptoMod ??= process.getBuiltinModule('node:crypto'));
const zlib = () => (zlibMod ??= process.getBuiltinModule('node:zlib'));
/** Z_SYNC_FLUSH (2, zlib.h): a stream that fills the buffer without its end marker is accepted. */
const SYNC = { finishFlush: 2 };

function exact(out: Buffer, outSize: number, what: string): Uint8Array {
  if (out.length < outSize) throw new CodecError(`${what} data gives ${out.length} of ${outSize} bytes`);
  return new Uint8Array(out.buffer, out.byteOffset, outSize);
}

/** Node's native zlib: 4–5× faster than pako here (docs/performance.md). zstd stays portable. */
export const nodeCodecs: Codecs = {
  ...portableCodecs,
  deflateRaw: (data, p) => zlib().deflateRawSync(data, { level: p.level, windowBits: p.windowBits, memLevel: p.memLevel }),
  inflateRaw(data, outSize) {
    try {
      // Z_SYNC_FLUSH: a stream that fills the cluster without its end marker is accepted, as QEMU does.
      return exact(zlib().inflateRawSync(data, { ...SYNC, maxOutputLength: Math.max(outSize, 64) }), outSize, 'deflate');
    } catch (e) {
      if (e instanceof CodecError) throw e;
      throw new CodecError(`deflate data is damaged (${(e as Error).message})`);
    }
  },
  // OpenSSL's PBKDF2 on libuv's thread pool: ~10× @noble/hashes, and it does not block the loop.
  pbkdf2: (hash, password, salt, iterations, length) =>
    new Promise((resolve, reject) =>
      crypto().pbkdf2(password, salt, iterations, length, hash, (err, key) =>
        err ? reject(err) : resolve(new Uint8Array(key.buffer, key.byteOffset, key.length)),
      ),
    ),
  // OpenSSL's AES (AES-NI): about 6× @noble/ciphers here; the disk modes are built on it in JS.
  aesEcb(key, data, decrypt) {
    const c = (decrypt ? crypto().createDecipheriv : crypto().createCipheriv)(`aes-${key.length * 8}-ecb`, key, null);
    c.setAutoPadding(false);
    const head = c.update(data);
    const tail = c.final();
    const out = tail.length ? Buffer.concat([head, tail]) : head;
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  },
  zlibDeflate: (data, level) => zlib().deflateSync(data, { level }),
  zlibInflate(data, outSize) {
    try {
      return zlib().inflateSync(data, { ...SYNC, maxOutputLength: Math.max(outSize, 64) });
    } catch (e) {
      throw new CodecError(`zlib data is damaged (${(e as Error).message})`);
    }
  },
};
