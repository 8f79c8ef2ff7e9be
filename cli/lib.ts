/**
 * The library entry of the `diskferry` package: the platform-free core plus the Node adapters
 * (files, the backing-file resolver, Node's zlib and crypto), so a script can open, inspect,
 * convert and compare images the way the command line does.
 *
 *   import { openImage, convert } from 'diskferry';
 *   const disk = await openImage('disk.vmdk');
 *   console.log(disk.info());
 *   await disk.close();
 *   await convert({ source: 'disk.vmdk', output: 'disk.qcow2', format: 'qcow2', compress: true });
 */
import path from 'node:path';
import { findDriver, openImage as openCore } from '../src-core/image/open.ts';
import type { BlockDevice } from '../src-core/image/types.ts';
import { drivers } from '../src-core/formats/registry.ts';
import type { ConvertResult } from '../src-core/pipeline/convert.ts';
import { runConversionJob } from '../src-core/pipeline/job.ts';
import type { ProgressCallback } from '../src-core/pipeline/progress.ts';
import { nodeCodecs } from './nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from './nodeFiles.ts';
import { CliOutputPlace } from './outputPlace.ts';

export type { BlockDevice, Extent, ImageInfo, CheckResult, FormatDriver, MeasureResult } from '../src-core/image/types.ts';
export type { ConvertResult } from '../src-core/pipeline/convert.ts';
export type { Progress, ProgressCallback } from '../src-core/pipeline/progress.ts';
export type { ByteSource, ByteSink, FileResolver } from '../src-core/io/bytes.ts';
export { DiskFerryError, ErrorCode } from '../src-core/io/errors.ts';
export { drivers, formatNames } from '../src-core/formats/registry.ts';
export { compare } from '../src-core/pipeline/compare.ts';
export { infoJson, formatInfoHuman } from '../src-core/pipeline/info.ts';
export { mapImage } from '../src-core/pipeline/map.ts';
export { convert as convertDevice } from '../src-core/pipeline/convert.ts';
export { nodeCodecs } from './nodeCodecs.ts';
export { NodeFileSink, NodeFileSource, NodeResolver } from './nodeFiles.ts';

export interface OpenOptions {
  /** Format name (probed when absent), as qemu-img -f. */
  format?: string;
  /** Leave the backing file unopened (reads of unallocated ranges give zeros). */
  noBacking?: boolean;
  /** Allow backing files and extents outside the image's folder. */
  allowOutsidePaths?: boolean;
  /** The key of an encrypted image. */
  password?: string | Uint8Array;
  /** An internal snapshot to read instead of the current state. */
  snapshot?: { id?: string; name?: string };
}

/** Opens an image file (and its backing chain); close() it when done. */
export async function openImage(file: string, opts: OpenOptions = {}): Promise<BlockDevice> {
  const source = await NodeFileSource.open(file);
  try {
    return await openCore(source, drivers, {
      format: opts.format,
      codecs: nodeCodecs,
      resolver: new NodeResolver([path.dirname(path.resolve(file))], opts.allowOutsidePaths),
      noBacking: opts.noBacking,
      password: typeof opts.password === 'string' ? new TextEncoder().encode(opts.password) : opts.password,
      snapshot: opts.snapshot,
    });
  } catch (e) {
    await source.close();
    throw e;
  }
}

export interface ConvertFileOptions {
  /** A path (opened and closed here) or an opened image. */
  source: string | BlockDevice;
  sourceFormat?: string;
  output: string;
  /** Target format, as qemu-img -O. */
  format: string;
  compress?: boolean;
  /** -o key=value creation options. */
  options?: Record<string, string>;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/**
 * Converts into a new file, as `diskferry convert`: written under a temporary name and renamed
 * when complete, so a failure leaves nothing under the output name.
 */
export async function convert(opts: ConvertFileOptions): Promise<ConvertResult> {
  const target = findDriver(drivers, opts.format);
  const source = typeof opts.source === 'string' ? await openImage(opts.source, { format: opts.sourceFormat }) : opts.source;
  // A temporary file beside the output, renamed over it when complete (cli/outputPlace.ts).
  const place = new CliOutputPlace(opts.output);
  let pool: { codecs: typeof nodeCodecs; close(): Promise<void> } | undefined;
  try {
    if (opts.compress) pool = (await import('./pool/cliCodecs.ts')).cliCompressionCodecs();
    const { result } = await runConversionJob({
      source,
      target,
      place,
      signal: opts.signal,
      onProgress: opts.onProgress,
      create: { options: opts.options ?? {}, compress: opts.compress, codecs: pool?.codecs ?? nodeCodecs },
    });
    return result;
  } catch (e) {
    await place.discard();
    throw e;
  } finally {
    await pool?.close();
    if (typeof opts.source === 'string') await source.close();
  }
}
