import type { Codecs } from '../codecs/types.ts';
import { drivers } from '../formats/registry.ts';
import type { ByteSink, ByteSource, FileResolver } from '../io/bytes.ts';
import { assertNotAborted } from '../io/errors.ts';
import { openImage } from '../image/open.ts';
import type { BlockDevice, CreateOptions, FormatDriver } from '../image/types.ts';
import { convert, type ConvertResult } from './convert.ts';
import type { ProgressCallback } from './progress.ts';
import { verifyOutput } from './verify.ts';

/**
 * Where a conversion's output goes, and its life cycle there: the CLI's temporary file renamed
 * into place (or an existing file written in place, -n), the page's picked file or OPFS file.
 * runConversionJob calls create() once, closes the sink it got, maybe reopen()s the output
 * to verify it, then commit(); on any failure (also before create(), or in create()) discard().
 */
export interface OutputPlace<Committed> {
  /** The output's name as the user knows it: what companion files are named after. */
  readonly name: string;
  /**
   * Opens the main output. The job closes this sink once the writer has finished (whoever
   * opens a sink closes it, io/bytes.ts); on failure discard() aborts or removes it instead.
   */
  create(): Promise<ByteSink>;
  /** Reads the input's companions (extents, backing files) and creates the output's own. */
  readonly resolver: FileResolver;
  /** The finished output, opened again for reading (verify), with its companions. */
  reopen(): Promise<{ source: ByteSource; resolver: FileResolver }>;
  /** Makes the output the user's: rename, hand over the file. Called once, after close (and verify). */
  commit(): Promise<Committed>;
  /** Leaves nothing half-written behind and never touches what existed before. Must not throw. */
  discard(): Promise<void>;
}

export interface ConversionJob<Committed> {
  source: BlockDevice;
  target: FormatDriver;
  /** Creation options; the file name and the resolver come from the place. */
  create: Omit<CreateOptions, 'virtualSize' | 'filename' | 'resolver'> & { virtualSize?: number };
  place: OutputPlace<Committed>;
  /** Re-open the finished output and compare it with the source before committing it. */
  verify?: { codecs: Codecs; password?: Uint8Array };
  /** -B: the opened backing image. */
  backing?: BlockDevice;
  /** convert's minSparse (qemu-img -S) and the size of each read. */
  minSparse?: number;
  batchSize?: number;
  /** convert's openScout: the source opened again, for finding zeros ahead (pipeline/zeroScout.ts). */
  openScout?: () => Promise<BlockDevice>;
  signal?: AbortSignal;
  /** Conversion progress, then (with verify) the verification's. */
  onProgress?: ProgressCallback;
  /** The writer is done and the output is about to be closed (a close can take long: Chromium hashes the file). */
  onClosing?: () => void;
}

export interface ConversionJobResult<Committed> {
  result: ConvertResult;
  committed: Committed;
}

/** create → convert → close → verify → commit, and discard on any failure or cancel. */
export async function runConversionJob<Committed>(job: ConversionJob<Committed>): Promise<ConversionJobResult<Committed>> {
  const { source, place, signal } = job;
  try {
    assertNotAborted(signal);
    const sink = await place.create();
    const result = await convert({
      source,
      target: job.target,
      sink,
      backing: job.backing,
      signal,
      batchSize: job.batchSize,
      minSparse: job.minSparse,
      openScout: job.openScout,
      onProgress: job.onProgress,
      create: { ...job.create, filename: place.name, resolver: place.resolver },
    });
    assertNotAborted(signal);
    job.onClosing?.();
    await sink.close();
    if (job.verify) await verifyPlace(source, job.target.name, place, job.verify, signal, job.onProgress);
    const committed = await place.commit();
    return { result, committed };
  } catch (e) {
    await place.discard();
    throw e;
  }
}

/** Opens what was written, exactly as a user would open it, and compares it with the source. */
async function verifyPlace(
  source: BlockDevice,
  format: string,
  place: OutputPlace<unknown>,
  opts: { codecs: Codecs; password?: Uint8Array },
  signal: AbortSignal | undefined,
  onProgress: ProgressCallback | undefined,
): Promise<void> {
  const { source: bytes, resolver } = await place.reopen();
  const written = await openImage(bytes, drivers, { format, resolver, codecs: opts.codecs, password: opts.password, signal });
  try {
    await verifyOutput(source, written, { signal, onProgress });
  } finally {
    await written.close();
  }
}
