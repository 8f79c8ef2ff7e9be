import { chainLayers } from '../../src-core/image/chain.ts';
import type { ImageInfo } from '../../src-core/image/types.ts';
import { formatInfoHuman, infoJson } from '../../src-core/pipeline/info.ts';
import { imageSpec, openCliImage } from '../context.ts';
import type { Cmd } from './types.ts';
import { expectArgs, outputJson } from './types.ts';

export async function infoCommand({ opts, args }: Cmd<'info'>): Promise<number> {
  const [file] = expectArgs(args, 1, 1, 'Expecting one image file name');
  const json = outputJson(opts.output);
  const chain = opts.backingChain;
  const spec = imageSpec(file, opts.imageOpts, opts.format);
  const { device } = await openCliImage(spec, opts, { noBacking: !chain, member: opts.disk });
  try {
    const infos: ImageInfo[] = chain ? chainLayers(device).map((d) => d.info()) : [device.info()];
    if (json) process.stdout.write(infoJson(chain ? infos : infos[0]!) + '\n');
    else process.stdout.write(infos.map(formatInfoHuman).join('\n') + '\n');
  } finally {
    await device.close();
  }
  return 0;
}
