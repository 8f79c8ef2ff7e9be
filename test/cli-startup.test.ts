import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuImg, run, standardRaw, tempDir } from './helpers/sys.ts';

// Instant start: `diskferry info` loads only what it uses. What it must not load is checked
// through Node's own list of the built-in modules a process loaded (the time itself is in
// bench/: BENCH_CASES='info start-up').
const ROOT = path.resolve(import.meta.dirname, '..');
const t = tempDir();
const BIN = t.file('bin');
const img = t.file('small.qcow2');
const HOOK = 'data:text/javascript,process.on("exit",()=>{process.stderr.write("\\nLOADED "+JSON.stringify(process.moduleLoadList))})';

beforeAll(() => {
  run(process.execPath, [path.join(ROOT, 'scripts', 'build-cli.mjs'), BIN], { cwd: ROOT });
  const raw = t.file('small.raw');
  standardRaw(raw, 4 << 20, 1);
  qemuImg('convert', '-O', 'qcow2', raw, img);
});
afterAll(() => t.cleanup());

function loaded(...args: string[]): string[] {
  const r = spawnSync(process.execPath, ['--import', HOOK, path.join(BIN, 'diskferry.js'), ...args], { encoding: 'utf8', cwd: t.dir });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stderr.slice(r.stderr.lastIndexOf('LOADED ') + 7)) as string[];
}

const heavy = (list: string[]) => list.filter((m) => /NativeModule (crypto|zlib|worker_threads)$/.test(m));

describe('start-up', () => {
  it('info, check, map, --help and --version load no crypto, no zlib, no worker threads', () => {
    for (const args of [
      ['info', img],
      ['info', '--output=json', img],
      ['check', img],
      ['map', img],
      ['--help'],
      ['--version'],
      ['convert', '--help'],
    ]) {
      expect(heavy(loaded(...args)), args.join(' ')).toEqual([]);
    }
  });

  it('convert -c does load the worker pool (the check above can see it)', () => {
    expect(heavy(loaded('convert', '-c', '-O', 'qcow2', img, t.file('c.qcow2')))).toContain('NativeModule worker_threads');
  });
});
