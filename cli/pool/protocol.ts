import type { DeflateParams } from '../../src-core/codecs/types.ts';

/** Which deflate a worker runs: libdeflate in wasm (the page's bytes) or Node's zlib (slower, ~1–2.5 % larger; for comparison). */
export type DeflateEngine = 'wasm' | 'native';

/** What a worker is started with. */
export interface WorkerSetup {
  engine: DeflateEngine;
  wasm?: unknown;
}

/** A batch of clusters compressed with the same parameters. */
export interface PoolJob {
  id: number;
  data: Uint8Array[];
  params: DeflateParams;
  /** Whole zlib streams (RFC 1950) instead of raw deflate. */
  zlib: boolean;
}

export interface PoolResult {
  out: Uint8Array;
  /** The job's buffer handed back for reuse (absent when `out` is that buffer). */
  spare?: Uint8Array;
}

export type PoolReply = { id: number; results: PoolResult[]; error?: undefined } | { id: number; error: string; results?: undefined };
