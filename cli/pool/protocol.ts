import type { DeflateParams } from '../../src-core/codecs/types.ts';

/** Which deflate a worker runs: stock zlib in wasm (qemu-img's exact output) or Node's zlib (faster, ~0.5–2 % larger). */
export type DeflateEngine = 'wasm' | 'native';

export interface PoolJob {
  id: number;
  data: Uint8Array;
  params: DeflateParams;
}

export type PoolReply =
  | { id: number; data: Uint8Array; spare?: Uint8Array; error?: undefined }
  | { id: number; error: string; data?: undefined };
