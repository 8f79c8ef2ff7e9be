import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { qemuImg, runStatus, standardRaw, tempDir, writePatternedRaw } from './helpers/sys.ts';

// The command line as a user meets it: errors, progress, safety of the output file.
const t = tempDir();
const raw = t.file('src.raw');
beforeAll(() => standardRaw(raw, 8 << 20, 1));
afterAll(() => t.cleanup());

const ROOT = path.resolve(import.meta.dirname, '..');

describe('CLI', () => {
  it('prints usage and lists the formats', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('convert');
    expect(r.stdout).toMatch(/formats:.*qcow2.*raw/);
  });

  it('a missing file is a one-line error naming it, exit 1', async () => {
    const r = await cli('info', t.file('nope.vmdk'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('nope.vmdk');
    expect(r.stderr).toContain('no such file');
  });

  it('a truncated qcow2 is a one-line error that says what is wrong', async () => {
    const img = t.file('trunc.qcow2');
    qemuImg('convert', '-O', 'qcow2', raw, img);
    const f = t.file('cut.qcow2');
    writeFileSync(f, (await import('node:fs')).readFileSync(img).subarray(0, 70000));
    const r = await cli('convert', '-O', 'raw', f, t.file('cut.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('cut.qcow2');
    expect(existsSync(t.file('cut.raw'))).toBe(false);
  });

  it('a conversion that fails partway removes the extent files it had created', async () => {
    const img = t.file('partial.qcow2');
    qemuImg('convert', '-O', 'qcow2', raw, img);
    const f = t.file('partial-cut.qcow2');
    const bytes = (await import('node:fs')).readFileSync(img);
    // Keep the metadata, lose the last data clusters: reading fails late in the conversion.
    writeFileSync(f, bytes.subarray(0, bytes.length - 200_000));
    const dst = t.file('split.vmdk');
    const r = await cli('convert', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', f, dst);
    expect(r.code).toBe(1);
    expect(readdirSync(t.dir).filter((n) => n.startsWith('split') || n.includes('diskferry'))).toEqual([]);
  });

  it('an unknown -o option is refused and names the option', async () => {
    const r = await cli('convert', '-O', 'qcow2', '-o', 'clustersize=4k', raw, t.file('x.qcow2'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('clustersize');
    expect(existsSync(t.file('x.qcow2'))).toBe(false);
  });

  it('-p prints qemu-img\'s progress on stdout: "    (NN.NN/100%)\\r" from 0 to 100, then a newline; -q silences it', async () => {
    const r = await cli('convert', '-p', '-O', 'qcow2', raw, t.file('p.qcow2'));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^( {4}\(\d{1,3}\.\d\d\/100%\)\r)+\n$/);
    const steps = [...r.stdout.matchAll(/\((\d+\.\d\d)\/100%\)/g)].map((m) => Number(m[1]));
    expect(steps[0]).toBe(0);
    expect(steps.at(-1)).toBe(100);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    // qemu-img prints the same shape.
    const q = runStatus('qemu-img', ['convert', '-p', '-O', 'qcow2', raw, t.file('pq.qcow2')]);
    expect(q.stdout).toMatch(/^( {4}\(\d{1,3}\.\d\d\/100%\)\r)+\n$/);
    const quiet = await cli('convert', '-p', '-q', '-O', 'qcow2', raw, t.file('pq2.qcow2'));
    expect(quiet.code).toBe(0);
    expect(quiet.stdout + quiet.stderr).toBe('');
  });

  it('a backing file outside the image folder is refused unless allowed', async () => {
    const sub = t.file('sub');
    (await import('node:fs')).mkdirSync(sub);
    qemuImg('create', '-f', 'qcow2', '-b', '../src.raw', '-F', 'raw', path.join(sub, 'ov.qcow2'));
    const r = await cli('convert', '-O', 'raw', path.join(sub, 'ov.qcow2'), t.file('ov.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('../src.raw');
    expect(r.stderr).toContain('outside');
    const ok = await cli('convert', '--allow-outside-paths', '-O', 'raw', path.join(sub, 'ov.qcow2'), t.file('ov.raw'));
    expect(ok.code).toBe(0);
  });

  it('Ctrl-C in the middle of a conversion leaves no file under the destination name', async () => {
    const big = t.file('big.raw');
    // 400 MiB of data to compress: several seconds of work.
    writePatternedRaw(big, 400 << 20, [{ offset: 0, length: 400 << 20 }], 3);
    const dst = t.file('big.qcow2');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'cli/main.ts'), 'convert', '-p', '-c', '-O', 'qcow2', big, dst],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stdout += d));
    // Interrupt once it has made visible progress.
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (/\((?!0\.00)\d+\.\d\d\/100%\)/.test(stdout)) {
          clearInterval(timer);
          resolve();
        }
      }, 50);
    });
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, stdout, stderr }).not.toMatchObject({ code: 0 });
    expect(stderr).toContain('cancel');
    expect(existsSync(dst)).toBe(false);
    expect(readdirSync(t.dir).filter((n) => n.includes('diskferry'))).toEqual([]);
  });
});
