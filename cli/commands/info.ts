import { chainLayers } from '../../src-core/image/chain.ts';
import type { ImageInfo } from '../../src-core/image/types.ts';
import { formatInfoHuman, infoJson } from '../../src-core/pipeline/info.ts';
import { hasFlag, optValue, parseArgs } from '../args.ts';
import { imageSpec, openCliImage } from '../context.ts';

export async function infoCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {
    withValue: ['-f', '--format', '--output', '--object', '-t', '-T', '--disk'],
    flags: ['--backing-chain', '--image-opts', '-U', '--force-share', '--allow-outside-paths'],
  });
  const file = p.positional[0];
  if (!file) throw new Error('info: no image file given');
  const json = optValue(p, '--output') === 'json';
  const chain = hasFlag(p, '--backing-chain');
  const spec = imageSpec(file, hasFlag(p, '--image-opts'), optValue(p, '-f', '--format'));
  const { device } = await openCliImage(spec, p, { noBacking: !chain, member: optValue(p, '--disk') });
  try {
    const infos: ImageInfo[] = chain ? chainLayers(device).map((d) => d.info()) : [device.info()];
    if (json) process.stdout.write(infoJson(chain ? infos : infos[0]!) + '\n');
    else process.stdout.write(infos.map(formatInfoHuman).join('\n') + '\n');
  } finally {
    await device.close();
  }
  return 0;
}
