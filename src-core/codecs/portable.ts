import * as pako from 'pako';
import * as fzstd from 'fzstd';
import type { Codecs, DeflateParams } from './types.ts';
import { zstdFrameLength } from './zstdFrames.ts';
import { webCryptoPbkdf2 } from './crypto/webPbkdf2.ts';

/**
 * Codecs that run anywhere (browser, worker, Node): pako for deflate, fzstd to decode zstd and
 * a lazily loaded wasm build of libzstd to encode it. Platforms with something faster inject
 * their own Codecs (cli/nodeCodecs.ts).
 */

export class CodecError extends Error {}

/** Raw inflate that stops at the end of the stream and ignores what follows, as QEMU does. */
export function pakoInflateRaw(data: Uint8Array, outSize: number): Uint8Array {
  const inf = new pako.Inflate({ raw: true, windowBits: 15, chunkSize: Math.max(outSize, 1024) });
  inf.push(data, true);
  const out = inf.result as Uint8Array | undefined;
  // A stream that filled the cluster but did not say "end" is accepted too (QEMU: Z_BUF_ERROR).
  if (out && out.length >= outSize) return out.length === outSize ? out : out.subarray(0, outSize);
  throw new CodecError(inf.msg ? `deflate data is damaged (${inf.msg})` : `deflate data gives ${out?.length ?? 0} of ${outSize} bytes`);
}

export function pakoZlibInflate(data: Uint8Array, outSize: number): Uint8Array {
  const inf = new pako.Inflate({ chunkSize: Math.max(outSize, 1024) });
  inf.push(data, true);
  if (inf.err) throw new CodecError(`zlib data is damaged (${inf.msg})`);
  const out = inf.result as Uint8Array | undefined;
  if (!out) throw new CodecError('zlib data is incomplete');
  return out;
}

export function zstdDecompressFrames(data: Uint8Array, outSize: number): Uint8Array {
  const out = new Uint8Array(outSize);
  let produced = 0;
  let pos = 0;
  while (produced < outSize) {
    const len = zstdFrameLength(data, pos);
    if (len < 0) throw new CodecError(`zstd data is damaged or incomplete (${produced} of ${outSize} bytes decoded)`);
    let part: Uint8Array;
    try {
      part = fzstd.decompress(data.subarray(pos, pos + len));
    } catch (e) {
      throw new CodecError(`zstd data is damaged (${(e as Error).message})`);
    }
    if (produced + part.length > outSize) throw new CodecError('zstd data decodes to more than a cluster');
    out.set(part, produced);
    produced += part.length;
    pos += len;
  }
  return out;
}

type ZstdWasm = { compress(buf: Uint8Array, level?: number): Uint8Array };
let zstdWasm: Promise<ZstdWasm> | undefined;
/** Loaded on first use: most conversions never need a zstd encoder. */
function loadZstd(): Promise<ZstdWasm> {
  zstdWasm ??= import('@bokuweb/zstd-wasm').then(async (ns) => {
    // A bundler that wraps this CommonJS package (the CLI's esbuild bundle) puts it under default.
    const m = (typeof ns.init === 'function' ? ns : (ns as unknown as { default: typeof ns }).default) as typeof ns;
    await m.init();
    return m as ZstdWasm;
  });
  return zstdWasm;
}

export const portableCodecs: Codecs = {
  deflateRaw: (data: Uint8Array, p: DeflateParams) =>
    pako.deflateRaw(data, { level: p.level, windowBits: p.windowBits, memLevel: p.memLevel }),
  inflateRaw: pakoInflateRaw,
  zlibDeflate: (data, level) => pako.deflate(data, { level }),
  zlibInflate: pakoZlibInflate,
  zstdCompress: async (data, level) => (await loadZstd()).compress(data, level),
  zstdDecompress: zstdDecompressFrames,
  // WebCrypto's native PBKDF2 where the platform has it, @noble/hashes otherwise.
  pbkdf2: webCryptoPbkdf2,
};
