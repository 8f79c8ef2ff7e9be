/**
 * One browser compression worker (a Web Worker started by workers/pool/pool.ts). It compresses
 * one cluster or grain per call with libdeflate in wasm (the CLI's engine and bytes), or with
 * pako when wasm cannot be instantiated. Buffers travel both ways as transfers, never as copies.
 */
import * as Comlink from 'comlink';
import * as pako from 'pako';
import { WasmDeflater } from '../../src-core/codecs/deflate-wasm/loader.ts';
import type { DeflateParams } from '../../src-core/codecs/types.ts';
import type { DeflateReply } from '../../src-core/codecs/deflatePool.ts';

let deflater: WasmDeflater | undefined;
/** Output area reused across jobs; only the stream's bytes are copied out. */
let scratch = new Uint8Array(0);

const api = {
  /** Receives the Module the pool compiled once; resolves to the engine in use. */
  async init(module: WebAssembly.Module | undefined): Promise<'wasm' | 'pako'> {
    if (module) {
      try {
        deflater = await WasmDeflater.create(module);
      } catch {
        deflater = undefined;
      }
    }
    return deflater ? 'wasm' : 'pako';
  },

  deflate(jobs: Uint8Array[], p: DeflateParams, zlib: boolean): DeflateReply[] {
    const replies: DeflateReply[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const job of jobs) {
      const r = deflateOne(job, p, zlib);
      replies.push(r);
      transfer.push(r.out.buffer as ArrayBuffer);
      if (r.spare) transfer.push(r.spare.buffer as ArrayBuffer);
    }
    return Comlink.transfer(replies, transfer);
  },
};

function deflateOne(job: Uint8Array, p: DeflateParams, zlib: boolean): DeflateReply {
  let out: Uint8Array;
  if (deflater) {
    if (scratch.length < job.length) scratch = new Uint8Array(job.length);
    const n = deflater.deflateInto(job, scratch.subarray(0, job.length), p, zlib);
    // -1: it did not shrink; the job comes back as it went and is stored uncompressed.
    if (n < 0) return { out: job };
    out = scratch.slice(0, n);
  } else out = (zlib ? pako.deflate : pako.deflateRaw)(job, { level: p.level, windowBits: p.windowBits, memLevel: p.memLevel });
  // The job's buffer goes back too, for the pool to reuse.
  return { out, spare: job };
}

export type DeflateWorkerApi = typeof api;
Comlink.expose(api);
