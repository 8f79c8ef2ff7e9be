import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { pooledCodecs, type DeflateBridge, type DeflateReply, type PooledCodecs } from '../../src-core/codecs/deflatePool.ts';
import type { Codecs, DeflateParams } from '../../src-core/codecs/types.ts';
import { compileWasmModule, type WasmModule } from '../../src-core/codecs/deflate-wasm/loader.ts';
import type { DeflateEngine, PoolJob, PoolReply, WorkerSetup } from './protocol.ts';

export type { DeflateEngine } from './protocol.ts';

/**
 * Run from sources (tsx), this file is pool.ts and the worker entry is deflateWorker.mjs, which
 * registers tsx in the worker. Bundled (bench/ builds one), the worker is a sibling .js bundle
 * and deflate.wasm is copied next to it.
 */
const bundled = !import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(bundled ? './deflateWorker.js' : './deflateWorker.mjs', import.meta.url);
const WASM_URL = new URL(bundled ? './deflate.wasm' : '../../src-core/codecs/deflate-wasm/deflate.wasm', import.meta.url);

let wasmModule: WasmModule | undefined;
/** deflate.wasm compiled once; a compiled Module is shared with every worker without recompiling. */
export function deflateWasmModule(): WasmModule {
  wasmModule ??= compileWasmModule(readFileSync(WASM_URL));
  return wasmModule;
}

class WorkerBridge implements DeflateBridge {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve(r: DeflateReply[]): void; reject(e: unknown): void }>();
  private next = 0;

  constructor(engine: DeflateEngine) {
    const setup: WorkerSetup = { engine, wasm: engine === 'wasm' ? deflateWasmModule() : undefined };
    this.worker = new Worker(WORKER_URL, {
      workerData: setup,
      // A worker holds one job at a time; a small heap makes it collect its buffers promptly
      // (the CLI's peak memory counts every worker's heap).
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
    });
    // Idle workers must not keep the CLI alive; jobs in flight keep it referenced.
    this.worker.unref();
    this.worker.on('message', (r: PoolReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (!this.pending.size) this.worker.unref();
      if (r.error !== undefined) p.reject(new Error(`compression worker: ${r.error}`));
      else p.resolve(r.results);
    });
    this.worker.on('error', (e) => this.failAll(e));
    this.worker.on('exit', (code) => this.failAll(new Error(`compression worker exited (${code})`)));
  }

  private failAll(e: unknown): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  deflate(data: Uint8Array[], params: DeflateParams, zlib: boolean): Promise<DeflateReply[]> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      const job: PoolJob = { id, data, params, zlib };
      // Transferred, not copied: the dispatcher handed us buffers of our own.
      this.worker.postMessage(
        job,
        data.map((d) => d.buffer as ArrayBuffer),
      );
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}

export interface NodePoolOptions {
  /** Default: one per core (os.availableParallelism()). */
  workers?: number;
  /** Default 'wasm': libdeflate, the page's engine and bytes. */
  engine?: DeflateEngine;
}

/** A worker_threads pool behind the Codecs interface; `base` serves everything but deflateRaw. */
export function createNodeDeflatePool(base: Codecs, opts: NodePoolOptions = {}): PooledCodecs {
  const n = Math.max(1, opts.workers ?? availableParallelism());
  const engine = opts.engine ?? 'wasm';
  return pooledCodecs(() => Array.from({ length: n }, () => new WorkerBridge(engine)), base);
}
