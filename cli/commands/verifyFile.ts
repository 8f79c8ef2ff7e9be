import path from 'node:path';
import { openImage } from '../../src-core/image/open.ts';
import type { BlockDevice } from '../../src-core/image/types.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { verifyOutput } from '../../src-core/pipeline/verify.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from '../nodeFiles.ts';
import type { QemuProgress } from '../progress.ts';

/** --verify: opens what was written (still under its temporary name) and compares it with the source. */
export async function verifyFile(source: BlockDevice, tmp: string, dst: string, format: string, signal: AbortSignal, progress: QemuProgress): Promise<void> {
  // Companion files (extents, data files) are named after the final name, so resolve from there.
  const src = await NodeFileSource.open(tmp, dst);
  const resolver = new NodeResolver([path.dirname(path.resolve(dst))], true);
  const out = await openImage(
    { name: dst, size: src.size, allocatedSize: src.allocatedSize, read: (o, l) => src.read(o, l), close: () => src.close() },
    drivers,
    { format, codecs: nodeCodecs, resolver, noBacking: false },
  );
  try {
    await verifyOutput(source, out, { signal, onProgress: progress.callback() });
  } finally {
    await out.close();
  }
}
