import { compare } from '../../src-core/pipeline/compare.ts';
import { imageSpec, openCliImage } from '../context.ts';
import { QemuProgress } from '../progress.ts';
import { expectArgs, type Cmd } from './types.ts';

/** qemu-img compare: exit 0 identical, 1 different, 2 on error (main maps errors). */
export async function compareCommand({ opts, args }: Cmd<'compare'>, signal: AbortSignal): Promise<number> {
  const [a, b] = expectArgs(args, 2, 2, 'Expecting two image file names') as [string, string];
  const progress = new QemuProgress(opts.progress && !opts.quiet, 2);
  progress.print(0, 100);
  const A = await openCliImage(imageSpec(a, opts.imageOpts, opts.aFormat), opts);
  try {
    const B = await openCliImage(imageSpec(b, opts.imageOpts, opts.bFormat), opts);
    try {
      const r = await compare(A.device, B.device, { strict: opts.strict, signal, onProgress: progress.callback() });
      if (!opts.quiet) process.stdout.write(r.message + '\n');
      return r.identical ? 0 : 1;
    } finally {
      await B.device.close();
    }
  } finally {
    progress.end();
    await A.device.close();
  }
}
