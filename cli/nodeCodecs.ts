import zlib from 'node:zlib';
import { CodecError, portableCodecs } from '../src-core/codecs/portable.ts';
import type { Codecs } from '../src-core/codecs/types.ts';

const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH };

function exact(out: Buffer, outSize: number, what: string): Uint8Array {
  if (out.length < outSize) throw new CodecError(`${what} data gives ${out.length} of ${outSize} bytes`);
  return new Uint8Array(out.buffer, out.byteOffset, outSize);
}

/** Node's native zlib: 4–5× faster than pako here (perf-notes.md). zstd stays portable. */
export const nodeCodecs: Codecs = {
  ...portableCodecs,
  deflateRaw: (data, p) => zlib.deflateRawSync(data, { level: p.level, windowBits: p.windowBits, memLevel: p.memLevel }),
  inflateRaw(data, outSize) {
    try {
      // Z_SYNC_FLUSH: a stream that fills the cluster without its end marker is accepted, as QEMU does.
      return exact(zlib.inflateRawSync(data, { ...SYNC, maxOutputLength: Math.max(outSize, 64) }), outSize, 'deflate');
    } catch (e) {
      if (e instanceof CodecError) throw e;
      throw new CodecError(`deflate data is damaged (${(e as Error).message})`);
    }
  },
  zlibDeflate: (data, level) => zlib.deflateSync(data, { level }),
  zlibInflate(data, outSize) {
    try {
      return zlib.inflateSync(data, { ...SYNC, maxOutputLength: Math.max(outSize, 64) });
    } catch (e) {
      throw new CodecError(`zlib data is damaged (${(e as Error).message})`);
    }
  },
};
