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
 * stock zlib in wasm for qcow/qcow2 clusters (the page's bytes, and qemu-img's but for the
 * shorter match search) and Node's zlib for zlib streams (stream VMDK, cloop: ~30 % less CPU).
 * `portable` (--reproducible) keeps zlib streams on the wasm zlib too: bytes that do not depend
 * on the Node version and equal the page's.
 * DISKFERRY_DEFLATE=native uses Node's zlib in the workers for everything (faster, output
 * ~0.5–2 % larger); DISKFERRY_DEFLATE=single compresses on the main thread with Node's zlib
 * (no pool); DISKFERRY_WORKERS=N overrides the pool size.
 */
export function cliCompressionCodecs(opts: { portable?: boolean } = {}): CliCodecs {
  const mode = process.env.DISKFERRY_DEFLATE ?? 'wasm';
  if (mode === 'single') return { codecs: nodeCodecs, label: 'node-zlib, main thread', close: async () => {} };
  const engine: DeflateEngine = mode === 'native' ? 'native' : 'wasm';
  const workers = Number(process.env.DISKFERRY_WORKERS) || availableParallelism();
  const nativeStreams = engine === 'wasm' && !opts.portable;
  const pool = createNodeDeflatePool(nodeCodecs, { engine, workers, nativeStreams });
  return {
    codecs: pool,
    label: `${engine}${nativeStreams ? ' (zlib streams native)' : ''} ×${workers} workers`,
    close: () => pool.close(),
  };
}
