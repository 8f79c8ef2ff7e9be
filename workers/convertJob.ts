import { drivers } from '../src-core/formats/registry.ts';
import { findDriver, openImage } from '../src-core/image/open.ts';
import { assertNotAborted } from '../src-core/io/errors.ts';
import { convert } from '../src-core/pipeline/convert.ts';
import { FileSetResolver } from '../web/adapters/fileSet.ts';
import { OpfsSink } from '../web/adapters/opfsSink.ts';
import { WritableSink } from '../web/adapters/writableSink.ts';
import { chooseCodecs, releaseCodecs } from './codecs.ts';
import { OpfsOutputResolver } from './outputFiles.ts';
import { verifyWritten } from './verifyJob.ts';
import type { ConvertOutcome, ConvertRequest, ProgressReport } from './protocol.ts';

/** The secret id an encrypted output's password is stored under (qemu-img's --object secret,id=…). */
const OUTPUT_SECRET = 'sec0';
/** Bytes the conversion reads per step (measured: 1.25 GB in 16 MiB slices ≈ 2.0 s of browser CPU, in 4 MiB ones 2.7–3.3 s). */
const READ_WINDOW = 16 * 1024 * 1024;

/**
 * One conversion, start to finish, inside the worker: open the source through Blob slices,
 * write the target straight into its sink (the user's file, or OPFS), commit it, and on any
 * failure or cancel leave no output behind.
 */
export async function runConvert(req: ConvertRequest, onProgress: (p: ProgressReport) => void, signal: AbortSignal): Promise<ConvertOutcome> {
  const started = performance.now();
  const codecs = chooseCodecs();
  const resolver = new FileSetResolver(req.files);
  const enc = (s: string) => new TextEncoder().encode(s);
  onProgress({ done: 0, total: 0, rate: 0, phase: 'opening' });
  const source = await openImage(resolver.source(req.path), drivers, {
    resolver,
    codecs,
    signal,
    password: req.password ? enc(req.password) : undefined,
    snapshot: req.snapshot,
  });
  let sink: WritableSink | OpfsSink | undefined;
  const outputs = req.output.kind === 'opfs' ? new OpfsOutputResolver(resolver, req.output.prefix) : undefined;
  try {
    const target = findDriver(drivers, req.target);
    const options = { ...req.options };
    const secrets = req.outputPassword ? new Map([[OUTPUT_SECRET, enc(req.outputPassword)]]) : undefined;
    if (secrets && options['encrypt.format']) options['encrypt.key-secret'] = OUTPUT_SECRET;
    if (secrets && target.name === 'luks') options['key-secret'] = OUTPUT_SECRET;
    assertNotAborted(signal);
    sink = req.output.kind === 'fsa' ? await WritableSink.open(req.output.handle) : await OpfsSink.create(req.output.name, req.outputName);
    const result = await convert({
      source,
      target,
      sink,
      signal,
      batchSize: READ_WINDOW,
      onProgress: (p) => onProgress({ done: p.done, total: p.total, rate: p.rate, eta: p.eta, phase: p.phase === 'done' ? 'finalizing' : p.phase }),
      create: { options, compress: req.compress, codecs, secrets, filename: req.outputName, resolver: outputs ?? resolver },
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
      await verifyWritten(source, target.name, [{ name: req.outputName, file: written }, ...extraFiles], codecs, password, signal, onProgress);
    }
    const outcome: ConvertOutcome = {
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
    sink = undefined;
    return outcome;
  } finally {
    await source.close().catch(() => {});
    releaseCodecs(codecs);
    if (sink) {
      await discard(sink, req);
      await outputs?.removeAll();
    }
  }
}

/** Nothing half-written survives: abort the staged FSA write (and drop the empty file), or delete the OPFS file. */
async function discard(sink: WritableSink | OpfsSink, req: ConvertRequest): Promise<void> {
  if (sink instanceof OpfsSink) return sink.remove();
  // After a failed verification the stream is already closed: aborting it then fails harmlessly.
  await sink.abort().catch(() => {});
  if (req.output.kind !== 'fsa') return;
  // FileSystemHandle.remove() (Chromium 110+) is in neither TypeScript lib yet. Right after an
  // abort the file can still be locked by the closing stream (seen under load), so try a few times.
  const handle = req.output.handle as { remove?(): Promise<void> };
  for (let attempt = 0; attempt < 6 && handle.remove; attempt++) {
    try {
      await handle.remove();
      return;
    } catch (e) {
      if ((e as DOMException).name === 'NotFoundError') return;
      await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
}
