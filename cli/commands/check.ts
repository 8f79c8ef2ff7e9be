import path from 'node:path';
import { errorLine, InvalidArgumentError, isDiskFerryError, MissingFileError } from '../../src-core/io/errors.ts';
import { findDriver, probe } from '../../src-core/image/open.ts';
import { checkExitCode, type CheckResult } from '../../src-core/image/types.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { hasFlag, optValue, parseArgs, type ParsedArgs } from '../args.ts';
import { imageSpec, openCliImage, parseSecrets, type ImageSpec } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from '../nodeFiles.ts';

/** qemu-img check: 0 clean, 2 corruptions, 3 leaks; 63 when the format cannot be checked. */
export async function checkCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {
    withValue: ['-f', '--output', '--object', '-r', '-T'],
    flags: ['-q', '-U', '--image-opts', '--allow-outside-paths', '--force-share'],
  });
  const file = p.positional[0];
  if (!file) throw new InvalidArgumentError('check needs an image');
  if (optValue(p, '-r')) throw new InvalidArgumentError('check -r (repair) is not supported: DiskFerry never modifies an image in place');
  const spec = imageSpec(file, hasFlag(p, '--image-opts'), optValue(p, '-f'));
  const src = await NodeFileSource.open(spec.filename);
  try {
    const driver = spec.format ? findDriver(drivers, spec.format) : await probe(src, drivers);
    const opened = await openAsQemuDoes(spec, p, driver.name);
    if (opened.backingError) {
      process.stderr.write(`qemu-img: Could not open '${spec.filename}': Could not open backing file: ${opened.backingError}\n`);
      return 1;
    }
    if (!driver.check) {
      // qemu-img opens the image before it learns the format has no check.
      if (opened.topError) {
        process.stderr.write(`qemu-img: Could not open '${spec.filename}': ${opened.topError}\n`);
        return 1;
      }
      process.stderr.write(`qemu-img: This image format does not support checks\n`);
      return 63;
    }
    const secrets = parseSecrets(p);
    const r = await driver.check(src, {
      codecs: nodeCodecs,
      resolver: new NodeResolver([path.dirname(path.resolve(spec.filename))], hasFlag(p, '--allow-outside-paths')),
      password: spec.keySecret ? secrets.get(spec.keySecret) : undefined,
    });
    if (optValue(p, '--output') === 'json') {
      const { messages: _m, ...json } = r;
      process.stdout.write(JSON.stringify(json, null, 4) + '\n');
    } else if (!hasFlag(p, '-q')) process.stdout.write(humanCheck(r));
    return checkExitCode(r);
  } finally {
    await src.close();
  }
}

/** Formats whose parent qemu-img 7.2 never opens: it reads a differencing VHD without it and refuses a differencing VDI outright. */
const QEMU_IGNORES_PARENT = new Set(['vpc', 'vdi']);

/**
 * qemu-img check opens the image with its backing chain before checking anything: a backing
 * file that cannot be opened stops it with exit 1, and so does an image that does not open when
 * its format has no check. Reports both reasons (undefined where that part opens). An image that
 * does not open on its own but has a check is left to the check, which reports its damage.
 */
async function openAsQemuDoes(spec: ImageSpec, p: ParsedArgs, format: string): Promise<{ topError?: string; backingError?: string }> {
  let top;
  try {
    top = await openCliImage({ ...spec, format }, p, { noBacking: true });
  } catch (e) {
    return { topError: reason(e) };
  }
  const ref = top.device.backingRef;
  await top.device.close();
  if (!ref || QEMU_IGNORES_PARENT.has(format)) return {};
  try {
    const chain = await openCliImage({ ...spec, format }, p);
    await chain.device.close();
    return {};
  } catch (e) {
    return { backingError: reason(e) };
  }
}

/** An open failure the way qemu-img words it: "Could not open 'FILE': why". */
function reason(e: unknown): string {
  // qemu-img names a missing file by its path from the current folder.
  if (e instanceof MissingFileError) return `Could not open '${new NodeResolver([]).resolve(e.missing, e.file)}': No such file or directory`;
  if (isDiskFerryError(e) && e.file) return `Could not open '${e.file}': ${e.detail}`;
  return errorLine(e);
}

function humanCheck(r: CheckResult): string {
  const lines = [...r.messages];
  if (r.corruptions) {
    lines.push('', `${r.corruptions} errors were found on the image.`, 'Data may be corrupted, or further writes to the image may corrupt it.');
  }
  if (r.leaks) lines.push('', `${r.leaks} leaked clusters were found on the image.`, 'This means waste of disk space, but no harm to data.');
  if (!r.corruptions && !r.leaks) lines.push('No errors were found on the image.');
  const total = r['total-clusters'] ?? 0;
  if (total) {
    const pct = (n = 0) => ((100 * n) / total).toFixed(2);
    lines.push(
      `${r['allocated-clusters'] ?? 0}/${total} = ${pct(r['allocated-clusters'])}% allocated, ${pct(r['fragmented-clusters'])}% fragmented, ${pct(r['compressed-clusters'])}% compressed clusters`,
    );
  }
  if (r['image-end-offset']) lines.push(`Image end offset: ${r['image-end-offset']}`);
  return lines.join('\n') + '\n';
}
