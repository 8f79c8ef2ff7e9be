import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { parseOptionString, parseSize } from '../../src-core/image/options.ts';
import { findDriver } from '../../src-core/image/open.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { imageSpec, openCliImage, parseSecrets } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { expectArgs, outputJson, type Cmd } from './types.ts';

export async function measureCommand({ opts, args }: Cmd<'measure'>): Promise<number> {
  const [file] = expectArgs(args, 0, 1, 'At most one filename argument is allowed.');
  const json = outputJson(opts.output);
  const target = findDriver(drivers, opts.targetFormat ?? 'raw');
  if (!target.measure) throw new InvalidArgumentError(`measure is not available for ${target.name} output`);
  const options: Record<string, string> = {};
  for (const o of opts.options) Object.assign(options, parseOptionString(o));
  if (file && opts.size !== undefined) throw new InvalidArgumentError('--size N cannot be used together with a filename.');
  if (!file && opts.size === undefined) throw new InvalidArgumentError('Either --size N or one filename must be specified.');
  const opened = file ? await openCliImage(imageSpec(file, opts.imageOpts, opts.format), opts) : undefined;
  try {
    const r = await target.measure(
      {
        virtualSize: opened?.device.virtualSize ?? parseSize(opts.size!, 'image size'),
        options,
        codecs: nodeCodecs,
        secrets: parseSecrets(opts),
        filename: '',
      },
      opened?.device,
    );
    if (json) process.stdout.write(JSON.stringify(r, null, 4) + '\n');
    else
      process.stdout.write(
        `required size: ${r.required}\nfully allocated size: ${r['fully-allocated']}\n` +
          (r.bitmaps !== undefined ? `bitmaps size: ${r.bitmaps}\n` : ''),
      );
  } finally {
    await opened?.device.close();
  }
  return 0;
}
