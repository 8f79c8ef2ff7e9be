import { portableCodecs } from '../src-core/codecs/portable.ts';
import type { Codecs } from '../src-core/codecs/types.ts';
import type { PooledCodecs } from '../src-core/codecs/deflatePool.ts';
import { createBrowserDeflatePool } from './pool/pool.ts';

/**
 * THE place where the worker chooses its compression back end: the compression pool
 * (workers/pool/, sized from navigator.hardwareConcurrency), which falls back to the
 * portable codecs (pako, fzstd, zstd-wasm). Nothing else in the worker knows which it is.
 */
export function chooseCodecs(): Codecs {
  // N Web Workers with libdeflate in wasm (pako inside them if wasm fails); they
  // start on the first deflate, so inspecting files spawns nothing.
  return createBrowserDeflatePool(portableCodecs);
}

/** Called after a hard abort or at the end of a job, so a pool can terminate its workers. */
export function releaseCodecs(codecs: Codecs): void {
  void (codecs as Partial<PooledCodecs>).close?.();
}
