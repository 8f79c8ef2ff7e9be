import type { DeflateParams } from '../../src-core/codecs/types.ts';

/** Which deflate a worker runs: stock zlib in wasm (qemu-img's exact output) or Node's zlib (faster, ~0.5–2 % larger). */
export type DeflateEngine = 'wasm' | 'native';

/** What a worker is started with. */
export interface WorkerSetup {
  engine: DeflateEngine;
  wasm?: unknown;
  /**
   * zlib streams (32 KiB window: stream VMDK grains, cloop blocks) on Node's zlib even when
   * `engine` is wasm: ~30 % less CPU for the same size (measured on the bench disk's grains).
   * Off for --reproducible, whose bytes must not depend on the Node version (and equal the page's).
   */
  nativeStreams: boolean;
}

/** A batch of clusters compressed with the same parameters. */
export interface PoolJob {
  id: number;
  data: Uint8Array[];
  params: DeflateParams;
}

export interface PoolResult {
  out: Uint8Array;
  /** The job's buffer handed back for reuse (absent when `out` is that buffer). */
  spare?: Uint8Array;
}

export type PoolReply = { id: number; results: PoolResult[]; error?: undefined } | { id: number; error: string; results?: undefined };
