import { promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ScratchFactory } from '../src-core/image/containers/index.ts';
import { NodeFileSink, NodeFileSource } from './nodeFiles.ts';

/**
 * Scratch files for unpacking compressed containers whose image needs random access: a hidden
 * temporary file in `dir` (beside the output for convert, else the OS temp folder), removed
 * when the image is closed or the unpack fails. Removed at exit too, should neither happen.
 */
export function nodeScratch(dir = os.tmpdir()): ScratchFactory {
  return async () => {
    const file = path.join(dir, `.diskferry-unpack-${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`);
    const sink = await NodeFileSink.create(file);
    const cleanup = () => {
      try {
        rmSync(file, { force: true });
      } catch {
        // Exiting anyway.
      }
    };
    process.once('exit', cleanup);
    const remove = async () => {
      process.removeListener('exit', cleanup);
      await fs.rm(file, { force: true });
    };
    return {
      write: (offset, data) => sink.write(offset, data),
      async finish(size, name) {
        await sink.truncate(size);
        await sink.close();
        const src = await NodeFileSource.open(file, name);
        return {
          name,
          size: src.size,
          allocatedSize: src.allocatedSize,
          read: (o, l) => src.read(o, l),
          async close() {
            await src.close();
            await remove();
          },
        };
      },
      async discard() {
        await sink.close().catch(() => {});
        await remove();
      },
    };
  };
}
