import { InvalidArgumentError, UnsupportedError } from '../../src-core/io/errors.ts';
import { parseSize } from '../../src-core/image/options.ts';
import type { BlockDevice } from '../../src-core/image/types.ts';
import { imageSpec, openCliImage } from '../context.ts';
import { fillByUnits, keptBacking, layerWindow, replaceImage, rewritableOptions } from '../rewrite.ts';
import { refuseUnwritable, resizeQed, truncateFile } from './resizeInPlace.ts';
import { expectArgs, type Cmd } from './types.ts';

const PREALLOC = ['off', 'metadata', 'falloc', 'full'];

interface InPlaceResize {
  /** LUKS: where the payload starts in the file; else 0. */
  payload: number;
  current: number;
  total: number;
  prealloc: string;
}

/** The formats resized in place in one step (resizeInPlace.ts); qcow2 is rewritten; others qemu-img 7.2 does not resize. */
const IN_PLACE: Record<string, (file: string, r: InPlaceResize) => Promise<void>> = {
  raw: (file, r) => truncateAfterCheck(file, r),
  luks: (file, r) => truncateAfterCheck(file, r),
  qed: (file, r) => resizeQed(file, r.total, r.prealloc),
};

async function truncateAfterCheck(file: string, r: InPlaceResize): Promise<void> {
  if (r.prealloc === 'metadata') throw new InvalidArgumentError('Unsupported preallocation mode: metadata', file);
  await truncateFile(file, r.payload + r.total, r.payload + r.current, r.prealloc);
}

function luksPayloadOffset(device: BlockDevice): number {
  const data = device.info()['format-specific']?.data as { 'payload-offset'?: number } | undefined;
  return data?.['payload-offset'] ?? 0;
}

/**
 * qemu-img resize. raw, LUKS and QED change in place in one step (resizeInPlace.ts); falloc
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
    refuseUnwritable(device.format, spec.filename);
    const current = device.virtualSize;
    const total = relative ? current + relative * n : n;
    if (total <= 0) throw new InvalidArgumentError('New image size must be positive');
    if (total <= current && prealloc !== 'off') throw new InvalidArgumentError('Preallocation can only be used for growing images');
    if (total < current && !opts.shrink) {
      throw new InvalidArgumentError('Use the --shrink option to perform a shrink operation.');
    }
    const inPlace = IN_PLACE[device.format];
    if (inPlace) {
      const payload = device.format === 'luks' ? luksPayloadOffset(device) : 0;
      await device.close();
      closed = true;
      await inPlace(spec.filename, { payload, current, total, prealloc });
    } else {
      if (device.format !== 'qcow2') throw new UnsupportedError(spec.filename, 'Image format driver does not support resize');
      if (total % 512) throw new InvalidArgumentError('The new size must be a multiple of 512');
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
