import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { humanSize } from '../../src-core/pipeline/info.ts';
import { mapEntryJson, mapImage } from '../../src-core/pipeline/map.ts';
import { hasFlag, optValue, parseArgs } from '../args.ts';
import { imageSpec, openCliImage } from '../context.ts';

export async function mapCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {
    withValue: ['-f', '--output', '--object'],
    flags: ['-U', '--image-opts', '--allow-outside-paths', '--force-share'],
  });
  const file = p.positional[0];
  if (!file) throw new InvalidArgumentError('map needs an image');
  const { device } = await openCliImage(imageSpec(file, hasFlag(p, '--image-opts'), optValue(p, '-f')), p);
  try {
    const json = optValue(p, '--output') === 'json';
    const rows: string[] = [];
    if (!json) rows.push('Offset          Length          Mapped to       File');
    for await (const e of mapImage(device)) {
      if (json) rows.push(mapEntryJson(e));
      else if (e.data && e.offset !== undefined) {
        rows.push(`${hex(e.start)}${hex(e.length)}${hex(e.offset)}depth ${e.depth}`);
      } else if (e.data) rows.push(`${hex(e.start)}${hex(e.length)}${'(compressed)'.padEnd(16)}depth ${e.depth}`);
    }
    process.stdout.write(json ? `[${rows.join(',\n')}]\n` : rows.join('\n') + '\n');
    if (!json) process.stderr.write(`virtual size ${humanSize(device.virtualSize)}\n`);
  } finally {
    await device.close();
  }
  return 0;
}

const hex = (n: number) => `0x${n.toString(16)}`.padEnd(16);
