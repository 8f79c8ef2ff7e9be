import { promises as fs } from 'node:fs';
import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { parseSize } from '../../src-core/image/options.ts';
import { imageSpec, openCliImage } from '../context.ts';
import { fillByUnits, keptBacking, layerWindow, replaceImage, rewritableOptions } from '../rewrite.ts';
import { expectArgs, type Cmd } from './types.ts';

const PREALLOC = ['off', 'metadata', 'falloc', 'full'];

/**
 * qemu-img resize. raw: the file is cut or extended in place (one ftruncate, atomic); falloc
 * and full write zeros into the new area. qcow2: the image is rewritten beside itself at the
 * new size and renamed over the old one (rewrite.ts), so a kill leaves the old or the new image.
 */
export async function resizeCommand({ opts, args }: Cmd<'resize'>): Promise<number> {
  const [file, sizeArg] = expectArgs(args, 2, 2, 'Expecting image file name and size') as [string, string];
  const prealloc = opts.preallocation ?? 'off';
  if (!PREALLOC.includes(prealloc)) throw new InvalidArgumentError(`Invalid preallocation mode '${prealloc}'`);
  const relative = sizeArg[0] === '+' ? 1 : sizeArg[0] === '-' ? -1 : 0;
  const n = parseSize(relative ? sizeArg.slice(1) : sizeArg, 'size');
  const spec = imageSpec(file, opts.imageOpts, opts.format);
  const { device } = await openCliImage(spec, opts, { noBacking: true });
  let closed = false;
  try {
    const current = device.virtualSize;
    const total = relative ? current + relative * n : n;
    if (total <= 0) throw new InvalidArgumentError('New image size must be positive');
    if (total <= current && prealloc !== 'off') throw new InvalidArgumentError('Preallocation can only be used for growing images');
    if (total < current && !opts.shrink) {
      throw new InvalidArgumentError('Use the --shrink option to perform a shrink operation.');
    }
    if (device.format === 'raw') {
      if (prealloc === 'metadata') throw new InvalidArgumentError('Unsupported preallocation mode: metadata', file);
      await device.close();
      closed = true;
      const fh = await fs.open(spec.filename, 'r+');
      try {
        await fh.truncate(total);
        if (prealloc === 'falloc' || prealloc === 'full') {
          const zeros = new Uint8Array(1 << 20);
          for (let pos = current; pos < total; pos += zeros.length) await fh.write(zeros, 0, Math.min(zeros.length, total - pos), pos);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
    } else {
      if (prealloc !== 'off' && device.format !== 'qcow2')
        throw new InvalidArgumentError(`preallocation=${prealloc} is not supported for ${device.format} images (only off)`);
      if (device.format === 'qcow2' && total % 512) throw new InvalidArgumentError('The new size must be a multiple of 512');
      const { format, options } = rewritableOptions(device);
      // The new area only: the writer allocates (metadata) or writes zeros into (falloc, full) its clusters.
      if (prealloc !== 'off') options.preallocation = prealloc;
      const backing = keptBacking(device);
      // The image through its backing chain: what a partly allocated cluster shows.
      const chain = backing ? (await openCliImage(spec, opts)).device : undefined;
      try {
        await replaceImage({
          file: spec.filename,
          format,
          virtualSize: total,
          options,
          backing,
          preallocateFrom: current,
          fill: (w) => fillByUnits(w, Math.min(total, current), (pos, end, g) => layerWindow(device, pos, end, !!backing, chain, g)),
        });
      } finally {
        await chain?.close();
      }
    }
  } finally {
    if (!closed) await device.close();
  }
  if (!opts.quiet) process.stdout.write('Image resized.\n');
  return 0;
}
