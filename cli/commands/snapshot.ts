import { InvalidArgumentError, UnsupportedError } from '../../src-core/io/errors.ts';
import { formatInfoHuman } from '../../src-core/pipeline/info.ts';
import { imageSpec, openCliImage } from '../context.ts';
import { expectArgs, type Cmd } from './types.ts';

/** snapshot -l lists internal snapshots; -c/-a/-d would need a qcow2 snapshot writer (refused). */
export async function snapshotCommand({ opts, args }: Cmd<'snapshot'>): Promise<number> {
  const actions = [opts.list, opts.create !== undefined, opts.apply !== undefined, opts.delete !== undefined].filter(Boolean).length;
  if (actions > 1) throw new InvalidArgumentError("Cannot mix '-l', '-a', '-c', '-d'");
  const [file] = expectArgs(args, 1, 1, 'Expecting one image file name');
  if (opts.create !== undefined || opts.apply !== undefined || opts.delete !== undefined) {
    throw new UnsupportedError(file!, 'creating, applying and deleting internal snapshots is not supported yet (only -l)');
  }
  const { device } = await openCliImage(imageSpec(file!, opts.imageOpts, opts.format), opts, { noBacking: true });
  try {
    const info = device.info();
    if (!info.snapshots?.length) return 0;
    const text = formatInfoHuman({ ...info, 'format-specific': undefined, extra: undefined });
    const list = text.slice(text.indexOf('Snapshot list:'));
    process.stdout.write(list + '\n');
  } finally {
    await device.close();
  }
  return 0;
}
