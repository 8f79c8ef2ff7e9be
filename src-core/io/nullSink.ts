import type { ByteSink } from './bytes.ts';

/**
 * A sink that keeps nothing: a writer created on it checks its options and writes its headers
 * into the void. The page builds the writer this way before it asks where to save, so a bad
 * option fails before any file exists.
 */
export class NullSink implements ByteSink {
  constructor(readonly name: string) {}
  async write(): Promise<void> {}
  async truncate(): Promise<void> {}
  async close(): Promise<void> {}
}
