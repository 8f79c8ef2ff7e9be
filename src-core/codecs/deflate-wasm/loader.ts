/**
 * Instantiates deflate.wasm (libdeflate 1.14's compressor with a match-distance limit, see
 * build.sh and VERSION) and compresses one buffer per call into a complete raw or zlib stream.
 * Platform-free: the caller supplies the module bytes or a compiled Module (Node reads the
 * file, browsers fetch it), and it needs no imports.
 *
 * Why libdeflate and not zlib: it compresses a whole buffer per call, which is what a cluster
 * or a grain is, and measured on the bench disk it is 2.5–3× as fast as stock zlib in wasm
 * (and than Node's native zlib by 1.9×) for smaller output (docs/performance.md).
 */
import type { DeflateParams } from '../types.ts';

import { wasm, type WasmModule } from '../../io/wasmApi.ts';

export type { WasmModule };

/** The host's WebAssembly: deflate cannot run without it. */
function wasmApi(): NonNullable<typeof wasm> {
  if (!wasm) throw new Error('this JavaScript engine has no WebAssembly');
  return wasm;
}

/** Compiles the module synchronously (Node reads the file at start-up; workers receive the Module). */
export function compileWasmModule(bytes: Uint8Array): WasmModule {
  return new (wasmApi().Module)(bytes);
}

interface DeflateExports {
  memory: { buffer: ArrayBuffer };
  df_init(level: number, maxDistance: number): number;
  df_deflate(inPtr: number, inLen: number, outPtr: number, outCap: number, zlib: number): number;
  df_malloc(n: number): number;
  df_free(p: number): void;
}

/** One compressor: its input and output buffers live inside wasm memory and are reused. */
export class WasmDeflater {
  private inPtr = 0;
  private inCap = 0;
  private outPtr = 0;
  private outCap = 0;
  private level = -1;
  private window = 0;

  private constructor(private readonly z: DeflateExports) {}

  static async create(module: Uint8Array | WasmModule): Promise<WasmDeflater> {
    const m = module instanceof Uint8Array ? await wasmApi().compile(module) : module;
    const inst = await wasmApi().instantiate(m, {});
    return new WasmDeflater(inst.exports as unknown as DeflateExports);
  }

  private reserve(inLen: number, outCap: number): void {
    if (inLen > this.inCap) {
      if (this.inPtr) this.z.df_free(this.inPtr);
      this.inPtr = this.z.df_malloc(inLen);
      this.inCap = inLen;
    }
    if (outCap > this.outCap) {
      if (this.outPtr) this.z.df_free(this.outPtr);
      this.outPtr = this.z.df_malloc(outCap);
      this.outCap = outCap;
    }
    if (!this.inPtr || !this.outPtr) throw new RangeError('deflate.wasm: out of memory');
  }

  /**
   * `data` as one complete stream into `out` (the caller's buffer): raw deflate, or the zlib
   * stream (RFC 1950) when `zlib`. No match reaches further back than 2^windowBits bytes.
   * Returns the length, or -1 when the stream does not fit in `out` — give `out` the input's
   * size to get QEMU's rule "store it as it is unless compression makes it smaller" for free.
   */
  deflateInto(data: Uint8Array, out: Uint8Array, p: DeflateParams, zlib = false): number {
    const window = 2 ** p.windowBits;
    if (p.libdeflateLevel !== this.level || window !== this.window) {
      if (this.z.df_init(p.libdeflateLevel, window) !== 0)
        throw new RangeError(`deflate.wasm: no compressor for level ${p.libdeflateLevel}`);
      this.level = p.libdeflateLevel;
      this.window = window;
    }
    this.reserve(data.length, out.length);
    new Uint8Array(this.z.memory.buffer, this.inPtr, data.length).set(data);
    const n = this.z.df_deflate(this.inPtr, data.length, this.outPtr, out.length, zlib ? 1 : 0);
    if (n < -1) throw new RangeError('deflate.wasm: deflate failed');
    if (n >= 0) out.set(new Uint8Array(this.z.memory.buffer, this.outPtr, n));
    return n;
  }

  /** Convenience form returning a fresh array (room for the worst case: stored blocks). */
  deflate(data: Uint8Array, p: DeflateParams, zlib = false): Uint8Array {
    const out = new Uint8Array(data.length + Math.ceil(data.length / 8) + 64);
    const n = this.deflateInto(data, out, p, zlib);
    if (n < 0) throw new RangeError('deflate.wasm: output bound exceeded');
    return out.subarray(0, n);
  }
}
