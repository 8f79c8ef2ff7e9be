import { availableParallelism } from 'node:os';
import type { Codecs } from '../../src-core/codecs/types.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { createNodeDeflatePool, type DeflateEngine } from './pool.ts';

export interface CliCodecs {
  codecs: Codecs;
  /** What compresses, for the benchmark's record. */
  label: string;
  close(): Promise<void>;
}

/**
 * The codecs `convert -c` uses. Default: a worker_threads pool, one worker per core, running
 * libdeflate in wasm for everything it compresses (qcow/qcow2 clusters, stream VMDK grains,
 * cloop blocks): the page's engine, so the CLI and the page write the same bytes, and faster
 * than Node's zlib (docs/performance.md).
 * DISKFERRY_DEFLATE=native uses Node's zlib in the workers instead (slower, output ~1–2.5 %
 * larger; kept to compare); DISKFERRY_DEFLATE=single compresses on the main thread with Node's
 * zlib (no pool); DISKFERRY_WORKERS=N overrides the pool size.
 */
export function cliCompressionCodecs(): CliCodecs {
  const mode = process.env.DISKFERRY_DEFLATE ?? 'wasm';
  if (mode === 'single') return { codecs: nodeCodecs, label: 'node-zlib, main thread', close: async () => {} };
  const engine: DeflateEngine = mode === 'native' ? 'native' : 'wasm';
  const workers = Number(process.env.DISKFERRY_WORKERS) || availableParallelism();
  const pool = createNodeDeflatePool(nodeCodecs, { engine, workers });
  return { codecs: pool, label: `${engine} ×${workers} workers`, close: () => pool.close() };
}
