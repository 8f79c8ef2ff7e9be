/**
 * Instantiates zlib.wasm (stock zlib 1.2.13 + a SIMD slide_hash, see build.sh and VERSION) and
 * exposes raw deflate with QEMU's qcow2 settings. Platform-free: the caller supplies the module
 * bytes or a compiled Module (Node reads the file, browsers fetch it), and it needs no imports.
 *
 * Why stock zlib: qemu-img links Debian's stock zlib, so this produces the same bytes as
 * qemu-img for every cluster (Node's and Chromium's zlib differ and come out ~1.7 % larger).
 */
import type { DeflateParams } from '../types.ts';

// src-core's lib is ES2022 only; these are the few WebAssembly JS-API members used here.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => WasmModule;
  instantiate(m: WasmModule, imports: object): Promise<{ exports: Record<string, unknown> }>;
  compile(bytes: Uint8Array): Promise<WasmModule>;
};
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface WasmModule {}

/** Compiles the module synchronously (Node reads the file at start-up; workers receive the Module). */
export function compileWasmModule(bytes: Uint8Array): WasmModule {
  return new WebAssembly.Module(bytes);
}

interface ZlibExports {
  memory: { buffer: ArrayBuffer };
  df_deflate_init(level: number, windowBits: number, memLevel: number, good: number, lazy: number, nice: number, chain: number): number;
  df_deflate(inPtr: number, inLen: number, outPtr: number, outCap: number): number;
  df_malloc(n: number): number;
  df_free(p: number): void;
}

/** One zlib instance: one z_stream, one input and one output buffer inside wasm memory. */
export class WasmDeflater {
  private inPtr = 0;
  private inCap = 0;
  private outPtr = 0;
  private outCap = 0;
  private params = '';

  private constructor(private readonly z: ZlibExports) {}

  static async create(module: Uint8Array | WasmModule): Promise<WasmDeflater> {
    const m = module instanceof Uint8Array ? await WebAssembly.compile(module) : module;
    const inst = await WebAssembly.instantiate(m, {});
    return new WasmDeflater(inst.exports as unknown as ZlibExports);
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
    if (!this.inPtr || !this.outPtr) throw new RangeError('zlib.wasm: out of memory');
  }

  /**
   * Raw deflate of `data` as one complete stream into `out` (the caller's buffer). Returns the
   * compressed length, or -1 when the stream does not fit in `out` — give `out` the cluster
   * size to get QEMU's rule "store uncompressed unless compression makes it smaller" for free.
   * `windowBits` is positive here (9…15); raw deflate is implied.
   */
  deflateRawInto(data: Uint8Array, out: Uint8Array, p: DeflateParams): number {
    const t = p.search;
    const key = `${p.level}/${p.windowBits}/${p.memLevel}/${t ? `${t.good}/${t.lazy}/${t.nice}/${t.chain}` : ''}`;
    if (key !== this.params) {
      const rc = this.z.df_deflate_init(p.level, -p.windowBits, p.memLevel, t?.good ?? 0, t?.lazy ?? 0, t?.nice ?? 0, t?.chain ?? 0);
      if (rc !== 0) throw new RangeError(`zlib.wasm: deflateInit2 failed (${rc}) for ${key}`);
      this.params = key;
    }
    this.reserve(data.length, out.length);
    new Uint8Array(this.z.memory.buffer, this.inPtr, data.length).set(data);
    const n = this.z.df_deflate(this.inPtr, data.length, this.outPtr, out.length);
    if (n === -2) throw new RangeError('zlib.wasm: deflate failed');
    if (n >= 0) out.set(new Uint8Array(this.z.memory.buffer, this.outPtr, n));
    return n;
  }

  /** Convenience form returning a fresh array (worst-case output bound per zlib's deflateBound). */
  deflateRaw(data: Uint8Array, p: DeflateParams): Uint8Array {
    const out = new Uint8Array(data.length + Math.ceil(data.length / 8) + 64);
    const n = this.deflateRawInto(data, out, p);
    if (n < 0) throw new RangeError('zlib.wasm: output bound exceeded');
    return out.subarray(0, n);
  }
}
