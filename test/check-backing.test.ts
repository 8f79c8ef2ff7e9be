import { renameSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuImg, runStatus, tempDir } from './helpers/sys.ts';
import { readBytesAt, writeBytesAt } from './helpers/vhd.ts';

// qemu-img check opens the backing chain first: a missing backing file is exit 1 with
// "Could not open backing file", not a clean check of the top image alone.
const t = tempDir();
afterAll(() => t.cleanup());

/** An overlay of `fmt` over a base that is then moved away; returns the overlay's path. */
function orphan(fmt: string, baseFmt: string, name: string): string {
  const base = t.file(`${name}-base.${baseFmt}`);
  const top = t.file(`${name}.${fmt}`);
  qemuImg('create', '-q', '-f', baseFmt, base, '1M');
  qemuImg('create', '-q', '-f', fmt, '-b', base, '-F', baseFmt, top);
  return top;
}

describe('check with a missing backing file', () => {
  for (const [fmt, baseFmt] of [
    ['qcow2', 'qcow2'],
    ['qcow', 'qcow2'],
    ['vmdk', 'vmdk'],
  ] as const) {
    it(`${fmt}: the line and exit code qemu-img gives, in both output modes`, async () => {
      const top = orphan(fmt, baseFmt, `o-${fmt}`);
      // With the base present both agree that the chain opens.
      const present = await cli('check', top);
      expect(present.stderr).not.toContain('backing');
      renameSync(t.file(`o-${fmt}-base.${baseFmt}`), t.file(`o-${fmt}-gone`));
      for (const extra of [[], ['--output=json']]) {
        const theirs = runStatus('qemu-img', ['check', ...extra, top]);
        const ours = await cli('check', ...extra, top);
        expect(theirs.status).toBe(1);
        expect(ours.code).toBe(1);
        expect(ours.stdout).toBe('');
        // The same line after the program's own name ("qemu-img:" / "diskferry check:").
        expect(ours.stderr.replace(/^diskferry check: /, '')).toBe(theirs.stderr.replace(/^qemu-img: /, ''));
      }
    });
  }

  it('vhdx (differencing written by DiskFerry): exit 1 once the parent is gone', async () => {
    const raw = t.file('vx.raw');
    qemuImg('create', '-q', '-f', 'raw', raw, '4M');
    const parent = t.file('vx-parent.vhdx');
    const child = t.file('vx-child.vhdx');
    await cliOk('convert', '-O', 'vhdx', raw, parent);
    await cliOk('convert', '-O', 'vhdx', '-B', 'vx-parent.vhdx', '-F', 'vhdx', raw, child);
    expect((await cli('check', child)).code).toBe(0);
    renameSync(parent, t.file('vx-moved.vhdx'));
    const r = await cli('check', child);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `diskferry check: Could not open '${child}': Could not open backing file: Could not open '${parent}': No such file or directory\n`,
    );
  });
});

describe('check on a format without a check', () => {
  it('an image that opens: exit 63; one that does not (VHD footer checksum wrong): exit 1, as qemu-img opens first', async () => {
    const f = t.file('nocheck.vhd');
    qemuImg('create', '-q', '-f', 'vpc', f, '4M');
    expect(runStatus('qemu-img', ['check', f]).status).toBe(63);
    expect((await cli('check', f)).code).toBe(63);
    const sum = readBytesAt(f, 64, 4);
    sum[3] ^= 1; // the checksum of the footer copy at 0
    writeBytesAt(f, 64, sum);
    const q = runStatus('qemu-img', ['check', f]);
    const r = await cli('check', f);
    expect(q.status).toBe(1);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^diskferry check: Could not open '${f}': .*checksum.*\n$`));
  });
});
