import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { parseOptionString, parseSize } from '../../src-core/image/options.ts';
import { findDriver } from '../../src-core/image/open.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { hasFlag, optValue, optValues, parseArgs } from '../args.ts';
import { imageSpec, openCliImage, parseSecrets } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';

export async function measureCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {
    withValue: ['-f', '-O', '-o', '--output', '--object', '--size', '-l'],
    flags: ['-U', '--image-opts', '--allow-outside-paths', '--force-share'],
  });
  const target = findDriver(drivers, optValue(p, '-O') ?? 'raw');
  if (!target.measure) throw new InvalidArgumentError(`measure is not available for ${target.name} output`);
  const options: Record<string, string> = {};
  for (const o of optValues(p, '-o')) Object.assign(options, parseOptionString(o));
  const file = p.positional[0];
  const sizeArg = optValue(p, '--size');
  if (!file && !sizeArg) throw new InvalidArgumentError('measure needs an image or --size');
  const opened = file ? await openCliImage(imageSpec(file, hasFlag(p, '--image-opts'), optValue(p, '-f')), p) : undefined;
  try {
    const r = await target.measure(
      {
        virtualSize: opened?.device.virtualSize ?? parseSize(sizeArg!),
        options,
        codecs: nodeCodecs,
        secrets: parseSecrets(p),
        filename: '',
      },
      opened?.device,
    );
    if (optValue(p, '--output') === 'json') process.stdout.write(JSON.stringify(r, null, 4) + '\n');
    else process.stdout.write(`required size: ${r.required}\nfully allocated size: ${r['fully-allocated']}\n` + (r.bitmaps !== undefined ? `bitmaps size: ${r.bitmaps}\n` : ''));
  } finally {
    await opened?.device.close();
  }
  return 0;
}
