import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { parseOptionString, parseSize } from '../../src-core/image/options.ts';
import { findDriver, openImage } from '../../src-core/image/open.ts';
import type { BlockDevice } from '../../src-core/image/types.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { convert } from '../../src-core/pipeline/convert.ts';
import { verifyOutput } from '../../src-core/pipeline/verify.ts';
import { hasFlag, optValue, optValues, parseArgs } from '../args.ts';
import { imageSpec, openCliImage, parseSecrets } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSink, NodeFileSource, NodeResolver } from '../nodeFiles.ts';
import { progressPrinter } from '../progress.ts';
import { cliCompressionCodecs, type CliCodecs } from '../pool/cliCodecs.ts';

export async function convertCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const p = parseArgs(argv, {
    withValue: ['-f', '-O', '-o', '-B', '-F', '-l', '-S', '--object', '-t', '-T', '-m', '-r', '--disk'],
    flags: ['-c', '-p', '-q', '-n', '-W', '-U', '--image-opts', '--allow-outside-paths', '--force-share', '--verify'],
  });
  const [srcArg, dst] = p.positional;
  if (!srcArg || !dst || p.positional.length > 2) throw new InvalidArgumentError('convert needs exactly one source and one destination');
  const targetName = optValue(p, '-O') ?? 'raw';
  const target = findDriver(drivers, targetName);
  const options: Record<string, string> = {};
  for (const o of optValues(p, '-o')) Object.assign(options, parseOptionString(o));
  const backingName = optValue(p, '-B') ?? options.backing_file;
  const backingFormat = optValue(p, '-F') ?? options.backing_fmt;
  delete options.backing_file;
  delete options.backing_fmt;
  if (optValue(p, '-S') !== undefined) parseSize(optValue(p, '-S')!, 'sparse size (-S)');
  const spec = imageSpec(srcArg, hasFlag(p, '--image-opts'), optValue(p, '-f'));
  if (path.resolve(spec.filename) === path.resolve(dst)) throw new InvalidArgumentError('source and destination are the same file', dst);

  // --disk N|NAME picks a disk inside an OVA.
  const { device: source } = await openCliImage(spec, p, { member: optValue(p, '--disk') }, path.dirname(path.resolve(dst)));
  let backing: BlockDevice | undefined;
  // -c: clusters are compressed on a pool of worker threads (cli/pool/).
  let pool: CliCodecs | undefined;
  const tmp = path.join(path.dirname(dst), `.${path.basename(dst)}.diskferry-${process.pid}.part`);
  // Creates companion files (split or flat extents) beside the destination.
  const outputResolver = new NodeResolver([path.dirname(path.resolve(dst))], true);
  try {
    if (backingName) backing = await openBacking(backingName, backingFormat, dst, p);
    const sink = await NodeFileSink.create(tmp);
    if (hasFlag(p, '-c')) pool = cliCompressionCodecs();
    const show = hasFlag(p, '-p') && !hasFlag(p, '-q');
    try {
      const result = await convert({
        source,
        target,
        sink,
        backing,
        signal,
        onProgress: show ? progressPrinter() : undefined,
        create: {
          options,
          compress: hasFlag(p, '-c'),
          backing: backingName ? { name: backingName, format: backingFormat ?? backing?.format } : undefined,
          codecs: pool?.codecs ?? nodeCodecs,
          secrets: parseSecrets(p),
          filename: dst,
          resolver: outputResolver,
        },
      });
      await sink.close();
      if (hasFlag(p, '--verify')) await verifyFile(source, tmp, dst, target.name, signal, show);
      await fs.rename(tmp, dst);
      if (show) process.stderr.write('\n');
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
    } finally {
      await sink.close().catch(() => {});
    }
  } catch (e) {
    // Nothing half-written survives: the temporary main file and any extents made so far.
    await fs.rm(tmp, { force: true });
    for (const f of outputResolver.created) await fs.rm(f, { force: true });
    throw e;
  } finally {
    await pool?.close();
    await source.close();
    await backing?.close();
  }
  return 0;
}

/** -B names the backing file as the new image will store it: relative to the new image's folder. */
async function openBacking(name: string, format: string | undefined, dst: string, p: ReturnType<typeof parseArgs>): Promise<BlockDevice> {
  const file = path.isAbsolute(name) ? name : path.join(path.dirname(dst), name);
  const src = await NodeFileSource.open(file, name);
  const allowOutside = hasFlag(p, '--allow-outside-paths');
  return openImage(src, drivers, {
    format,
    codecs: nodeCodecs,
    resolver: new NodeResolver([path.dirname(path.resolve(file))], allowOutside),
  });
}

/** --verify: opens what was written (still under its temporary name) and compares it with the source. */
async function verifyFile(source: BlockDevice, tmp: string, dst: string, format: string, signal: AbortSignal, show: boolean): Promise<void> {
  // Companion files (extents, data files) are named after the final name, so resolve from there.
  const src = await NodeFileSource.open(tmp, dst);
  const resolver = new NodeResolver([path.dirname(path.resolve(dst))], true);
  const out = await openImage(
    { name: dst, size: src.size, allocatedSize: src.allocatedSize, read: (o, l) => src.read(o, l), close: () => src.close() },
    drivers,
    { format, codecs: nodeCodecs, resolver, noBacking: false },
  );
  try {
    await verifyOutput(source, out, { signal, onProgress: show ? progressPrinter() : undefined });
  } finally {
    await out.close();
  }
}
