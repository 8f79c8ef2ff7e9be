/**
 * convert -n into an existing qcow2 image: the guest data goes into the image that is there,
 * which keeps its options (cluster size, compat, refcount width, …), its virtual size, its
 * backing file and what it holds past the end of the source. The file itself is never created,
 * renamed or truncated: the image is built beside it (a hidden part file, from the source and,
 * past the source's end, the old image), then copied into the existing file's bytes, leaving
 * holes where both are zeros. Like convert -n into a raw file, a kill midway leaves the target
 * half-written (qemu-img's -n writes in place too).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, UnsupportedError } from '../../src-core/io/errors.ts';
import { isAllZero } from '../../src-core/io/struct.ts';
import type { BlockDevice } from '../../src-core/image/types.ts';
import { openCliImage, type CommonOpts } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSink, NodeResolver } from '../nodeFiles.ts';
import { fillByUnits, keptBacking, layerWindow, rewritableOptions, type UnitContent } from '../rewrite.ts';

const COPY_CHUNK = 4 * 1024 * 1024;

export async function convertIntoExistingQcow2(
  source: BlockDevice,
  dst: string,
  opts: CommonOpts & { compress?: boolean },
  onProgress: (done: number, total: number) => void,
): Promise<void> {
  let target: BlockDevice;
  try {
    target = (await openCliImage({ filename: dst, format: 'qcow2' }, { ...opts, snapshot: undefined }, { noBacking: true })).device;
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new InvalidArgumentError(`Could not open '${dst}': ${/not a qcow2/.test(detail) ? 'Image is not in qcow2 format' : detail}`);
  }
  const tmp = path.join(path.dirname(dst), `.${path.basename(dst)}.diskferry-${process.pid}.part`);
  let sink: NodeFileSink | undefined;
  let chain: BlockDevice | undefined;
  try {
    if (target.virtualSize < source.virtualSize) throw new InvalidArgumentError('output file is smaller than input file', dst);
    const { format, options } = rewritableOptions(target);
    const backing = keptBacking(target);
    // The image through its backing chain: what the part of a cluster past the source's end shows.
    chain = backing ? (await openCliImage({ filename: dst, format: 'qcow2' }, { ...opts, snapshot: undefined })).device : undefined;
    const size = target.virtualSize;
    const srcSize = source.virtualSize;
    let lastDone = -1;
    sink = await NodeFileSink.create(tmp);
    const writer = await format.create!(sink, {
      virtualSize: size,
      options,
      backing,
      compress: opts.compress,
      codecs: nodeCodecs,
      filename: dst,
      resolver: new NodeResolver([path.dirname(path.resolve(dst))], true),
    });
    await fillByUnits(
      writer,
      size,
      async (pos, end, unit) => {
        // Past the source's end the image keeps what it held, as it held it.
        if (pos >= srcSize) return layerWindow(target, pos, end, !!backing, chain, unit);
        const bytes = new Uint8Array(end - pos);
        bytes.set((await source.read(pos, Math.min(end, srcSize) - pos)).subarray(0, end - pos));
        // A window across the source's end: the units past it keep the old image's, and the
        // unit the end falls in gets the old image's bytes after it.
        const old = end > srcSize ? await layerWindow(target, pos, end, !!backing, chain, unit) : undefined;
        if (end > srcSize) bytes.set((await (chain ?? target).read(srcSize, end - srcSize)).subarray(0, end - srcSize), srcSize - pos);
        return (off, len): UnitContent => {
          if (old && off >= srcSize) return old(off, len);
          const b = bytes.subarray(off - pos, off - pos + len);
          // Zeros must hide the target's backing file, as qemu-img's zero writes do.
          if (isAllZero(b)) return backing ? { kind: 'zero' } : { kind: 'skip' };
          return { kind: 'data', bytes: b.slice() };
        };
      },
      (done) => {
        // Windows past the source's end copy the old image: no more progress to show.
        if (done <= srcSize || lastDone < srcSize) onProgress((lastDone = Math.min(done, srcSize)), srcSize);
      },
    );
    await writer.finish();
    await sink.close();
    sink = undefined;
    await target.close();
    await copyInto(tmp, dst);
  } finally {
    await sink?.close().catch(() => {});
    await target.close().catch(() => {});
    await chain?.close().catch(() => {});
    await fs.rm(tmp, { force: true });
  }
}

/** The bytes of `from` over the start of `to`, in place; zeros over zeros (holes) not written. */
async function copyInto(from: string, to: string): Promise<void> {
  const src = await fs.open(from, 'r');
  const dst = await fs.open(to, 'r+');
  try {
    const { size } = await src.stat();
    const buf = new Uint8Array(COPY_CHUNK);
    const old = new Uint8Array(COPY_CHUNK);
    for (let pos = 0; pos < size; pos += COPY_CHUNK) {
      const n = Math.min(COPY_CHUNK, size - pos);
      const { bytesRead } = await src.read(buf, 0, n, pos);
      if (bytesRead !== n) throw new UnsupportedError(from, 'the rebuilt image could not be read back');
      const chunk = buf.subarray(0, n);
      if (isAllZero(chunk)) {
        const had = await dst.read(old, 0, n, pos);
        if (isAllZero(old.subarray(0, had.bytesRead))) continue;
      }
      let done = 0;
      while (done < n) done += (await dst.write(chunk, done, n - done, pos + done)).bytesWritten;
    }
    await dst.sync();
  } finally {
    await src.close();
    await dst.close();
  }
}
