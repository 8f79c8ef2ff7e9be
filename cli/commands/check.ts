import path from 'node:path';
import { InvalidArgumentError } from '../../src-core/io/errors.ts';
import { findDriver, probe } from '../../src-core/image/open.ts';
import { checkExitCode, type CheckResult } from '../../src-core/image/types.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { imageSpec, parseSecrets } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from '../nodeFiles.ts';
import { expectArgs, outputJson, type Cmd } from './types.ts';

/** qemu-img check: 0 clean, 1 check failed, 2 corruptions, 3 leaks; 63 when the format cannot be checked. */
export async function checkCommand(cmd: Cmd<'check'>): Promise<number> {
  const { opts, args } = cmd;
  const [file] = expectArgs(args, 1, 1, 'Expecting one image file name');
  const json = outputJson(opts.output);
  if (opts.repair !== undefined && opts.repair !== 'leaks' && opts.repair !== 'all') {
    throw new InvalidArgumentError(`--repair (-r) expects 'leaks' or 'all', not '${opts.repair}'`);
  }
  const spec = imageSpec(file!, opts.imageOpts, opts.format);
  const first = await runCheck(spec.filename, spec.format, spec.keySecret, cmd);
  if (first === 63) return 63;
  let r = first;
  let fixed: { leaks: number; corruptions: number } | undefined;
  if (opts.repair && (r.leaks || (opts.repair === 'all' && r.corruptions))) {
    const { repairImage } = await import('./rewrite.ts');
    fixed = await repairImage(spec.filename, r, opts.repair, cmd);
    if (!json && !opts.quiet) {
      process.stdout.write(
        `The following inconsistencies were found and repaired:\n\n    ${fixed.leaks} leaked clusters\n    ${fixed.corruptions} corruptions\n\nDouble checking the fixed image now...\n`,
      );
    }
    const again = await runCheck(spec.filename, spec.format, spec.keySecret, cmd);
    if (again === 63) return 63;
    r = again;
  }
  if (json) {
    const { messages: _m, ...rest } = r;
    const out: Record<string, unknown> = { ...rest };
    if (fixed?.leaks) out['leaks-fixed'] = fixed.leaks;
    if (fixed?.corruptions) out['corruptions-fixed'] = fixed.corruptions;
    if (!opts.quiet) process.stdout.write(JSON.stringify(out, null, 4) + '\n');
  } else if (!opts.quiet) process.stdout.write(humanCheck(r));
  if (r['check-errors']) process.stderr.write('diskferry check: Check failed\n');
  return checkExitCode(r);
}

async function runCheck(file: string, format: string | undefined, keySecret: string | undefined, { opts }: Cmd<'check'>): Promise<CheckResult | 63> {
  const src = await NodeFileSource.open(file);
  try {
    const driver = format ? findDriver(drivers, format) : await probe(src, drivers);
    if (!driver.check) {
      process.stderr.write(`diskferry check: This image format does not support checks\n`);
      return 63;
    }
    const secrets = parseSecrets(opts);
    return await driver.check(src, {
      codecs: nodeCodecs,
      resolver: new NodeResolver([path.dirname(path.resolve(file))], opts.allowOutside),
      password: keySecret ? secrets.get(keySecret) : undefined,
    });
  } finally {
    await src.close();
  }
}

/** qemu-img's dump_human_image_check(). */
function humanCheck(r: CheckResult): string {
  const lines = [...r.messages];
  if (!r.corruptions && !r.leaks && !r['check-errors']) lines.push('No errors were found on the image.');
  else {
    if (r.corruptions) lines.push('', `${r.corruptions} errors were found on the image.`, 'Data may be corrupted, or further writes to the image may corrupt it.');
    if (r.leaks) lines.push('', `${r.leaks} leaked clusters were found on the image.`, 'This means waste of disk space, but no harm to data.');
    if (r['check-errors']) lines.push('', `${r['check-errors']} internal errors have occurred during the check.`);
  }
  const total = r['total-clusters'] ?? 0;
  const alloc = r['allocated-clusters'] ?? 0;
  if (total && alloc) {
    const pct = (n: number, of: number) => ((100 * n) / of).toFixed(2);
    lines.push(
      `${alloc}/${total} = ${pct(alloc, total)}% allocated, ${pct(r['fragmented-clusters'] ?? 0, alloc)}% fragmented, ${pct(r['compressed-clusters'] ?? 0, alloc)}% compressed clusters`,
    );
  }
  if (r['image-end-offset']) lines.push(`Image end offset: ${r['image-end-offset']}`);
  return lines.join('\n') + '\n';
}
