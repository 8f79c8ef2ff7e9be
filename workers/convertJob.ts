import type { Codecs } from '../src-core/codecs/types.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { pageWriterFor } from '../src-core/pipeline/ova/index.ts';
import type { BlockDevice, CreateOptions, FormatDriver } from '../src-core/image/types.ts';
import type { ByteSink, ByteSource, FileResolver } from '../src-core/io/bytes.ts';
import { InvalidArgumentError } from '../src-core/io/errors.ts';
import { NullSink } from '../src-core/io/nullSink.ts';
import { estimateOutput } from '../src-core/pipeline/estimate.ts';
import { runConversionJob } from '../src-core/pipeline/job.ts';
import { FileSetResolver } from './io/fileSet.ts';
import { inputFor, type InputFiles } from './io/inputFiles.ts';
import { chooseCodecs, releaseCodecs } from './codecs.ts';
import { WorkerOutputPlace } from './io/outputPlace.ts';
import type { ConvertOutcome, ConvertPlan, ConvertRequest, Estimate, PlanCheck, ProgressReport } from './protocol.ts';
import { sourceFingerprint } from '../src-core/pipeline/fingerprint.ts';
import { findTarget, targetVirtualSize } from '../src-core/pipeline/targets.ts';

/** The secret id an encrypted output's password is stored under (qemu-img's --object secret,id=…). */
const OUTPUT_SECRET = 'sec0';
/** Bytes the conversion reads per step (measured: 1.25 GB in 16 MiB slices ≈ 2.0 s of browser CPU, in 4 MiB ones 2.7–3.3 s). */
const READ_WINDOW = 16 * 1024 * 1024;

const enc = (s: string) => new TextEncoder().encode(s);

/** The opened source and the target writer's options: the part of a job that can fail before any file exists. */
interface OpenedPlan {
  source: BlockDevice;
  target: FormatDriver;
  create: Omit<CreateOptions, 'virtualSize' | 'resolver'>;
  /** The output's virtual size: the source's, or rounded up by the destination's size rule. */
  virtualSize: number;
  resolver: InputFiles;
}

async function openPlan(
  plan: ConvertPlan,
  codecs: Codecs,
  signal?: AbortSignal,
  resolver: InputFiles = inputFor(plan, signal),
): Promise<OpenedPlan> {
  const target = pageWriterFor(plan.target, drivers);
  if (!target.create) throw new InvalidArgumentError(`DiskFerry cannot write ${target.name} images`);
  if (plan.compress && !target.compression) throw new InvalidArgumentError(`${target.label} cannot be compressed; untick Compress`);
  await resolver.ready?.();
  const source = await openImage(resolver.source(plan.path), drivers, {
    resolver,
    codecs,
    signal,
    format: plan.format,
    password: plan.password ? enc(plan.password) : undefined,
    snapshot: plan.snapshot,
  });
  // The destination's size rule (Azure's whole MiB, Google's whole GiB), as --target=NAME applies it.
  let virtualSize = source.virtualSize;
  if (plan.destination) {
    try {
      virtualSize = targetVirtualSize(findTarget(plan.destination), source.virtualSize);
    } catch (e) {
      await source.close().catch(() => {});
      throw e;
    }
  }
  const options = { ...plan.options };
  const secrets = plan.outputPassword ? new Map([[OUTPUT_SECRET, enc(plan.outputPassword)]]) : undefined;
  if (secrets && options['encrypt.format']) options['encrypt.key-secret'] = OUTPUT_SECRET;
  if (secrets && target.name === 'luks') options['key-secret'] = OUTPUT_SECRET;
  // The same seed as the CLI's --reproducible (pipeline/fingerprint.ts), so both write the same bytes.
  const reproducible = plan.reproducible
    ? await sourceFingerprint(source).catch(async (e: unknown) => {
        await source.close().catch(() => {});
        throw e;
      })
    : undefined;
  return {
    source,
    target,
    resolver,
    virtualSize,
    create: { options, compress: plan.compress, codecs, secrets, filename: plan.outputName, reproducible },
  };
}

/**
 * The source opened a second time on the same files, with reads of its own and no read-ahead:
 * the zero scout's (src-core/pipeline/zeroScout.ts), which reads a raw disk from its end.
 */
async function openForScout(plan: ConvertPlan, codecs: Codecs, signal: AbortSignal): Promise<BlockDevice> {
  const files = new FileSetResolver(plan.files, 0);
  return openImage(files.source(plan.path), drivers, { resolver: files, codecs, signal, format: plan.format, snapshot: plan.snapshot });
}

/** Creates extra output files in the void, for the check of a multi-file output. */
class VoidOutputResolver implements FileResolver {
  /** Names of the files the writer asked for. */
  readonly created: string[] = [];
  constructor(private readonly input: FileResolver) {}
  open(name: string, relativeTo: string): Promise<ByteSource> {
    return this.input.open(name, relativeTo);
  }
  async create(name: string): Promise<ByteSink> {
    this.created.push(name);
    return new NullSink(name);
  }
}

/**
 * Everything that can go wrong before the first byte is written, checked before the page asks
 * where to save: the source opens (password, backing files, extents), the target accepts every
 * option (its writer is built on a sink that keeps nothing), and how much space the output needs.
 */
export async function checkPlan(plan: ConvertPlan, siblingsAllowed: boolean): Promise<PlanCheck> {
  const codecs = chooseCodecs();
  let opened: OpenedPlan | undefined;
  try {
    opened = await openPlan(plan, codecs);
    const { source, target } = opened;
    if (source.virtualSize <= 0) throw new InvalidArgumentError('the source disk is empty', source.filename);
    // Multi-file outputs can only be written where their siblings can be created (the OPFS route).
    const resolver = siblingsAllowed ? new VoidOutputResolver(opened.resolver) : opened.resolver;
    const create: CreateOptions = { ...opened.create, virtualSize: opened.virtualSize, resolver };
    await target.create!(new NullSink(plan.outputName), create);
    const m = await target.measure?.(create, source).catch(() => undefined);
    const companions = resolver instanceof VoidOutputResolver ? resolver.created : [];
    return { requiredBytes: m ? Math.max(m.required, 0) : undefined, companions };
  } finally {
    await opened?.source.close().catch(() => {});
    releaseCodecs(codecs);
  }
}

/**
 * The output's size (and the time it will take) before converting: the conversion runs into
 * sinks that keep only lengths (pipeline/estimate.ts). Runs in a worker of its own, which the
 * page terminates when the choice changes.
 */
export async function estimatePlan(plan: ConvertPlan, onProgress: (p: ProgressReport) => void): Promise<Estimate> {
  const codecs = chooseCodecs();
  let opened: OpenedPlan | undefined;
  try {
    // Key derivation takes seconds by design (iter-time) and changes no byte count: skip it here.
    const options = { ...plan.options };
    if (options['encrypt.format']) options['encrypt.iter-time'] = '1';
    if (plan.target === 'luks') options['iter-time'] = '1';
    opened = await openPlan({ ...plan, options }, codecs);
    const e = await estimateOutput({
      source: opened.source,
      target: opened.target,
      create: { ...opened.create, virtualSize: opened.virtualSize, resolver: new VoidOutputResolver(opened.resolver) },
      onProgress: (p) => onProgress({ done: p.done, total: p.total, rate: p.rate, eta: p.eta, phase: 'reading' }),
    });
    return { bytes: e.bytes, nonZeroBytes: e.nonZeroBytes, exact: e.exact, seconds: e.seconds };
  } finally {
    await opened?.source.close().catch(() => {});
    releaseCodecs(codecs);
  }
}

/**
 * One conversion, start to finish, inside the worker: open the source (Blob slices, or ranged GETs of a URL),
 * write the target straight into its sink (the user's file, or OPFS), commit it, and on any
 * failure or cancel leave no output behind — and never touch a file the user already had.
 */
export async function runConvert(
  req: ConvertRequest,
  onProgress: (p: ProgressReport) => void,
  signal: AbortSignal,
): Promise<ConvertOutcome> {
  const started = performance.now();
  const codecs = chooseCodecs();
  let source: BlockDevice | undefined;
  const input = inputFor(req, signal);
  const place = new WorkerOutputPlace(req.output, req.outputName, input);
  try {
    onProgress({ done: 0, total: 0, rate: 0, phase: 'opening' });
    let plan: OpenedPlan;
    try {
      plan = await openPlan(req, codecs, signal, input);
    } catch (e) {
      // Nothing is written yet, but a file the save dialog created must not stay behind.
      await place.discard();
      throw e;
    }
    source = plan.source;
    const { result, committed } = await runConversionJob({
      source,
      target: plan.target,
      place,
      signal,
      batchSize: READ_WINDOW,
      // Dropped files only: a URL's holes would cost a second set of requests, an encrypted
      // source a second key derivation.
      openScout: req.url || req.password ? undefined : () => openForScout(req, codecs, signal),
      onProgress: (p) =>
        onProgress({ done: p.done, total: p.total, rate: p.rate, eta: p.eta, phase: p.phase === 'done' ? 'finalizing' : p.phase }),
      // Chromium hashes the whole staged file in close() before it appears: "finalizing".
      onClosing: () => onProgress({ done: 1, total: 1, rate: 0, phase: 'finalizing' }),
      create: { ...plan.create, virtualSize: plan.virtualSize },
      verify: req.verify ? { codecs, password: req.outputPassword ? enc(req.outputPassword) : undefined } : undefined,
    });
    return {
      outputName: req.outputName,
      size: committed.size,
      virtualSize: result.virtualSize,
      dataBytes: result.dataBytes,
      seconds: (performance.now() - started) / 1000,
      warnings: result.warnings,
      verified: req.verify,
      file: committed.file,
      extraFiles: committed.extraFiles.length ? committed.extraFiles : undefined,
    };
  } finally {
    await source?.close().catch(() => {});
    releaseCodecs(codecs);
  }
}
