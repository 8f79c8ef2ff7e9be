import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { parseSize } from '../../src-core/image/options.ts';
import { findDriver } from '../../src-core/image/open.ts';
import type { BlockDevice, Extent } from '../../src-core/image/types.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { convert } from '../../src-core/pipeline/convert.ts';
import { imageSpec, openCliImage } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSink, NodeResolver } from '../nodeFiles.ts';
import type { Cmd } from './types.ts';

/** qemu-img dd: bs= count= skip= if= of=, the output made in -O format (default raw). */
export async function ddCommand({ opts, args }: Cmd<'dd'>, signal: AbortSignal): Promise<number> {
  const ops: Record<string, string> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    const key = eq < 0 ? a : a.slice(0, eq);
    if (eq < 0 || !['bs', 'count', 'if', 'of', 'skip'].includes(key)) throw new InvalidArgumentError(`unrecognized operand ${a}`);
    ops[key] = a.slice(eq + 1);
  }
  if (ops.if === undefined || ops.of === undefined) throw new InvalidArgumentError('Must specify both input and output files');
  const bs = ops.bs !== undefined ? parseSize(ops.bs, 'block size') : 512;
  if (bs <= 0) throw new InvalidArgumentError(`invalid number: '${ops.bs}'`);
  const count = ops.count !== undefined ? parseSize(ops.count, 'count') : undefined;
  const skip = ops.skip !== undefined ? parseSize(ops.skip, 'skip') : 0;
  const target = findDriver(drivers, opts.outputFormat ?? 'raw');
  const { device } = await openCliImage(imageSpec(ops.if, opts.imageOpts, opts.format), opts);
  const dst = ops.of;
  const dir = path.dirname(path.resolve(dst));
  const tmp = path.join(dir, `.${path.basename(dst)}.diskferry-${process.pid}.part`);
  const resolver = new NodeResolver([dir], true);
  try {
    let size = device.virtualSize;
    if (count !== undefined && count * bs < size) size = count * bs;
    const start = skip * bs;
    if (start > size) process.stderr.write(`diskferry dd: ${ops.if}: cannot skip to specified offset\n`);
    const length = Math.max(0, size - start);
    const sink = await NodeFileSink.create(tmp);
    try {
      if (length > 0) {
        await convert({
          source: slice(device, start, length),
          target,
          sink,
          signal,
          create: { options: {}, codecs: nodeCodecs, filename: dst, resolver },
        });
      } else {
        const w = await target.create!(sink, { virtualSize: 0, options: {}, codecs: nodeCodecs, filename: dst, resolver });
        await w.finish();
      }
      await sink.close();
      await fs.rename(tmp, dst);
    } finally {
      await sink.close().catch(() => {});
    }
  } catch (e) {
    await fs.rm(tmp, { force: true });
    for (const f of resolver.created) await fs.rm(f, { force: true });
    throw e;
  } finally {
    await device.close();
  }
  return 0;
}

/** Bytes [start, start+length) of a disk as a disk of their own. */
function slice(dev: BlockDevice, start: number, length: number): BlockDevice {
  async function* extents(from = 0, to = length): AsyncIterable<Extent> {
    for await (const e of dev.extents(start + from, start + Math.min(to, length))) {
      yield { ...e, offset: e.offset - start, hostOffset: undefined };
    }
  }
  return {
    format: dev.format,
    filename: dev.filename,
    virtualSize: length,
    extents,
    read: async (offset, len) => {
      const n = Math.max(0, Math.min(len, length - offset));
      const data = await dev.read(start + offset, n);
      if (data.length === len) return data;
      const out = new Uint8Array(len);
      out.set(data.subarray(0, n));
      return out;
    },
    info: () => ({ ...dev.info(), 'virtual-size': length }),
    close: () => dev.close(),
  };
}
