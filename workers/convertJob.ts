import type { Codecs } from '../src-core/codecs/types.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { findDriver, openImage } from '../src-core/image/open.ts';
import type { BlockDevice, CreateOptions, FormatDriver } from '../src-core/image/types.ts';
import type { ByteSink, ByteSource, FileResolver } from '../src-core/io/bytes.ts';
import { assertNotAborted, InvalidArgumentError } from '../src-core/io/errors.ts';
import { NullSink } from '../src-core/io/nullSink.ts';
import { convert } from '../src-core/pipeline/convert.ts';
import { estimateOutput } from '../src-core/pipeline/estimate.ts';
import { FileSetResolver } from './io/fileSet.ts';
import { OpfsSink } from './io/opfsSink.ts';
import { WritableSink } from './io/writableSink.ts';
import { chooseCodecs, releaseCodecs } from './codecs.ts';
import { OpfsOutputResolver } from './io/outputFiles.ts';
import { verifyWritten } from './verifyJob.ts';
import type { ConvertOutcome, ConvertPlan, ConvertRequest, Estimate, OutputTarget, PlanCheck, ProgressReport } from './protocol.ts';

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
  resolver: FileSetResolver;
}

async function openPlan(plan: ConvertPlan, codecs: Codecs, signal?: AbortSignal): Promise<OpenedPlan> {
  const target = findDriver(drivers, plan.target);
  if (!target.create) throw new InvalidArgumentError(`DiskFerry cannot write ${target.name} images`);
  if (plan.compress && !target.compression) throw new InvalidArgumentError(`${target.label} cannot be compressed; untick Compress`);
  const resolver = new FileSetResolver(plan.files);
  const source = await openImage(resolver.source(plan.path), drivers, {
    resolver,
    codecs,
    signal,
    format: plan.format,
    password: plan.password ? enc(plan.password) : undefined,
    snapshot: plan.snapshot,
  });
  const options = { ...plan.options };
  const secrets = plan.outputPassword ? new Map([[OUTPUT_SECRET, enc(plan.outputPassword)]]) : undefined;
  if (secrets && options['encrypt.format']) options['encrypt.key-secret'] = OUTPUT_SECRET;
  if (secrets && target.name === 'luks') options['key-secret'] = OUTPUT_SECRET;
  return { source, target, resolver, create: { options, compress: plan.compress, codecs, secrets, filename: plan.outputName } };
}

/** Creates extra output files in the void, for the check of a multi-file output. */
class VoidOutputResolver implements FileResolver {
  constructor(private readonly input: FileResolver) {}
  open(name: string, relativeTo: string): Promise<ByteSource> {
    return this.input.open(name, relativeTo);
  }
  async create(name: string): Promise<ByteSink> {
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
    const create: CreateOptions = { ...opened.create, virtualSize: source.virtualSize, resolver };
    await target.create!(new NullSink(plan.outputName), create);
    const m = await target.measure?.(create, source).catch(() => undefined);
    return { requiredBytes: m ? Math.max(m.required, 0) : undefined };
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
    opened = await openPlan(plan, codecs);
    const e = await estimateOutput({
      source: opened.source,
      target: opened.target,
      create: { ...opened.create, resolver: new VoidOutputResolver(opened.resolver) },
      onProgress: (p) => onProgress({ done: p.done, total: p.total, rate: p.rate, eta: p.eta, phase: 'reading' }),
    });
    return { bytes: e.bytes, nonZeroBytes: e.nonZeroBytes, exact: e.exact, seconds: e.secondsPerByte * (await dataBytesOf(opened.source)) };
  } finally {
    await opened?.source.close().catch(() => {});
    releaseCodecs(codecs);
  }
}

async function dataBytesOf(dev: BlockDevice): Promise<number> {
  let n = 0;
  for await (const e of dev.extents()) if (e.kind === 'data') n += e.length;
  return n;
}

/**
 * One conversion, start to finish, inside the worker: open the source through Blob slices,
 * write the target straight into its sink (the user's file, or OPFS), commit it, and on any
 * failure or cancel leave no output behind — and never touch a file the user already had.
 */
export async function runConvert(req: ConvertRequest, onProgress: (p: ProgressReport) => void, signal: AbortSignal): Promise<ConvertOutcome> {
  const started = performance.now();
  const codecs = chooseCodecs();
  let source: BlockDevice | undefined;
  let sink: WritableSink | OpfsSink | undefined;
  let outputs: OpfsOutputResolver | undefined;
  let committed = false;
  try {
    onProgress({ done: 0, total: 0, rate: 0, phase: 'opening' });
    const plan = await openPlan(req, codecs, signal);
    source = plan.source;
    outputs = req.output.kind === 'opfs' ? new OpfsOutputResolver(plan.resolver, req.output.prefix) : undefined;
    assertNotAborted(signal);
    sink = req.output.kind === 'fsa' ? await WritableSink.open(req.output.handle) : await OpfsSink.create(req.output.name, req.outputName);
    const result = await convert({
      source,
      target: plan.target,
      sink,
      signal,
      batchSize: READ_WINDOW,
      onProgress: (p) => onProgress({ done: p.done, total: p.total, rate: p.rate, eta: p.eta, phase: p.phase === 'done' ? 'finalizing' : p.phase }),
      create: { ...plan.create, resolver: outputs ?? plan.resolver },
    });
    assertNotAborted(signal);
    // Chromium hashes the whole staged file in close() before it appears: "finalizing".
    onProgress({ done: 1, total: 1, rate: 0, phase: 'finalizing' });
    const file = sink instanceof OpfsSink ? await sink.file() : (await sink.close(), undefined);
    const extraFiles: { name: string; file: File }[] = [];
    for (const c of outputs?.created ?? []) extraFiles.push({ name: c.name, file: await c.sink.file() });
    if (req.verify) {
      const written = file ?? (await (req.output as { handle: FileSystemFileHandle }).handle.getFile());
      const password = req.outputPassword ? enc(req.outputPassword) : undefined;
      await verifyWritten(source, plan.target.name, [{ name: req.outputName, file: written }, ...extraFiles], codecs, password, signal, onProgress);
    }
    committed = true;
    return {
      outputName: req.outputName,
      size: (file?.size ?? sink.size) + extraFiles.reduce((n, f) => n + f.file.size, 0),
      virtualSize: result.virtualSize,
      dataBytes: result.dataBytes,
      seconds: (performance.now() - started) / 1000,
      warnings: result.warnings,
      verified: req.verify,
      file,
      extraFiles: extraFiles.length ? extraFiles : undefined,
    };
  } finally {
    await source?.close().catch(() => {});
    releaseCodecs(codecs);
    if (!committed) {
      await discard(sink, req.output);
      await outputs?.removeAll();
    }
  }
}

/**
 * Nothing half-written survives: the staged FSA write is aborted (the file keeps what it had),
 * the OPFS file is deleted, and a file the save dialog created for us is removed — on every
 * path, also when the job failed before it opened its sink.
 */
async function discard(sink: WritableSink | OpfsSink | undefined, output: OutputTarget): Promise<void> {
  if (sink instanceof OpfsSink) return sink.remove();
  // After a failed verification the stream is already closed: aborting it then fails harmlessly.
  await sink?.abort().catch(() => {});
  if (output.kind === 'fsa' && output.createdByDialog) await removeCreatedFile(output.handle);
}

/**
 * Removes a file the save dialog created. FileSystemHandle.remove() (Chromium 110+) is in
 * neither TypeScript lib yet. Right after an abort the file can still be locked by the closing
 * stream (seen under load), so try a few times.
 */
export async function removeCreatedFile(handle: FileSystemFileHandle): Promise<void> {
  const h = handle as { remove?(): Promise<void> };
  for (let attempt = 0; attempt < 6 && h.remove; attempt++) {
    try {
      await h.remove();
      return;
    } catch (e) {
      if ((e as DOMException).name === 'NotFoundError') return;
      await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
}
