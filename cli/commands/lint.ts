/**
 * `diskferry lint [--target=NAME] FILE…`: the pre-flight check. Facts are gathered here (the
 * image opened without its backing file, a Google Cloud tarball gunzipped and scanned), the
 * verdicts come from src-core/pipeline/lint (`lintImage`, `lintClashes`), the same functions
 * the page can run. Exit 0 when nothing fails (warnings allowed), 1 when a rule fails, 2 for
 * a bad command line or a file that cannot be read.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { CorruptImageError, InvalidArgumentError } from '../../src-core/io/errors.ts';
import { isTarHeader } from '../../src-core/formats/ova/tar.ts';
import {
  gatherFacts,
  lintClashes,
  lintImage,
  partitionTableOf,
  TarScan,
  worst,
  type LintFacts,
  type LintResult,
} from '../../src-core/pipeline/lint/index.ts';
import { findTarget, TARGETS, type Target } from '../../src-core/pipeline/targets.ts';
import { imageSpec, openCliImage } from '../context.ts';
import { isHttpUrl } from '../../src-core/io/httpSource.ts';
import { expectArgs, outputJson, UsageError, type Cmd } from './types.ts';

interface TargetReport {
  target: string;
  status: LintResult['status'];
  results: LintResult[];
}

interface FileReport {
  file: string;
  facts: LintFacts;
  targets: TargetReport[];
}

export async function lintCommand({ opts, args }: Cmd<'lint'>): Promise<number> {
  const files = expectArgs(args, 1, Infinity, 'Expecting at least one image file name');
  const json = outputJson(opts.output);
  let targets: readonly Target[] = TARGETS;
  if (opts.target !== undefined) {
    try {
      targets = [findTarget(opts.target)];
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const facts: LintFacts[] = [];
  for (const f of files) facts.push(await factsFor(f, opts));
  const reports: FileReport[] = facts.map((f) => ({ file: f.file, facts: f, targets: [] }));
  for (const t of targets) {
    const clashes = files.length > 1 ? lintClashes(t, facts) : new Map<string, LintResult>();
    reports.forEach((r, i) => {
      const results = lintImage(t, facts[i]!);
      const clash = clashes.get(r.file);
      if (clash) results.push(clash);
      r.targets.push({ target: t.name, status: worst(results), results });
    });
  }
  const all = reports.flatMap((r) => r.targets.flatMap((t) => t.results));
  const status = worst(all);
  if (json) process.stdout.write(`${JSON.stringify({ status, files: reports }, null, 4)}\n`);
  else process.stdout.write(human(reports, status));
  return status === 'fail' ? 1 : 0;
}

function human(reports: FileReport[], status: LintResult['status']): string {
  const lines: string[] = [];
  for (const r of reports) {
    for (const t of r.targets) {
      lines.push(`${r.file}: ${t.target}: ${t.status}`);
      for (const x of t.results) lines.push(`  ${x.status.padEnd(4)}  ${x.rule.padEnd(15)} ${x.reason}`);
    }
  }
  const count = (s: string) =>
    reports.reduce((n, r) => n + r.targets.reduce((m, t) => m + t.results.filter((x) => x.status === s).length, 0), 0);
  lines.push(`${status}: ${count('fail')} failed, ${count('warn')} warnings, ${count('pass')} passed`);
  return `${lines.join('\n')}\n`;
}

/** What opening a file for the check needs from a command line. */
type OpenOpts = Partial<Pick<Cmd<'lint'>['opts'], 'imageOpts' | 'format' | 'disk' | 'object' | 'allowOutside'>>;

/**
 * `convert --target=NAME` checks its own output too: the rules that do not pass, one line each
 * (a blank disk's missing partition table, for one). The file is kept either way.
 */
export async function lintOutput(target: Target, file: string, opts: OpenOpts): Promise<LintResult[]> {
  const facts = await factsFor(file, { ...opts, imageOpts: false, format: undefined, disk: undefined });
  return lintImage(target, facts).filter((r) => r.status !== 'pass');
}

/** A gzip'd tar (a Google Cloud image tarball) is scanned as a tar; anything else is opened as an image. */
async function factsFor(file: string, opts: OpenOpts): Promise<LintFacts> {
  if (!opts.imageOpts && !isHttpUrl(file) && (await gzippedTar(file))) return tarballFacts(file);
  const spec = imageSpec(file, !!opts.imageOpts, opts.format);
  // Without the backing file: a disk that has one fails the "standalone" rule instead of stopping the check.
  const { device, source } = await openCliImage(spec, opts, { member: opts.disk, noBacking: true });
  try {
    // Only a disk read as it arrives (a stream VMDK on a pipe) has no file under it.
    if (!source) throw new InvalidArgumentError(`${file}: lint reads the file itself; give it as a file, not a stream`);
    return await gatherFacts(file, device, source);
  } finally {
    await device.close();
  }
}

/** Whether the file is gzip whose first 512 bytes unpacked are a tar header. */
async function gzippedTar(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const b = new Uint8Array(2);
    await fh.read(b, 0, 2, 0);
    if (b[0] !== 0x1f || b[1] !== 0x8b) return false;
  } finally {
    await fh.close();
  }
  let head = Buffer.alloc(0);
  const gz = createReadStream(file).pipe(createGunzip());
  try {
    for await (const chunk of gz as AsyncIterable<Buffer>) {
      head = Buffer.concat([head, chunk]);
      if (head.length >= 512) break;
    }
  } catch {
    return false;
  } finally {
    gz.destroy();
  }
  return isTarHeader(head.subarray(0, 512));
}

async function tarballFacts(file: string): Promise<LintFacts> {
  const scan = new TarScan();
  const fh = await open(file, 'r');
  const fileSize = (await fh.stat()).size;
  await fh.close();
  try {
    for await (const chunk of createReadStream(file).pipe(createGunzip()) as AsyncIterable<Buffer>) scan.push(chunk);
  } catch (e) {
    // A cut or damaged gzip stream, or a tar header the scan refuses: one line naming the file.
    throw new CorruptImageError(file, `the tarball cannot be read: ${(e as Error).message}`);
  }
  const first = scan.members[0];
  return {
    file,
    container: 'gcp-tar',
    format: 'raw',
    virtualSize: first?.size ?? 0,
    fileSize,
    partitionTable: partitionTableOf(scan.head),
    tar: { members: scan.members },
  };
}
