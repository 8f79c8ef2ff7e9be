import { openSync, writeSync, closeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lintImage, type LintFacts, type LintResult } from '../src-core/pipeline/lint/index.ts';
import { findTarget, TARGETS } from '../src-core/pipeline/targets.ts';
import { initialTarget, type TargetChoice } from '../web/state/store.ts';
import { dropClash, plannedFacts, plannedSize } from '../web/state/preflight.ts';
import { PRESETS } from '../web/state/presets.ts';
import { cliOk } from './helpers/cli.ts';
import { standardRaw, tempDir } from './helpers/sys.ts';

/**
 * The page's pre-flight panel judges the file a preset WOULD write (web/state/preflight.ts). For
 * every destination, its verdicts on the planned output are the ones `diskferry lint` gives the
 * file `diskferry convert --target=NAME` really writes: the prediction is checked against the
 * finished file, rule by rule.
 */
const t = tempDir('diskferry-preflight-');
const MiB = 1024 * 1024;
/** Not a whole MiB (Azure rounds it), above Azure's minimum. */
const SIZE = 20 * MiB + 512 * 1024;
const src = t.file('src.raw');

interface LintJson {
  files: { facts: LintFacts; targets: { target: string; results: LintResult[] }[] }[];
}

const verdicts = (rs: readonly LintResult[]) => Object.fromEntries(rs.map((r) => [r.rule, r.status]));

let sourceFacts: LintFacts;
beforeAll(async () => {
  standardRaw(src, SIZE, 3);
  // An MBR boot signature, so the partition-table rule passes on both sides.
  const fd = openSync(src, 'r+');
  writeSync(fd, Buffer.from([0x55, 0xaa]), 0, 2, 510);
  closeSync(fd);
  sourceFacts = (JSON.parse(await cliOk('lint', '--output=json', '--target=aws', src)) as LintJson).files[0]!.facts;
});
afterAll(() => t.cleanup());

describe('the pre-flight panel predicts diskferry lint on the converted file', () => {
  for (const target of TARGETS) {
    it(`--target=${target.name}`, async () => {
      const preset = PRESETS.find((p) => p.destination === target.name)!;
      const ext =
        preset.target === 'gcp-tar' ? 'tar.gz' : preset.target === 'ova' ? 'ova' : preset.target === 'vpc' ? 'vhd' : preset.target;
      const out = t.file(`out-${target.name}.${ext}`);
      await cliOk('convert', '-q', `--target=${target.name}`, src, out);
      const real = (JSON.parse(await cliOk('lint', '--output=json', `--target=${target.name}`, out)) as LintJson).files[0]!;
      const choice: TargetChoice = { ...initialTarget, format: preset.target, options: preset.options, compress: preset.compress };
      const size = plannedSize(preset, SIZE);
      expect(size.error).toBeUndefined();
      expect(size.size).toBe(real.facts.virtualSize);
      const planned = lintImage(findTarget(target.name), plannedFacts(sourceFacts, choice, size.size, out));
      expect(verdicts(planned)).toEqual(verdicts(real.targets[0]!.results));
      expect(Object.values(verdicts(planned))).not.toContain('fail');
    });
  }
});

describe('plannedSize', () => {
  const azure = PRESETS.find((p) => p.id === 'azure')!;
  it('says what it rounded, and that the added space is zeros', () => {
    expect(plannedSize(azure, SIZE)).toEqual({
      size: 21 * MiB,
      rounded:
        'rounded up from 20.5 MiB to 21 MiB (Azure wants a whole number of MiB); the added space is zeros, the guest’s data is unchanged',
    });
    expect(plannedSize(azure, 21 * MiB)).toEqual({ size: 21 * MiB });
    expect(
      plannedSize(
        PRESETS.find((p) => p.id === 'gcp'),
        3 * MiB + 4096,
      ).rounded,
    ).toMatch(/^rounded up from 3 MiB \(3149824 bytes\) to 1 GiB/);
  });
  it('refuses below the minimum with the numbers, judging the rounded size', () => {
    const r = plannedSize(azure, 8 * MiB);
    expect(r.size).toBe(8 * MiB);
    expect(r.error).toMatch(/at least 20 MiB \(20971520 bytes\)/);
    const facts = plannedFacts(sourceFacts, { ...initialTarget, format: 'vpc', options: azure.options }, r.size, 'x.vhd');
    expect(verdicts(lintImage(findTarget('azure'), facts)).size).toBe('fail');
  });
  it('leaves the size alone without a destination rule', () => {
    expect(plannedSize(undefined, SIZE)).toEqual({ size: SIZE });
    expect(
      plannedSize(
        PRESETS.find((p) => p.id === 'virtualbox'),
        SIZE,
      ),
    ).toEqual({ size: SIZE });
  });
});

describe('UUID clashes within a drop', () => {
  const a: LintFacts = { file: 'a.vdi', format: 'vdi', virtualSize: MiB, fileSize: MiB, partitionTable: 'none', uuid: 'u1' };
  const b: LintFacts = { ...a, file: 'b.vdi' };
  const choice: TargetChoice = { ...initialTarget, format: 'vdi' };
  it('a pass naming the dropped disks that share an id (each converted disk gets a new one)', () => {
    const pa = plannedFacts(a, choice, MiB, 'a.vdi');
    const pb = plannedFacts(b, choice, MiB, 'b.vdi');
    expect(dropClash('virtualbox', pa, [pa, pb], [a, b])).toMatchObject({
      status: 'pass',
      reason: expect.stringMatching(/a\.vdi and b\.vdi share UUID u1/),
    });
    expect(dropClash('virtualbox', pa, [pa], [a])).toBeUndefined();
  });
  it('a fail when one pinned -o uuid= would go to every disk (VirtualBox refuses the second)', () => {
    const pinned = { ...choice, options: { uuid: '5F3C2A10-7B4E-4D21-9A8F-0C1D2E3F4A5B' } };
    const pa = plannedFacts(a, pinned, MiB, 'a.vdi');
    const pb = plannedFacts(b, pinned, MiB, 'b.vdi');
    expect(pa.uuid).toBe('5f3c2a10-7b4e-4d21-9a8f-0c1d2e3f4a5b');
    expect(dropClash('virtualbox', pa, [pa, pb], [a, b])).toMatchObject({ status: 'fail' });
    expect(dropClash('proxmox', pa, [pa, pb], [a, b])).toMatchObject({ status: 'warn' });
  });
});
