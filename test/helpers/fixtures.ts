import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { cli, cliOk } from './cli.ts';
import { qemuImg, run } from './sys.ts';

/** The qemu-img info fields DiskFerry promises to print identically. */
export const INFO_FIELDS = [
  'format',
  'virtual-size',
  'actual-size',
  'cluster-size',
  'backing-filename',
  'backing-filename-format',
  'full-backing-filename',
  'encrypted',
  'dirty-flag',
  'snapshots',
  'format-specific',
] as const;

export function pickInfo(info: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of INFO_FIELDS) if (info[k] !== undefined) out[k] = info[k];
  return out;
}

/** Our info --output=json against qemu-img's, field by field. */
export async function expectInfoMatches(file: string, extra: string[] = []): Promise<void> {
  const ours = JSON.parse(await cliOk('info', '--output=json', ...extra, file));
  const theirs = JSON.parse(qemuImg('info', '--output=json', ...extra, file));
  expect(pickInfo(ours)).toEqual(pickInfo(theirs));
}

/** Our raw export against qemu-img's raw export of the same image, byte for byte. */
export async function expectSameExport(
  file: string,
  outDir: (n: string) => string,
  tag: string,
  extra: string[] = [],
  qemuExtra = extra,
): Promise<void> {
  const mine = outDir(`${tag}.ours.raw`);
  const ref = outDir(`${tag}.qemu.raw`);
  const r = await cli('convert', ...extra, '-O', 'raw', file, mine);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  qemuImg('convert', ...qemuExtra, '-O', 'raw', file, ref);
  // cmp exits non-zero (and execFileSync throws with the first difference) on any mismatch.
  run('cmp', [mine, ref]);
  expect(readFileSync(mine).length).toBe(readFileSync(ref).length);
}
