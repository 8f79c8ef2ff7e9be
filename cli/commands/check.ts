import path from 'node:path';
import { errorLine, InvalidArgumentError, isDiskFerryError, MissingFileError, UnsupportedError } from '../../src-core/io/errors.ts';
import { findDriver, probe } from '../../src-core/image/open.ts';
import { checkExitCode, type CheckResult } from '../../src-core/image/types.ts';
import { drivers } from '../../src-core/formats/registry.ts';
import { imageSpec, openCliImage, parseSecrets, type CommonOpts, type ImageSpec } from '../context.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSource, NodeResolver } from '../nodeFiles.ts';
import { REPAIRABLE } from './repairInPlace.ts';
import { refuseUnwritable } from './resizeInPlace.ts';
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
  const first = await runCheck(spec, cmd);
  if (first === 63 || first === 1) return first;
  let r = first;
  let fixed: { leaks: number; corruptions: number } | undefined;
  if (opts.repair && (r.leaks || (opts.repair === 'all' && r.corruptions))) fixed = await repair(spec.filename, r, opts.repair, cmd);
  if (opts.repair && fixed && (fixed.leaks || fixed.corruptions)) {
    if (!json && !opts.quiet) {
      process.stdout.write(
        `The following inconsistencies were found and repaired:\n\n    ${fixed.leaks} leaked clusters\n    ${fixed.corruptions} corruptions\n\nDouble checking the fixed image now...\n`,
      );
    }
    const again = await runCheck(spec, cmd);
    if (again === 63 || again === 1) return again;
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

/** Repairs as qemu-img 7.2 does for the format; what it fixed. */
async function repair(file: string, r: CheckResult, mode: 'leaks' | 'all', cmd: Cmd<'check'>) {
  if (r.format === 'parallels') return (await import('./repairInPlace.ts')).repairParallels(file, mode);
  // QEMU's QED check counts leaked clusters but never frees them (QED has no free-space map).
  if (r.format === 'qed')
    return mode === 'all' && r.corruptions ? (await import('./repairInPlace.ts')).repairQed(file) : { leaks: 0, corruptions: 0 };
  // A VHDX whose only problem is an unreplayed log (read replayed, in memory): rewritten beside
  // itself with the log applied, as qemu-img's check -r all replays it into the file.
  const logOnly = r.format === 'vhdx' && mode === 'all' && !r.messages.some((m) => m.startsWith('ERROR'));
  if (r.format !== 'qcow2' && !logOnly)
    throw new UnsupportedError(file, `DiskFerry does not repair ${r.format} corruptions (qemu-img rewrites the bad table entries)`);
  const { repairImage } = await import('./rewrite.ts');
  return repairImage(file, r, mode, cmd);
}

/** The check's result; 63 when the format has no check, 1 when the image (or its backing chain) does not open. */
async function runCheck(spec: ImageSpec, { opts }: Cmd<'check'>): Promise<CheckResult | 63 | 1> {
  const { filename: file, format, keySecret } = spec;
  const src = await NodeFileSource.open(file);
  try {
    const driver = format ? findDriver(drivers, format) : await probe(src, drivers);
    const opened = await openAsQemuDoes(spec, opts, driver.name);
    if (opened.backingError) {
      process.stderr.write(`diskferry check: Could not open '${file}': Could not open backing file: ${opened.backingError}\n`);
      return 1;
    }
    if (opts.repair !== undefined) {
      // qemu-img opens the image read-write to repair it: read-only formats stop there.
      try {
        refuseUnwritable(driver.name, file);
      } catch (e) {
        process.stderr.write(`diskferry check: ${errorLine(e)}\n`);
        return 1;
      }
      if (!REPAIRABLE.has(driver.name)) {
        process.stderr.write(`diskferry check: This image format does not support checks\n`);
        return 63;
      }
    }
    if (!driver.check) {
      // qemu-img opens the image before it learns the format has no check.
      if (opened.topError) {
        process.stderr.write(`diskferry check: Could not open '${file}': ${opened.topError}\n`);
        return 1;
      }
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

/** Formats whose parent qemu-img 7.2 never opens: it reads a differencing VHD without it and refuses a differencing VDI outright. */
const QEMU_IGNORES_PARENT = new Set(['vpc', 'vdi']);

/**
 * qemu-img check opens the image with its backing chain before checking anything: a backing
 * file that cannot be opened stops it with exit 1, and so does an image that does not open when
 * its format has no check. Reports both reasons (undefined where that part opens). An image that
 * does not open on its own but has a check is left to the check, which reports its damage.
 */
async function openAsQemuDoes(spec: ImageSpec, opts: CommonOpts, format: string): Promise<{ topError?: string; backingError?: string }> {
  let top;
  try {
    top = await openCliImage({ ...spec, format }, opts, { noBacking: true });
  } catch (e) {
    return { topError: reason(e) };
  }
  const ref = top.device.backingRef;
  await top.device.close();
  if (!ref || QEMU_IGNORES_PARENT.has(format)) return {};
  try {
    const chain = await openCliImage({ ...spec, format }, opts);
    await chain.device.close();
    return {};
  } catch (e) {
    return { backingError: reason(e) };
  }
}

/** An open failure the way qemu-img words it: "Could not open 'FILE': why". */
function reason(e: unknown): string {
  // qemu-img names a missing file by its path from the current folder.
  if (e instanceof MissingFileError)
    return `Could not open '${new NodeResolver([]).resolve(e.missing, e.file)}': No such file or directory`;
  if (isDiskFerryError(e) && e.file) return `Could not open '${e.file}': ${e.detail}`;
  return errorLine(e);
}

/** qemu-img's dump_human_image_check(). */
function humanCheck(r: CheckResult): string {
  const lines = [...r.messages];
  if (!r.corruptions && !r.leaks && !r['check-errors']) lines.push('No errors were found on the image.');
  else {
    if (r.corruptions)
      lines.push(
        '',
        `${r.corruptions} errors were found on the image.`,
        'Data may be corrupted, or further writes to the image may corrupt it.',
      );
    if (r.leaks)
      lines.push('', `${r.leaks} leaked clusters were found on the image.`, 'This means waste of disk space, but no harm to data.');
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
