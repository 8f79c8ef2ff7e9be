import { DiskFerryError, ErrorCode } from '../io/errors.ts';
import type { BlockDevice } from '../image/types.ts';
import { compare } from './compare.ts';
import type { ProgressCallback } from './progress.ts';

/**
 * Verify after write: re-reads the finished output and compares it with the source, chunk by
 * chunk, before anyone calls the conversion a success. Catches writer bugs and bad media alike.
 */
export async function verifyOutput(
  source: BlockDevice,
  output: BlockDevice,
  opts: { signal?: AbortSignal; onProgress?: ProgressCallback } = {},
): Promise<void> {
  if (output.virtualSize < source.virtualSize) {
    throw new DiskFerryError(
      ErrorCode.Corrupt,
      output.filename,
      `verification failed: the output is ${output.virtualSize} bytes, the source ${source.virtualSize}`,
    );
  }
  const r = await compare(source, output, {
    signal: opts.signal,
    onProgress: opts.onProgress && ((p) => opts.onProgress!({ ...p, phase: 'verifying' })),
  });
  if (!r.identical) {
    throw new DiskFerryError(
      ErrorCode.Corrupt,
      output.filename,
      `verification failed: the output differs from the source at offset ${r.mismatchAt}`,
    );
  }
}
