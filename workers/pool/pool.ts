import * as Comlink from 'comlink';
import { pooledCodecs, type DeflateBridge, type DeflateReply, type PooledCodecs } from '../../src-core/codecs/deflatePool.ts';
import type { Codecs, DeflateParams } from '../../src-core/codecs/types.ts';
import type { DeflateWorkerApi } from './deflateWorker.ts';

/** The committed libdeflate build; bundlers turn this into an emitted asset URL. */
const DEFLATE_WASM_URL = new URL('../../src-core/codecs/deflate-wasm/deflate.wasm', import.meta.url);

let compiled: Promise<WebAssembly.Module | undefined> | undefined;
/** Compiled once per page/worker and shared: a Module posts to each worker without recompiling. */
function deflateModule(): Promise<WebAssembly.Module | undefined> {
  compiled ??= (async () => {
    try {
      const res = await fetch(DEFLATE_WASM_URL);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return await WebAssembly.compile(await res.arrayBuffer());
    } catch (e) {
      console.warn(`deflate.wasm could not be loaded, compressing with pako: ${(e as Error).message}`);
      return undefined;
    }
  })();
  return compiled;
}

/** One Web Worker behind Comlink; calls wait for its compressor to be ready. */
class ComlinkBridge implements DeflateBridge {
  private readonly worker: Worker;
  private readonly remote: Comlink.Remote<DeflateWorkerApi>;
  readonly engine: Promise<'wasm' | 'pako'>;

  constructor() {
    this.worker = new Worker(new URL('./deflateWorker.ts', import.meta.url), { type: 'module', name: 'diskferry-deflate' });
    this.remote = Comlink.wrap<DeflateWorkerApi>(this.worker);
    this.engine = deflateModule().then((m) => this.remote.init(m));
  }

  async deflate(jobs: Uint8Array[], params: DeflateParams, zlib: boolean): Promise<DeflateReply[]> {
    await this.engine;
    // Transferred: the dispatcher gave us buffers of our own.
    return this.remote.deflate(
      Comlink.transfer(
        jobs,
        jobs.map((j) => j.buffer as ArrayBuffer),
      ),
      params,
      zlib,
    );
  }

  terminate(): void {
    this.remote[Comlink.releaseProxy]();
    this.worker.terminate();
  }
}

/**
 * The browser's compression pool: one Web Worker per core (navigator.hardwareConcurrency, at
 * least 1, at most 8), each compressing with libdeflate in wasm, behind the Codecs
 * interface. Usable from the page or from a worker (nested workers). `base` serves everything
 * except deflateRaw. Workers start on the first deflate, so holding the Codecs costs nothing;
 * call close() when the job ends.
 */
export function createBrowserDeflatePool(base: Codecs, opts: { workers?: number } = {}): PooledCodecs {
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 2 : 2;
  const n = Math.max(1, Math.min(8, opts.workers ?? cores));
  return pooledCodecs(() => Array.from({ length: n }, () => new ComlinkBridge()), base);
}
