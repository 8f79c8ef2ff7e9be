import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../cli/parse.ts';
import { cli } from './helpers/cli.ts';
import { startServer, type TestServer } from './helpers/httpServer.ts';
import { qemuCompare, qemuImg, qemuIo, tempDir } from './helpers/sys.ts';

// convert --progress=json (one JSON object per line on stderr) and SIGTERM in the middle of
// a conversion (the CLI as a child process: it stops within a second, leaving nothing behind).
const ROOT = path.resolve(import.meta.dirname, '..');
const t = tempDir('diskferry-progress-');
const MiB = 1 << 20;
let server: TestServer;

beforeAll(async () => {
  qemuImg('create', '-q', '-f', 'qcow2', t.file('small.qcow2'), '64M');
  qemuIo('-c', 'write -P 0x41 0 6M', '-c', 'write -P 0x42 30M 5M', t.file('small.qcow2'));
  // Big enough that a rate-limited conversion runs for seconds: 192 MiB of data.
  qemuImg('create', '-q', '-f', 'qcow2', t.file('big.qcow2'), '1G');
  qemuIo(...[0, 1, 2].flatMap((i) => ['-c', `write -P ${0x50 + i} ${i * 300}M 64M`]), t.file('big.qcow2'));
  server = await startServer(t.dir);
}, 120_000);
afterAll(async () => {
  await server?.close();
  t.cleanup();
});

interface Line {
  done: number;
  total: number;
  rate: number;
  phase: string;
}

function parseLines(stderr: string): Line[] {
  const lines = stderr.split('\n').filter((l) => l !== '');
  return lines.map((l) => JSON.parse(l) as Line);
}

describe('convert --progress=json', () => {
  for (const src of ['local', 'url'] as const) {
    it(`one JSON object per line on stderr, ending at 100 % (${src} source)`, async () => {
      const input = src === 'local' ? t.file('small.qcow2') : `${server.base}/small.qcow2`;
      const out = t.file(`progress-${src}.raw`);
      const r = await cli('convert', '--progress=json', '-O', 'raw', input, out);
      expect(r.code).toBe(0);
      // Nothing on stdout: not qemu-img's "    (NN.NN/100%)" text.
      expect(r.stdout).toBe('');
      const lines = parseLines(r.stderr);
      expect(lines.length).toBeGreaterThanOrEqual(2);
      for (const l of lines) {
        expect(Object.keys(l).sort()).toEqual(['done', 'phase', 'rate', 'total']);
        expect(Number.isInteger(l.done) && Number.isInteger(l.total) && l.rate >= 0).toBe(true);
        expect(l.total).toBe(11 * MiB);
        expect(l.done).toBeLessThanOrEqual(l.total);
      }
      for (let i = 1; i < lines.length; i++) expect(lines[i]!.done).toBeGreaterThanOrEqual(lines[i - 1]!.done);
      const last = lines[lines.length - 1]!;
      expect(last.phase).toBe('done');
      expect(last.done).toBe(last.total);
      expect(qemuCompare(t.file('small.qcow2'), out)).toBe(0);
    });
  }

  it('-p keeps printing qemu-img text on stdout', async () => {
    const r = await cli('convert', '-p', '-O', 'raw', t.file('small.qcow2'), t.file('p.raw'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('    (100.00/100%)\r');
    expect(r.stderr).toBe('');
  });

  it('the option table: --progress=json sets progressFormat, -p and --progress the flag', () => {
    const j = parseCommandLine(['convert', '--progress=json', 'a', 'b']);
    const p = parseCommandLine(['convert', '-p', 'a', 'b']);
    const l = parseCommandLine(['convert', '--progress', 'a', 'b']);
    expect(j.name === 'convert' && [j.opts.progress, j.opts.progressFormat]).toEqual([false, 'json']);
    expect(p.name === 'convert' && [p.opts.progress, p.opts.progressFormat]).toEqual([true, undefined]);
    expect(l).toEqual(p);
    // Other commands' -p takes no value.
    expect(() => parseCommandLine(['compare', '--progress=json', 'a', 'b'])).toThrow(/doesn't allow an argument/);
  });

  it('--progress takes json only', async () => {
    const r = await cli('convert', '--progress=xml', '-O', 'raw', t.file('small.qcow2'), t.file('x.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`diskferry convert: option '--progress' takes no value or =json, not "xml"\n`);
  });
});

describe('SIGTERM during convert', () => {
  for (const src of ['local', 'url'] as const) {
    it(`stops within a second and leaves nothing under the destination (${src} source)`, async () => {
      const outDir = t.file(`out-${src}`);
      mkdirSync(outDir);
      const input = src === 'local' ? t.file('big.qcow2') : `${server.base}/big.qcow2`;
      // -r slows the writes so that the signal surely lands in the middle.
      // One process, the TypeScript loader inside it (node --import tsx): the signal reaches the
      // CLI itself and its last stderr line reaches us. Through the tsx command (or npx) a parent
      // relays the signal and may exit with 143 before relaying the child's final line.
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'cli/bin.ts', 'convert', '--progress=json', '-r', '32M', '-O', 'qcow2', input, path.join(outDir, 'dst.qcow2')],
        {
          cwd: ROOT,
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('close', (code, signal) => resolve({ code, signal })),
      );
      let stderr = '';
      // Wait until the conversion is under way: a progress line with some bytes done.
      await new Promise<void>((resolve, reject) => {
        child.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
          const lines = stderr
            .split('\n')
            .slice(0, -1)
            .filter((l) => l.startsWith('{'));
          if (parseLines(lines.join('\n')).some((l) => l.done > 0 && l.done < l.total)) resolve();
        });
        void exited.then(() => reject(new Error(`exited before any progress: ${stderr}`)));
      });
      expect(readdirSync(outDir).length).toBeGreaterThan(0);
      const t0 = performance.now();
      child.kill('SIGTERM');
      const { code } = await exited;
      const ms = performance.now() - t0;
      expect(ms).toBeLessThan(1000);
      expect(code).toBe(143);
      expect(stderr).toContain('diskferry convert: operation cancelled');
      expect(readdirSync(outDir)).toEqual([]);
    }, 60_000);
  }
});
