import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import type { BlockDevice } from '../src-core/image/types.ts';
import type { Codecs } from '../src-core/codecs/types.ts';
import { verifyOutput } from '../src-core/pipeline/verify.ts';
import { FileSetResolver } from './io/fileSet.ts';
import type { ProgressReport } from './protocol.ts';

/**
 * Verify after write, in the worker: the finished file (and any extent files) is opened again
 * through Blob slices, exactly as a user would open it, and compared with the source.
 */
export async function verifyWritten(
  source: BlockDevice,
  format: string,
  output: { name: string; file: File }[],
  codecs: Codecs,
  password: Uint8Array | undefined,
  signal: AbortSignal,
  onProgress: (p: ProgressReport) => void,
): Promise<void> {
  const resolver = new FileSetResolver(output.map((o) => ({ file: o.file, path: o.name })));
  const written = await openImage(resolver.source(output[0]!.name), drivers, { format, resolver, codecs, password, signal });
  try {
    await verifyOutput(source, written, {
      signal,
      onProgress: (p) => onProgress({ done: p.done, total: p.total, rate: p.rate, eta: p.eta, phase: 'verifying' }),
    });
  } finally {
    await written.close();
  }
}
