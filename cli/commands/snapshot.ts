import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { formatInfoHuman } from '../../src-core/pipeline/info.ts';
import { hasFlag, optValue, parseArgs } from '../args.ts';
import { imageSpec, openCliImage } from '../context.ts';

/** snapshot -l: list internal snapshots. Creating or deleting them would modify the image; refused. */
export async function snapshotCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { withValue: ['-f', '--object', '-c', '-d', '-a'], flags: ['-l', '-q', '-U', '--image-opts', '--force-share'] });
  if (!hasFlag(p, '-l')) throw new InvalidArgumentError('only "snapshot -l" (list) is supported; DiskFerry never modifies an image');
  const file = p.positional[0];
  if (!file) throw new InvalidArgumentError('snapshot -l needs an image');
  const { device } = await openCliImage(imageSpec(file, hasFlag(p, '--image-opts'), optValue(p, '-f')), p, { noBacking: true });
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
