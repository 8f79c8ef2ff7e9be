import path from 'node:path';
import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { parseOptionString, parseSize } from '../../src-core/image/options.ts';
import { findDriver, openImage } from '../../src-core/image/open.ts';
import type { BlockDevice, FormatDriver } from '../../src-core/image/types.ts';
import { concatenatedDevice, sequenceDevice } from '../../src-core/image/sequence.ts';
import { diskLayout, forwardPackage, packageDriver, type PackageKind } from '../../src-core/pipeline/ova/index.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { sourceFingerprint } from '../../src-core/pipeline/fingerprint.ts';
import { runConversionJob } from '../../src-core/pipeline/job.ts';
import { imageSpec, openCliImage, parseSecrets, STDIO, type CommonOpts } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from '../nodeFiles.ts';
import { CliOutputPlace } from '../outputPlace.ts';
import { QemuProgress } from '../progress.ts';
import { jsonProgress } from '../progressJson.ts';
import type { CliCodecs } from '../pool/cliCodecs.ts';
import { salvagingDevice } from '../sinks.ts';
import { expectArgs, type Cmd } from './types.ts';
import { applyTarget } from '../target.ts';
import { checkForwardOnly, StdoutPlace } from '../stdio.ts';
import { forwardQcow2 } from '../../src-core/formats/qcow2/forwardWriter.ts';
import { NullSink } from '../../src-core/io/nullSink.ts';
import { convert } from '../../src-core/pipeline/convert.ts';
import type { ProgressCallback } from '../../src-core/pipeline/progress.ts';

/** qemu-img convert's -S: a multiple of 512 up to 16 MiB (MAX_BUF_SECTORS). */
function sparseSize(text: string): number {
  const n = parseSize(text, 'buffer size for sparse output');
  if (n % 512 || n > 32768 * 512) {
    throw new InvalidArgumentError(
      'Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16777216. Select 0 to disable sparse detection (fully allocates output).',
    );
  }
  return n;
}

/** `-o help`: the format's creation options. */
export function optionHelp(target: FormatDriver): string {
  const rows = (target.createOptions ?? []).map(
    (o) => `  ${`${o.name}=<${o.type === 'enum' ? (o.values ?? []).join('|') : o.type}>`.padEnd(30)} - ${o.help}`,
  );
  return `Supported ${target.name} options:\n${rows.join('\n')}${rows.length ? '\n' : ''}`;
}

export async function convertCommand({ opts, args }: Cmd<'convert'>, signal: AbortSignal): Promise<number> {
  if (opts.bitmaps || opts.skipBrokenBitmaps)
    throw new InvalidArgumentError('--bitmaps is not supported: DiskFerry does not copy persistent bitmaps');
  if (opts.targetImageOpts && !opts.noCreate) throw new InvalidArgumentError('--target-image-opts requires use of -n flag');
  if (opts.noCreate && opts.options.length) throw new InvalidArgumentError('-o has no effect when skipping image creation');
  if (opts.targetIsZero && !opts.noCreate) throw new InvalidArgumentError('--target-is-zero requires use of -n flag');
  if (opts.compress && opts.copyRange) throw new InvalidArgumentError('Cannot enable copy offloading when -c is used');
  const options: Record<string, string> = {};
  for (const o of opts.options) Object.assign(options, parseOptionString(o));
  // --target=NAME: the destinations table sets -O, -o, -c and the size (cli/target.ts).
  const dest = opts.target !== undefined ? applyTarget(opts, options) : undefined;
  let targetName = opts.targetFormat ?? 'raw';
  // SRC_FILE [SRC_FILE2...] TGT_FILE: several sources are concatenated.
  let dstArg = args.length >= 2 ? args[args.length - 1] : undefined;
  if (opts.targetImageOpts && dstArg) {
    const o = parseOptionString(dstArg);
    dstArg = o['file.filename'] ?? o.filename;
    if (!dstArg) throw new InvalidArgumentError(`--target-image-opts "${args[args.length - 1]}" has no file.filename`);
    targetName = o.driver ?? targetName;
  }
  // -O ova / -O ovf / --target=esxi: an OVF package around stream VMDKs; several sources are
  // several disks of one VM there, not one concatenated disk.
  const packageKind: PackageKind | undefined =
    dest?.target.packaging === 'ova' ? 'ova' : targetName === 'ova' || targetName === 'ovf' ? targetName : undefined;
  let target = dest?.driver ?? (packageKind ? packageDriver(packageKind) : findDriver(drivers, targetName));
  if ('help' in options || '?' in options) {
    process.stdout.write(optionHelp(target));
    return 0;
  }
  const srcArgs = expectArgs(args, 2, Infinity, 'Must specify image file name').slice(0, -1);
  const dst = dstArg!;
  if (packageKind && opts.verify && (packageKind === 'ovf' || srcArgs.length > 1))
    throw new InvalidArgumentError('--verify re-reads a single-disk OVA only; compare each disk after extracting it instead');
  if (srcArgs.length > 1 && opts.snapshot !== undefined) throw new InvalidArgumentError('No support for concatenating multiple snapshot');
  const backingName = opts.backing ?? options.backing_file;
  const backingFormat = opts.backingFormat ?? options.backing_fmt;
  delete options.backing_file;
  delete options.backing_fmt;
  if (opts.targetIsZero && backingName)
    throw new InvalidArgumentError('Cannot use --target-is-zero when the destination image has a backing file');
  if (srcArgs.length > 1 && backingName)
    throw new InvalidArgumentError('Having a backing file for the target makes no sense when concatenating multiple input images');
  const minSparse = opts.sparseSize !== undefined ? sparseSize(opts.sparseSize) : undefined;
  const rate = opts.rateLimit !== undefined ? parseSize(opts.rateLimit, 'rate limit') : 0;
  if (opts.parallel !== undefined) {
    const m = Number(opts.parallel);
    if (!Number.isInteger(m) || m < 1 || m > 16)
      throw new InvalidArgumentError('Invalid number of coroutines specified. Must be between 1 and 16.');
  }
  const specs = srcArgs.map((a) => imageSpec(a, opts.imageOpts, opts.format));
  // `-`: standard input as a source, standard output as the target (cli/stdio.ts).
  const toStdout = dst === STDIO;
  if (specs.filter((s) => s.filename === STDIO).length > 1) throw new InvalidArgumentError('standard input ("-") can be read only once');
  for (const spec of specs)
    if (spec.filename !== STDIO && path.resolve(spec.filename) === path.resolve(dst))
      throw new InvalidArgumentError('source and destination are the same file', dst);
  if (toStdout) {
    if (opts.noCreate) throw new InvalidArgumentError('-n writes into an existing file; "-" (standard output) is a stream');
    if (opts.verify) throw new InvalidArgumentError('--verify reads the output back; "-" (standard output) cannot be read back');
    checkForwardOnly(target, options, !!opts.compress);
  }
  if (opts.noCreate) {
    if (target.name !== 'raw' && target.name !== 'qcow2')
      throw new InvalidArgumentError(
        `-n writes into an existing image only for raw and qcow2 targets (files and block devices), not ${target.name}`,
        dst,
      );
    if (backingName) throw new InvalidArgumentError('-n cannot give the target a backing file', dst);
  }
  // With the image on stdout, -p's text goes to stderr (--progress=json is there anyway).
  const progress = new QemuProgress(opts.progress && !opts.quiet, 1, toStdout ? process.stderr : process.stdout);
  progress.print(0, 100);
  // qcow2 to stdout reads the source twice (formats/qcow2/forwardWriter.ts), as --verify does:
  // a raw disk in a .gz/.xz is then unpacked rather than streamed. A stream VMDK on stdin is
  // read as it arrives only when the disk is read once, front to back (not --salvage's retries).
  const twoPasses = toStdout && (target.name === 'qcow2' || target.name === 'ova');
  const common: CommonOpts = {
    ...opts,
    verify: opts.verify || twoPasses,
    forwardStdin: !opts.verify && !opts.salvage && !twoPasses,
  };
  // --disk N|NAME picks a disk inside an OVA.
  const parts: BlockDevice[] = [];
  // Scratch files (stdin from a pipe, a container to unpack) go beside the output, or to the OS's temporary folder for stdout.
  const scratchDir = toStdout ? undefined : path.dirname(path.resolve(dst));
  try {
    for (const spec of specs) parts.push((await openCliImage(spec, common, { member: opts.disk }, scratchDir)).device);
  } catch (e) {
    for (const p of parts) await p.close();
    throw e;
  }
  let device = parts.length === 1 ? parts[0]! : concatenatedDevice(parts);
  let packageSizes: number[] | undefined;
  if (packageKind && parts.length > 1) {
    const sizes = parts.map((p) => p.virtualSize);
    packageSizes = sizes;
    const { spans, end } = diskLayout(sizes);
    device = sequenceDevice(
      parts,
      spans.map((x) => x.start),
      end,
    );
    target = packageDriver(packageKind, sizes);
  }
  const opened = { device };
  const warn = (w: string) => {
    if (!opts.quiet) process.stderr.write(`warning: ${w}\n`);
  };
  const source: BlockDevice = opts.salvage ? salvagingDevice(opened.device, warn) : opened.device;
  if (opts.noCreate && target.name === 'qcow2') {
    // Into the existing qcow2 image: its options, size and backing file stay (convertInto.ts).
    try {
      const cb = jsonProgress(opts) ?? progress.callback();
      const { convertIntoExistingQcow2 } = await import('./convertInto.ts');
      await convertIntoExistingQcow2(source, dst, { ...common, compress: opts.compress }, (done, total) =>
        cb?.({ done, total, rate: 0, phase: 'reading' }),
      );
      progress.print(100, 0);
    } finally {
      progress.end();
      await source.close();
    }
    return 0;
  }
  let backing: BlockDevice | undefined;
  // Clusters and grains are compressed on a pool of worker threads (cli/pool/), loaded only when the output compresses.
  let pool: CliCodecs | undefined;
  // A temporary file beside the destination, renamed over it when complete; -n writes in place.
  const place = toStdout
    ? new StdoutPlace(!!opts.allowOutside, rate, signal)
    : new CliOutputPlace(dst, { inPlace: opts.noCreate, minSize: source.virtualSize, rate });
  let ok = false;
  try {
    if (backingName) backing = await openBacking(backingName, backingFormat, dst, common);
    // Every output that compresses goes through the pool: -c, and the formats that always
    // compress (a streamOptimized VMDK, cloop).
    const subformat = options.subformat;
    const alwaysCompressed =
      target.name === 'cloop' ||
      !!packageKind ||
      (target.compression?.subformat !== undefined && subformat === target.compression.subformat);
    if (opts.compress || alwaysCompressed) pool = (await import('../pool/cliCodecs.ts')).cliCompressionCodecs();
    const onProgress = jsonProgress(opts) ?? progress.callback();
    // -n without --target-is-zero: the target's old bytes must all be overwritten.
    const sparse = opts.noCreate && !opts.targetIsZero ? 0 : minSparse;
    const create = {
      ...(dest && { virtualSize: dest.virtualSize(source.virtualSize) }),
      options,
      compress: opts.compress,
      backing: backingName ? { name: backingName, format: backingFormat ?? backing?.format } : undefined,
      codecs: pool?.codecs ?? nodeCodecs,
      secrets: parseSecrets(common),
      // --reproducible: ids from the source's fingerprint and the settings (image/identity.ts).
      reproducible: opts.reproducible ? await sourceFingerprint(source) : undefined,
    };
    // qcow2 to a pipe: a first pass learns where every cluster goes, the second writes the file
    // front to back (formats/qcow2/forwardWriter.ts); progress counts both passes as one.
    // An OVA to a pipe likewise: the first pass learns each disk's size and digest (pipeline/ova).
    const forward = !twoPasses ? undefined : target.name === 'qcow2' ? forwardQcow2() : forwardPackage(packageSizes);
    if (forward) {
      await convert({
        source,
        target: forward.plan,
        sink: new NullSink(place.name),
        backing,
        signal,
        minSparse: sparse,
        onProgress: onProgress && halfProgress(onProgress, 0),
        create: { ...create, filename: place.name, resolver: place.resolver },
      });
    }
    const { result } = await runConversionJob({
      source,
      target: forward?.write ?? target,
      place,
      backing,
      signal,
      onProgress: forward && onProgress ? halfProgress(onProgress, 1) : onProgress,
      minSparse: sparse,
      create,
      verify: opts.verify ? { codecs: nodeCodecs } : undefined,
    });
    ok = true;
    if (process.env.DISKFERRY_STATS)
      process.stderr.write(
        `diskferry: stats ${JSON.stringify({ zeroBytesWritten: result.zeroBytesWritten, bytesRead: result.bytesRead })}\n`,
      );
    for (const w of result.warnings) warn(w);
    // The output checked against the destination's rules, as `diskferry lint` would (a tarball is
    // left out: checking it means unpacking it all again).
    if (dest && dest.target.packaging === 'none' && !opts.quiet) {
      const { lintOutput } = await import('./lint.ts');
      for (const r of await lintOutput(dest.target, dst, { object: opts.object, allowOutside: opts.allowOutside }))
        warn(`lint --target=${dest.target.name}: ${r.status} ${r.rule}: ${r.reason}`);
    }
  } catch (e) {
    // A failure before the job started (the backing file, the codec pool) leaves nothing either.
    await place.discard();
    throw e;
  } finally {
    if (ok) progress.print(100, 0);
    progress.end();
    await pool?.close();
    await source.close();
    await backing?.close();
  }
  return 0;
}

/** Progress of one of two passes over the same data, as the first or second half of one. */
function halfProgress(cb: ProgressCallback, pass: 0 | 1): ProgressCallback {
  return (p) =>
    cb({
      ...p,
      done: Math.floor((pass * p.total + p.done) / 2),
      eta: undefined,
      // The first pass never ends the whole: its finishing phases are still reading.
      phase: pass === 0 ? 'reading' : p.phase,
    });
}

/** -b names the backing file as the new image will store it: relative to the new image's folder. */
export async function openBacking(name: string, format: string | undefined, dst: string, p: CommonOpts): Promise<BlockDevice> {
  const file = path.isAbsolute(name) ? name : path.join(path.dirname(dst), name);
  const src = await NodeFileSource.open(file, name);
  return openImage(src, drivers, {
    format,
    codecs: nodeCodecs,
    resolver: new NodeResolver([path.dirname(path.resolve(file))], !!p.allowOutside),
  }).catch(async (e) => {
    await src.close();
    throw e;
  });
}
