import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { parseOptionString, parseSize } from '../../src-core/image/options.ts';
import { findDriver } from '../../src-core/image/open.ts';
import type { FormatDriver } from '../../src-core/image/types.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSink, NodeResolver } from '../nodeFiles.ts';
import { syncDir, syncFile } from '../rewrite.ts';
import { openBacking, optionHelp } from './convert.ts';
import type { Cmd } from './types.ts';

/** qemu-img create: a new empty image (written beside, then renamed into place). */
export async function createCommand({ opts, args }: Cmd<'create'>): Promise<number> {
  const target = findDriver(drivers, opts.format ?? 'raw');
  const options: Record<string, string> = {};
  for (const o of opts.options) Object.assign(options, parseOptionString(o));
  if ('help' in options || '?' in options) {
    process.stdout.write(optionHelp(target));
    return 0;
  }
  if (!args.length) throw new InvalidArgumentError('Expecting image file name');
  if (args.length > 2) throw new InvalidArgumentError(`Unexpected argument: ${args[2]}`);
  const [file, sizeArg] = args as [string, string | undefined];
  if (!target.create) throw new InvalidArgumentError(`Format driver '${target.name}' does not support image creation`, file);
  const backingName = opts.backing ?? options.backing_file;
  let backingFormat = opts.backingFormat ?? options.backing_fmt;
  delete options.backing_file;
  delete options.backing_fmt;
  const prealloc = options.preallocation;
  // raw's preallocation is ours (the writer has none): off, falloc and full all give zeros;
  // falloc and full write them so the blocks are allocated.
  if (target.name === 'raw') {
    if (prealloc !== undefined && !['off', 'falloc', 'full'].includes(prealloc))
      throw new InvalidArgumentError(`Unsupported preallocation mode: ${prealloc}`, file);
    delete options.preallocation;
  }
  let size = sizeArg !== undefined ? parseSize(sizeArg, 'image size') : undefined;
  if (backingName && !opts.backingUnsafe) {
    const b = await openBacking(backingName, backingFormat, file, opts);
    size ??= b.virtualSize;
    backingFormat ??= b.format;
    await b.close();
  }
  if (size === undefined) throw new InvalidArgumentError('Image creation needs a size parameter', file);
  if (backingName && !backingFormat) throw new InvalidArgumentError('Backing file specified without backing format', file);

  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.diskferry-${process.pid}.part`);
  const resolver = new NodeResolver([dir], true);
  const sink = await NodeFileSink.create(tmp);
  try {
    const writer = await target.create(sink, {
      virtualSize: size,
      options,
      backing: backingName ? { name: backingName, format: backingFormat } : undefined,
      codecs: nodeCodecs,
      filename: file,
      resolver,
    });
    // Printed once the options are known good (the writer checked them).
    if (!opts.quiet) process.stdout.write(formattingLine(file, target, size, options, backingName, backingFormat, prealloc) + '\n');
    if (target.name === 'raw' && (prealloc === 'full' || prealloc === 'falloc')) {
      const chunk = new Uint8Array(Math.max(writer.granularity, 1 << 20) - (Math.max(writer.granularity, 1 << 20) % writer.granularity));
      for (let pos = 0; pos < size; pos += chunk.length) await writer.write(pos, chunk.subarray(0, Math.min(chunk.length, size - pos)));
    }
    await writer.finish();
    await sink.close();
    await syncFile(tmp);
    await fs.rename(tmp, file);
    await syncDir(dir);
  } catch (e) {
    await sink.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    for (const f of resolver.created) await fs.rm(f, { force: true });
    throw e;
  }
  return 0;
}

/** The line qemu-img prints: "Formatting 'FILE', fmt=FMT size=N …" (qcow2's in qemu's order). */
function formattingLine(
  file: string,
  target: FormatDriver,
  size: number,
  options: Record<string, string>,
  backing: string | undefined,
  backingFmt: string | undefined,
  prealloc: string | undefined,
): string {
  const parts = [`fmt=${target.name}`];
  const back = backing ? [`backing_file=${backing}`, ...(backingFmt ? [`backing_fmt=${backingFmt}`] : [])] : [];
  if (target.name === 'qcow2') {
    const cs = options.cluster_size ? parseSize(options.cluster_size) : 65536;
    parts.push(
      `cluster_size=${cs}`,
      `extended_l2=${options.extended_l2 ?? 'off'}`,
      ...(prealloc ? [`preallocation=${prealloc}`] : []),
      `compression_type=${options.compression_type ?? 'zlib'}`,
      `size=${size}`,
      ...back,
    );
    if (options.compat) parts.push(`compat=${options.compat}`);
    parts.push(`lazy_refcounts=${options.lazy_refcounts ?? 'off'}`, `refcount_bits=${options.refcount_bits ?? '16'}`);
  } else {
    parts.push(`size=${size}`, ...back);
    for (const [k, v] of Object.entries(options)) parts.push(`${k}=${v}`);
    if (target.name === 'raw' && prealloc) parts.push(`preallocation=${prealloc}`);
  }
  return `Formatting '${file}', ${parts.join(' ')}`;
}
