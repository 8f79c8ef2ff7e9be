/**
 * One compression worker thread of the CLI's pool (pool.ts). It owns one compressor and answers
 * jobs one at a time: the job's buffer arrives transferred and the result goes back transferred,
 * so no cluster is copied on the way.
 */
import { parentPort, workerData } from 'node:worker_threads';
import zlib from 'node:zlib';
import { WasmDeflater, type WasmModule } from '../../src-core/codecs/deflate-wasm/loader.ts';
import type { DeflateParams } from '../../src-core/codecs/types.ts';
import type { PoolJob, PoolReply, PoolResult, WorkerSetup } from './protocol.ts';

const setup = workerData as WorkerSetup;
const wasm = setup.engine === 'wasm' ? await WasmDeflater.create(setup.wasm as WasmModule) : undefined;

/** Output area reused across jobs; only the result's bytes are copied out of it. */
let scratch = new Uint8Array(0);

/** The result, and whether its ArrayBuffer is ours alone and so can be transferred back. */
function deflate(data: Uint8Array, p: DeflateParams, zlibStream: boolean): { out: Uint8Array; own: boolean } {
  if (wasm) {
    // Output capped at the input size: a cluster that does not shrink comes back as it went.
    if (scratch.length < data.length) scratch = new Uint8Array(data.length);
    const out = scratch.subarray(0, data.length);
    const n = wasm.deflateInto(data, out, p, zlibStream);
    // slice: only the stream's bytes travel back and stay alive until the writer places them.
    return { out: n < 0 ? data : out.slice(0, n), own: true };
  }
  const o = (zlibStream ? zlib.deflateSync : zlib.deflateRawSync)(data, { level: p.level, windowBits: p.windowBits, memLevel: p.memLevel });
  // Buffers under 4 KiB may come from Node's shared allocation pool, which must not be detached.
  return { out: new Uint8Array(o.buffer, o.byteOffset, o.length), own: o.length >= 4096 };
}

parentPort!.on('message', (job: PoolJob) => {
  let reply: PoolReply;
  try {
    const results: PoolResult[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const data of job.data) {
      const { out, own } = deflate(data, job.params, job.zlib);
      // The job's buffer goes back too, for the pool to reuse, unless it is the result itself.
      const spare = out.buffer === data.buffer ? undefined : data;
      results.push({ out, spare });
      if (own) transfer.push(out.buffer as ArrayBuffer);
      if (spare) transfer.push(spare.buffer as ArrayBuffer);
    }
    reply = { id: job.id, results };
    parentPort!.postMessage(reply, transfer);
  } catch (e) {
    reply = { id: job.id, error: (e as Error).message };
    parentPort!.postMessage(reply);
  }
});
