import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addQcow2Leak } from './helpers/qcow2Leak.ts';
import { qemuImg, qemuImgCalibrating, qemuIo, prng, run, runStatus, tempDir } from './helpers/sys.ts';

// The commands that change an image in place, killed (SIGKILL) after random delays: the image
// under its name must always be the one from before or the one from after, and qemu-img check
// must find it clean. The CLI runs as shipped (the esbuild bundle), so start-up is short and
// the kills land inside the work.
const ROOT = path.resolve(import.meta.dirname, '..');
const t = tempDir('diskferry-kill-');
const BIN = t.file('bin');
const FIX = t.file('fixtures');
const SEEDS = [11, 22, 33, 44, 55];

beforeAll(() => {
  run(process.execPath, [path.join(ROOT, 'scripts', 'build-cli.mjs'), BIN], { cwd: ROOT });
  mkdirSync(FIX);
  // A 4 GiB base and overlay with some tens of MiB each, spread out: rewriting takes a while.
  qemuImg('create', '-q', '-f', 'qcow2', path.join(FIX, 'base.qcow2'), '4G');
  qemuImg('create', '-q', '-f', 'qcow2', path.join(FIX, 'other.qcow2'), '4G');
  qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', path.join(FIX, 'top.qcow2'));
  const w = (file: string, pattern: number, shift: number) =>
    qemuIo(
      ...Array.from({ length: 12 }, (_, i) => ['-c', `write -P ${pattern} ${i * 320 * 2 ** 20 + shift} 4M`]).flat(),
      path.join(FIX, file),
    );
  w('base.qcow2', 0x11, 0);
  w('other.qcow2', 0x22, 2 * 2 ** 20);
  w('top.qcow2', 0x33, 1 * 2 ** 20);
  // An overlay with an internal snapshot and data written after it (snapshot -a and -d).
  copyFileSync(path.join(FIX, 'top.qcow2'), path.join(FIX, 'snap.qcow2'));
  qemuImg('snapshot', '-c', 's', path.join(FIX, 'snap.qcow2'));
  w('snap.qcow2', 0x44, 3 * 2 ** 20);
  // The other formats changed in place or rewritten (test/cli-commands-formats.test.ts).
  const luks = path.join(FIX, 'k.luks');
  qemuImgCalibrating('create', '-q', ...SECRETS, '-f', 'luks', '-o', 'key-secret=s0,iter-time=100', luks, '64M');
  qemuIo(...named(luks), '-c', 'write -P 0x5a 0 1M');
  copyFileSync(luks, path.join(FIX, 'k2.luks'));
  const k2 = named(path.join(FIX, 'k2.luks'));
  qemuImgCalibrating('amend', ...k2.slice(0, -2), '-o', 'state=active,new-secret=s1,iter-time=100', ...k2.slice(-2));
  qemuImg('create', '-q', '-f', 'qed', path.join(FIX, 'top.qed'), '4G');
  w('top.qed', 0x55, 0);
  qemuImg('create', '-q', '-f', 'parallels', path.join(FIX, 'leak.parallels'), '4G');
  w('leak.parallels', 0x66, 0);
  for (const fmt of ['qed', 'vdi']) {
    qemuImg('create', '-q', '-f', fmt, path.join(FIX, `base.${fmt}`), '4G');
    w(`base.${fmt}`, 0x77, 0);
    qemuImg('create', '-q', '-f', 'qcow2', '-b', `base.${fmt}`, '-F', fmt, path.join(FIX, `over-${fmt}.qcow2`));
    w(`over-${fmt}.qcow2`, 0x78, 2 * 2 ** 20);
  }
}, 120_000);
afterAll(() => t.cleanup());

/**
 * What identifies an image's state: its info (minus sizes on disk), its allocation map and
 * qemu-img check's verdict; the content is compared separately (qemu-img compare).
 */
const SECRETS = ['--object', 'secret,id=s0,data=pw', '--object', 'secret,id=s1,data=new'];
/** How qemu-img names an image: a LUKS one through --image-opts with its secret. */
const named = (file: string): string[] =>
  file.endsWith('.luks') ? [...SECRETS, '--image-opts', `driver=luks,key-secret=s0,file.filename=${file}`] : [file];
/** qemu-img compare's arguments for two images. */
const compareArgs = (a: string, b: string): string[] => (a.endsWith('.luks') ? [...named(a), named(b).at(-1)!] : [a, b]);

function state(file: string): string {
  const { 'actual-size': _a, filename: _f, 'full-backing-filename': _fb, ...info } = JSON.parse(qemuImg('info', '--output=json', file));
  // A snapshot made by each run has that run's date.
  for (const s of (info.snapshots ?? []) as Record<string, unknown>[]) {
    delete s['date-sec'];
    delete s['date-nsec'];
  }
  const map = (JSON.parse(qemuImg('map', '--output=json', ...named(file))) as Record<string, unknown>[]).map(
    ({ offset: _o, filename: _n, ...e }) => e,
  );
  const check = runStatus('qemu-img', ['check', ...named(file)]).status;
  return JSON.stringify({ info, map, check });
}

interface Case {
  name: string;
  /** Arguments after the command; FILE is the image changed in place. */
  args: string[];
  /** The image that changes (commit changes base.qcow2 first, then top.qcow2). */
  files: string[];
  /** Readies a fresh copy (check -r: a leak to repair). */
  prepare?: (dir: string) => void;
  /** The fixtures the case needs (default: the qcow2 ones). */
  fixtures?: string[];
}

const QCOW2_FIXTURES = ['base.qcow2', 'other.qcow2', 'top.qcow2', 'snap.qcow2'];

const CASES: Case[] = [
  { name: 'resize', args: ['resize', 'top.qcow2', '+1G'], files: ['top.qcow2'] },
  { name: 'rebase', args: ['rebase', '-b', 'other.qcow2', '-F', 'qcow2', 'top.qcow2'], files: ['top.qcow2'] },
  { name: 'rebase -u', args: ['rebase', '-u', '-b', 'other.qcow2', '-F', 'qcow2', 'top.qcow2'], files: ['top.qcow2'] },
  { name: 'amend', args: ['amend', '-o', 'compat=0.10', 'top.qcow2'], files: ['top.qcow2'] },
  {
    name: 'check -r all',
    args: ['check', '-r', 'all', 'top.qcow2'],
    files: ['top.qcow2'],
    prepare: (dir) => addQcow2Leak(path.join(dir, 'top.qcow2')),
  },
  { name: 'commit', args: ['commit', 'top.qcow2'], files: ['base.qcow2', 'top.qcow2'] },
  { name: 'snapshot -c', args: ['snapshot', '-c', 'new', 'top.qcow2'], files: ['top.qcow2'] },
  { name: 'snapshot -a', args: ['snapshot', '-a', 's', 'snap.qcow2'], files: ['snap.qcow2'] },
  { name: 'snapshot -d', args: ['snapshot', '-d', 's', 'snap.qcow2'], files: ['snap.qcow2'] },
  // QED: one write of the header's size field.
  { name: 'resize qed', args: ['resize', '-f', 'qed', 'top.qed', '+1G'], files: ['top.qed'], fixtures: ['top.qed'] },
  {
    name: 'check -r all parallels',
    args: ['check', '-r', 'all', '-f', 'parallels', 'leak.parallels'],
    files: ['leak.parallels'],
    fixtures: ['leak.parallels'],
    // Space leaked at the end of the file: one ftruncate repairs it.
    prepare: (dir) => appendFileSync(path.join(dir, 'leak.parallels'), new Uint8Array(2 ** 20)),
  },
  // LUKS: a key slot added (key material, then its header entry) and one erased (entry first).
  {
    name: 'amend luks (add a key slot)',
    args: ['amend', ...SECRETS, '-o', 'state=active,new-secret=s1,iter-time=300', ...named('k.luks')],
    files: ['k.luks'],
    fixtures: ['k.luks'],
  },
  {
    name: 'amend luks (erase a key slot)',
    args: ['amend', ...SECRETS, '-o', 'state=inactive,old-secret=s1', ...named('k2.luks')],
    files: ['k2.luks'],
    fixtures: ['k2.luks'],
  },
  ...['qed', 'vdi'].map((fmt) => ({
    name: `commit into ${fmt}`,
    args: ['commit', `over-${fmt}.qcow2`],
    files: [`base.${fmt}`, `over-${fmt}.qcow2`],
    fixtures: [`base.${fmt}`, `over-${fmt}.qcow2`],
  })),
];

/** A fresh copy of the fixtures in a folder of its own. */
function fresh(name: string, c: Case): string {
  const dir = t.file(name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  for (const f of c.fixtures ?? QCOW2_FIXTURES) copyFileSync(path.join(FIX, f), path.join(dir, f));
  c.prepare?.(dir);
  return dir;
}

async function runCli(dir: string, args: string[], killAfterMs?: number): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(BIN, 'diskferry.js'), ...args], { cwd: dir, stdio: 'ignore' });
  const timer = killAfterMs !== undefined ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : undefined;
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, ms: performance.now() - t0 };
}

describe('a kill at any moment leaves the image before or after, check clean', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      // Before and after, and how long a whole run takes.
      const before = fresh(`${c.name}-before`, c);
      const after = fresh(`${c.name}-after`, c);
      const full = await runCli(after, c.args);
      expect(full.code).toBe(0);
      const states = c.files.map((f) => ({ before: state(path.join(before, f)), after: state(path.join(after, f)) }));
      // The command changes something, so the test can tell before from after.
      expect(states.some((s) => s.before !== s.after)).toBe(true);
      const rand = prng(c.name.length * 7919);
      let interrupted = 0;
      for (const seed of SEEDS) {
        const dir = fresh(`${c.name}-${seed}`, c);
        const delay = (((rand() ^ seed) % 1000) / 1000) * full.ms * 1.1;
        const r = await runCli(dir, c.args, delay);
        if (r.code !== 0) interrupted++;
        c.files.forEach((f, i) => {
          const file = path.join(dir, f);
          // Clean, or (check -r killed before its rename) the leak it started with: the state says which.
          const check = runStatus('qemu-img', ['check', ...named(file)]);
          expect(
            [0, c.prepare ? 3 : 0, file.endsWith('.luks') ? 63 : 0],
            `${c.name} killed after ${delay.toFixed(0)} ms: ${f}: ${check.stdout}${check.stderr}`,
          ).toContain(check.status);
          const now = state(file);
          expect([states[i]!.before, states[i]!.after], `${c.name} killed after ${delay.toFixed(0)} ms: ${f}`).toContain(now);
          // The content, read through the chain, is one of the two as well.
          const same = (other: string) => runStatus('qemu-img', ['compare', ...compareArgs(file, path.join(other, f))]).status === 0;
          expect(same(before) || same(after), `${c.name} killed after ${delay.toFixed(0)} ms: ${f} content`).toBe(true);
        });
        rmSync(dir, { recursive: true, force: true });
      }
      // At least one kill landed before the end (the delays spread over the whole run).
      expect(interrupted).toBeGreaterThan(0);
    });
  }
});
