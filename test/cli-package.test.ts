import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuCompare, qemuImg, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// The package as a user gets it: `npm pack`, installed globally into an empty prefix (no
// checkout, no node_modules beside it), and the installed `diskferry` command run against
// qemu-img on the same qemu-img-made fixtures.
const ROOT = path.resolve(import.meta.dirname, '..');
const t = tempDir('diskferry-pkg-');
const prefix = t.file('prefix');
const work = t.file('work');
const bin = path.join(prefix, 'bin', 'diskferry');
const raw = path.join(work, 'src.raw');
const qcow = path.join(work, 'src.qcow2');

function df(...args: string[]) {
  const r = spawnSync(bin, args, { cwd: work, encoding: 'utf8', env: { ...process.env, NODE_PATH: '' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  mkdirSync(work);
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', t.dir], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tgz = path.join(t.dir, out.trim().split('\n').pop()!);
  execFileSync('npm', ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tgz], {
    cwd: t.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  standardRaw(raw, 24 << 20, 5);
  qemuImg('convert', '-O', 'qcow2', raw, qcow);
}, 300_000);
afterAll(() => t.cleanup());

describe('npm package', () => {
  it('installs a self-contained `diskferry` command: no dependencies, no sources', () => {
    const pkgDir = path.join(prefix, 'lib', 'node_modules', 'diskferry');
    expect(existsSync(bin)).toBe(true);
    expect(existsSync(path.join(pkgDir, 'node_modules'))).toBe(false);
    const files = readdirSync(path.join(pkgDir, 'dist', 'cli'));
    expect(files).toEqual(expect.arrayContaining(['diskferry.js', 'deflateWorker.js', 'index.js', 'deflate.wasm', 'zstd.wasm']));
    expect(existsSync(path.join(pkgDir, 'cli'))).toBe(false);
    expect(existsSync(path.join(pkgDir, 'src-core'))).toBe(false);
    const r = df('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^diskferry version \d+\.\d+\.\d+/);
  });

  it('ships the native lseek and finds the holes of a sparse raw file as qemu-img does', () => {
    const pkgDir = path.join(prefix, 'lib', 'node_modules', 'diskferry');
    expect(readdirSync(path.join(pkgDir, 'dist', 'cli'))).toContain(`holes-${process.platform}-${process.arch}.node`);
    const sparse = path.join(work, 'sparse.raw');
    execFileSync('truncate', ['-s', '64M', sparse]);
    execFileSync('dd', ['if=' + raw, 'of=' + sparse, 'bs=1M', 'count=2', 'seek=20', 'conv=notrunc', 'status=none']);
    const r = df('map', '--output=json', '-f', 'raw', 'sparse.raw');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(qemuImg('map', '--output=json', '-f', 'raw', sparse));
  });

  it("info --output=json gives qemu-img's fields", () => {
    const r = df('info', '--output=json', 'src.qcow2');
    expect(r.code).toBe(0);
    const ours = JSON.parse(r.stdout);
    const theirs = JSON.parse(qemuImg('info', '--output=json', qcow));
    for (const k of ['virtual-size', 'format', 'cluster-size', 'format-specific', 'dirty-flag']) expect(ours[k], k).toEqual(theirs[k]);
  });

  it('convert -c -O qcow2 (the worker pool and deflate.wasm from the bundle) reads back equal and qemu-img check is clean', () => {
    const r = df('convert', '-c', '-O', 'qcow2', 'src.raw', 'c.qcow2');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(qemuCompare(raw, path.join(work, 'c.qcow2'))).toBe(0);
    expect(runStatus('qemu-img', ['check', path.join(work, 'c.qcow2')]).status).toBe(0);
    const info = JSON.parse(qemuImg('info', '--output=json', path.join(work, 'c.qcow2')));
    expect(info.format).toBe('qcow2');
    // zstd clusters too: the zstd wasm is found beside the bundle.
    const z = df('convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', 'src.raw', 'z.qcow2');
    expect(z.code, z.stderr).toBe(0);
    expect(qemuCompare(raw, path.join(work, 'z.qcow2'))).toBe(0);
  });

  it('check: the same exit code and JSON as qemu-img check, clean and leaky', () => {
    const clean = df('check', '--output=json', 'src.qcow2');
    const q = runStatus('qemu-img', ['check', '--output=json', qcow]);
    expect(clean.code).toBe(q.status);
    const { filename: _a, ...ours } = JSON.parse(clean.stdout);
    const { filename: _b, ...theirs } = JSON.parse(q.stdout);
    expect(ours).toEqual(theirs);
    const missing = df('check', 'nope.qcow2');
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('the library entry: `import { openImage, convert } from "diskferry"` runs and type-checks', () => {
    const app = t.file('app');
    mkdirSync(path.join(app, 'node_modules'), { recursive: true });
    symlinkSync(path.join(prefix, 'lib', 'node_modules', 'diskferry'), path.join(app, 'node_modules', 'diskferry'));
    writeFileSync(path.join(app, 'package.json'), '{"type":"module"}');
    const code = `import { openImage, convert, type ImageInfo } from 'diskferry';
const disk = await openImage(${JSON.stringify(qcow)});
const info: ImageInfo = disk.info();
await disk.close();
const r = await convert({ source: ${JSON.stringify(qcow)}, output: ${JSON.stringify(path.join(work, 'lib.vmdk'))}, format: 'vmdk' });
console.log(JSON.stringify({ format: info.format, size: info['virtual-size'], written: r.virtualSize }));
`;
    writeFileSync(path.join(app, 'main.ts'), code);
    writeFileSync(path.join(app, 'main.mjs'), code.replace(', type ImageInfo', '').replace(': ImageInfo', ''));
    const run = spawnSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ format: 'qcow2', size: 24 << 20, written: 24 << 20 });
    expect(qemuCompare(raw, path.join(work, 'lib.vmdk'))).toBe(0);
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: [] },
        files: ['main.ts'],
      }),
    );
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });
});
