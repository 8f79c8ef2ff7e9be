import { parseSize } from '../../src-core/image/options.ts';
import { humanSize } from '../../src-core/pipeline/info.ts';
import { mapEntryJson, mapImage } from '../../src-core/pipeline/map.ts';
import { imageSpec, openCliImage } from '../context.ts';
import { expectArgs, outputJson, type Cmd } from './types.ts';

export async function mapCommand({ opts, args }: Cmd<'map'>): Promise<number> {
  const [file] = expectArgs(args, 1, 1, 'Expecting one image file name');
  const json = outputJson(opts.output);
  const start = opts.startOffset !== undefined ? parseSize(opts.startOffset, 'start offset') : 0;
  const maxLength = opts.maxLength !== undefined ? parseSize(opts.maxLength, 'max length') : undefined;
  const { device } = await openCliImage(imageSpec(file, opts.imageOpts, opts.format), opts);
  try {
    const end = maxLength === undefined ? device.virtualSize : Math.min(device.virtualSize, start + maxLength);
    const rows: string[] = [];
    if (!json) rows.push('Offset          Length          Mapped to       File');
    for await (const entry of mapImage(device)) {
      // --start-offset/--max-length: entries clipped to the window.
      const s = Math.max(entry.start, start);
      const e = Math.min(entry.start + entry.length, end);
      if (e <= s) continue;
      const clipped = {
        ...entry,
        start: s,
        length: e - s,
        offset: entry.offset !== undefined ? entry.offset + (s - entry.start) : undefined,
      };
      if (json) rows.push(mapEntryJson(clipped));
      else if (clipped.data && clipped.offset !== undefined)
        rows.push(`${hex(clipped.start)}${hex(clipped.length)}${hex(clipped.offset)}depth ${clipped.depth}`);
      else if (clipped.data) rows.push(`${hex(clipped.start)}${hex(clipped.length)}${'(compressed)'.padEnd(16)}depth ${clipped.depth}`);
    }
    process.stdout.write(json ? `[${rows.join(',\n')}]\n` : rows.join('\n') + '\n');
    if (!json) process.stderr.write(`virtual size ${humanSize(device.virtualSize)}\n`);
  } finally {
    await device.close();
  }
  return 0;
}

const hex = (n: number) => `0x${n.toString(16)}`.padEnd(16);
