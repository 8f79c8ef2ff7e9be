import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { compare } from '../../src-core/pipeline/compare.ts';
import { hasFlag, optValue, parseArgs } from '../args.ts';
import { imageSpec, openCliImage } from '../context.ts';
import { progressPrinter } from '../progress.ts';

/** qemu-img compare: exit 0 identical, 1 different, 2 on error (main maps errors). */
export async function compareCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const p = parseArgs(argv, {
    withValue: ['-f', '-F', '--object', '-T'],
    flags: ['-s', '-p', '-q', '-U', '--image-opts', '--allow-outside-paths', '--force-share'],
  });
  const [a, b] = p.positional;
  if (!a || !b) throw new InvalidArgumentError('compare needs two images');
  const io = hasFlag(p, '--image-opts');
  const A = await openCliImage(imageSpec(a, io, optValue(p, '-f')), p);
  try {
    const B = await openCliImage(imageSpec(b, io, optValue(p, '-F')), p);
    try {
      const r = await compare(A.device, B.device, {
        strict: hasFlag(p, '-s'),
        signal,
        onProgress: hasFlag(p, '-p') ? progressPrinter() : undefined,
      });
      if (hasFlag(p, '-p')) process.stderr.write('\n');
      if (!hasFlag(p, '-q')) process.stdout.write(r.message + '\n');
      return r.identical ? 0 : 1;
    } finally {
      await B.device.close();
    }
  } finally {
    await A.device.close();
  }
}
