import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StdoutSink } from '../cli/stdoutSink.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { findDriver, openImage } from '../src-core/image/open.ts';
import { MemorySource } from '../src-core/io/bytes.ts';
import { convert } from '../src-core/pipeline/convert.ts';
import { expectOneLineFailure } from './helpers/cli.ts';
import { qemuCompare, qemuImg, run, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// `-` as convert's source (standard input) and target (standard output), through real pipes:
// the CLI runs as shipped (the esbuild bundle) under sh, fed by `cat` and read by a redirect,
// `| cat` or a FIFO. Every output must pass qemu-img check (where it checks) and compare equal
// to the source; the stdout sink refuses any write behind its end, so a conversion that
// succeeds through it never sought.
const ROOT = path.resolve(import.meta.dirname, '..');
const t = tempDir('diskferry-stdio-');
const BIN = t.file('bin');
/** The CLI as one word for sh lines: a wrapper script around the bundle. */
const DF = t.file('diskferry');
const MiB = 1 << 20;
/** Not a whole number of clusters: the last, short cluster must survive every layout. */
const SIZE = 40 * MiB + 1536;
const RAW = t.file('disk.raw');

beforeAll(() => {
  run(process.execPath, [path.join(ROOT, 'scripts', 'build-cli.mjs'), BIN], { cwd: ROOT });
  writeFileSync(DF, `#!/bin/sh\nexec '${process.execPath}' '${path.join(BIN, 'diskferry.js')}' "$@"\n`, { mode: 0o755 });
  // Text, random and zero pages with holes between: compressible and incompressible clusters.
  standardRaw(RAW, SIZE, 17);
}, 120_000);
afterAll(() => t.cleanup());

/** Runs a shell line in the temporary folder; `$DF` is the CLI. */
function sh(line: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('sh', ['-c', line], { cwd: t.dir, encoding: 'utf8', env: { ...process.env, DF }, maxBuffer: 64 * MiB });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function shOk(line: string): string {
  const r = sh(line);
  if (r.status !== 0) throw new Error(`${line} exited ${r.status}: ${r.stderr}`);
  return r.stderr;
}

/** The bundled CLI as a child with piped stdio (stdin 'ignore': no stdin); `err()` is its stderr so far, `closed` its exit code. */
function spawnCli(args: string[], opts: { cwd?: string; stdin?: 'pipe' | 'ignore' } = {}) {
  const child = spawn(process.execPath, [path.join(BIN, 'diskferry.js'), ...args], {
    cwd: opts.cwd ?? t.dir,
    stdio: [opts.stdin ?? 'pipe', 'pipe', 'pipe'],
  }) as ChildProcessWithoutNullStreams;
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, err: () => err, closed };
}

/** qemu-img check's verdict: 0 clean. */
const qemuCheck = (fmt: string, file: string) => runStatus('qemu-img', ['check', '-f', fmt, file]).status;

interface Case {
  name: string;
  args: string;
  /** qemu-img's name for the output, and whether qemu-img can check it. */
  fmt: string;
  checks: boolean;
}

const CASES: Case[] = [
  { name: 'raw', args: '-O raw', fmt: 'raw', checks: false },
  { name: 'qcow2', args: '-O qcow2', fmt: 'qcow2', checks: true },
  { name: 'qcow2 -c', args: '-O qcow2 -c', fmt: 'qcow2', checks: true },
  {
    name: 'qcow2 -c zstd, 4 KiB clusters, 1-bit refcounts',
    args: '-O qcow2 -c -o compression_type=zstd,cluster_size=4k,refcount_bits=1',
    fmt: 'qcow2',
    checks: true,
  },
  { name: 'qcow2 compat=0.10, 2 MiB clusters', args: '-O qcow2 -o compat=0.10,cluster_size=2M', fmt: 'qcow2', checks: true },
  { name: 'qcow2 extended_l2', args: '-O qcow2 -o extended_l2=on', fmt: 'qcow2', checks: true },
  { name: 'stream VMDK', args: '-O vmdk -o subformat=streamOptimized', fmt: 'vmdk', checks: true },
  { name: 'fixed VHD', args: '-O vpc -o subformat=fixed', fmt: 'vpc', checks: false },
];

describe('convert - - (stdin to stdout)', () => {
  for (const c of CASES) {
    it(`cat disk.raw | diskferry convert -f raw ${c.args} - - > out (${c.name})`, () => {
      const out = `out-${CASES.indexOf(c)}.img`;
      shOk(`cat disk.raw | $DF convert -f raw ${c.args} - - > ${out}`);
      if (c.checks) expect(qemuCheck(c.fmt, t.file(out))).toBe(0);
      expect(qemuCompare(RAW, t.file(out), '-f', 'raw', '-F', c.fmt)).toBe(0);
    }, 60_000);
  }

  it('the raw output is the whole disk, zeros written out (a pipe has no holes)', () => {
    shOk('cat disk.raw | $DF convert -f raw -O raw - - | cat > whole.raw');
    expect(statSync(t.file('whole.raw')).size).toBe(SIZE);
    expect(readFileSync(t.file('whole.raw')).equals(readFileSync(RAW))).toBe(true);
  }, 60_000);

  it('raw to stdout from an image whose end is a hole: the full size, zeros to the last byte (also with -r)', () => {
    qemuImg('create', '-q', '-f', 'qcow2', t.file('head-only.qcow2'), '24M');
    run('qemu-io', ['-c', 'write -P 0x61 1M 2M', t.file('head-only.qcow2')]);
    for (const extra of ['', '-r 1G']) {
      shOk(`$DF convert ${extra} -O raw head-only.qcow2 - | cat > head-only.raw`);
      expect(statSync(t.file('head-only.raw')).size).toBe(24 * MiB);
      expect(qemuCompare(t.file('head-only.qcow2'), t.file('head-only.raw'), '-F', 'raw')).toBe(0);
    }
  }, 60_000);

  it('--target=gcp to stdout: the tarball holds disk.raw equal to the source, sized to a whole GiB', () => {
    const err = shOk('cat disk.raw | $DF convert --target=gcp -f raw - - > image.tar.gz');
    expect(err).toBe(''); // no warning about the name: a stream has none
    mkdirSync(t.file('gcp'));
    expect(run('tar', ['-tzf', t.file('image.tar.gz')]).trim()).toBe('disk.raw');
    run('tar', ['-xzf', t.file('image.tar.gz'), '-C', t.file('gcp')]);
    expect(statSync(t.file('gcp/disk.raw')).size).toBe(1024 * MiB);
    // The added space reads as zeros: compare in strict mode would fail, the default does not.
    expect(qemuCompare(RAW, t.file('gcp/disk.raw'), '-f', 'raw', '-F', 'raw')).toBe(0);
  }, 120_000);

  it('-O ova to stdout (two disks, through | cat): descriptor, manifest and disks in tar order, digests right, disks equal', () => {
    writeFileSync(t.file('small.raw'), Buffer.alloc(3 * MiB + 512, 0x5a));
    const err = shOk('cat disk.raw | $DF convert -O ova -f raw - small.raw - | cat > vm.ova');
    expect(err).toBe('');
    const members = run('tar', ['-tf', t.file('vm.ova')])
      .trim()
      .split('\n');
    expect(members).toEqual(['vm.ovf', 'vm.mf', 'vm-disk1.vmdk', 'vm-disk2.vmdk']);
    mkdirSync(t.file('ova'));
    run('tar', ['-xf', t.file('vm.ova'), '-C', t.file('ova')]);
    // sha256sum checks every line of the manifest against the extracted members.
    expect(spawnSync('sha256sum', ['-c', 'vm.mf'], { cwd: t.file('ova') }).status).toBe(0);
    expect(qemuCheck('vmdk', t.file('ova/vm-disk1.vmdk'))).toBe(0);
    expect(qemuCompare(RAW, t.file('ova/vm-disk1.vmdk'), '-f', 'raw', '-F', 'vmdk')).toBe(0);
    expect(qemuCompare(t.file('small.raw'), t.file('ova/vm-disk2.vmdk'), '-f', 'raw', '-F', 'vmdk')).toBe(0);
    // The descriptor carries the sizes the disks came out at.
    const ovf = readFileSync(t.file('ova/vm.ovf'), 'utf8');
    expect(ovf).toContain(`ovf:size="${statSync(t.file('ova/vm-disk2.vmdk')).size}"`);
  }, 120_000);

  it('through a FIFO: compressed qcow2 from a file to stdout, read by cat on the other end', () => {
    shOk('mkfifo pipe.fifo && { cat pipe.fifo > fifo.qcow2 & $DF convert -c -O qcow2 disk.raw - > pipe.fifo; wait; }');
    expect(qemuCheck('qcow2', t.file('fifo.qcow2'))).toBe(0);
    expect(qemuCompare(RAW, t.file('fifo.qcow2'), '-f', 'raw', '-F', 'qcow2')).toBe(0);
  }, 60_000);

  it('qcow2 to stdout from a raw disk in a .gz (read twice, so unpacked rather than streamed)', () => {
    shOk('gzip -c disk.raw > disk.raw.gz && $DF convert -c -O qcow2 disk.raw.gz - > from-gz.qcow2');
    expect(qemuCheck('qcow2', t.file('from-gz.qcow2'))).toBe(0);
    expect(qemuCompare(RAW, t.file('from-gz.qcow2'), '-f', 'raw', '-F', 'qcow2')).toBe(0);
  }, 60_000);

  it('-p prints on stderr, the image alone is on stdout', () => {
    const err = shOk('$DF convert -p -O qcow2 disk.raw - > progress.qcow2');
    expect(err).toContain('(100.00/100%)');
    expect(readFileSync(t.file('progress.qcow2')).subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
    expect(qemuCompare(RAW, t.file('progress.qcow2'), '-f', 'raw', '-F', 'qcow2')).toBe(0);
  }, 60_000);

  it('--progress=json counts both qcow2 passes as one and ends at done = total', () => {
    const err = shOk('$DF convert --progress=json -c -O qcow2 disk.raw - > json.qcow2');
    const lines = err
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { done: number; total: number; phase: string });
    const last = lines[lines.length - 1]!;
    expect(last.phase).toBe('done');
    expect(last.done).toBe(last.total);
    for (let i = 1; i < lines.length; i++) expect(lines[i]!.done).toBeGreaterThanOrEqual(lines[i - 1]!.done);
    expect(lines.filter((l) => l.phase === 'done')).toHaveLength(1);
  }, 60_000);

  it('SIGTERM while the reader has stopped reading (a full pipe): exits within a second, 143', async () => {
    const { child, err, closed } = spawnCli(['convert', '-O', 'raw', RAW, '-'], { stdin: 'ignore' });
    // Take the first bytes, then read no more: the pipe fills and the CLI's writes wait.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.pause();
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    child.kill('SIGTERM');
    expect(await closed, err()).toBe(143);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(err()).toContain('operation cancelled');
  }, 60_000);

  it('a reader that goes away (EPIPE) fails the conversion with one line, exit 1', async () => {
    const { child, err, closed } = spawnCli(['convert', '-O', 'raw', RAW, '-']);
    child.stdout.once('data', () => child.stdout.destroy());
    expect(await closed).toBe(1);
    expect(err().trim().split('\n')).toHaveLength(1);
    expect(err()).toMatch(/stdout: the reader closed the pipe/);
  }, 60_000);
});

describe('convert - (standard input as the source)', () => {
  it('a qcow2 made by qemu-img, through a pipe, leaving no scratch file behind', () => {
    qemuImg('convert', '-c', '-O', 'qcow2', RAW, t.file('in.qcow2'));
    mkdirSync(t.file('from-stdin'));
    shOk('cat in.qcow2 | $DF convert -O raw - from-stdin/out.raw');
    expect(readdirSync(t.file('from-stdin'))).toEqual(['out.raw']);
    expect(qemuCompare(RAW, t.file('from-stdin/out.raw'), '-f', 'raw', '-F', 'raw')).toBe(0);
  }, 60_000);

  it('a stream VMDK made by qemu-img, through a pipe, to a stream VMDK on stdout', () => {
    qemuImg('convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', RAW, t.file('in.vmdk'));
    shOk('cat in.vmdk | $DF convert -O vmdk -c - - | cat > restream.vmdk');
    expect(qemuCheck('vmdk', t.file('restream.vmdk'))).toBe(0);
    expect(qemuCompare(RAW, t.file('restream.vmdk'), '-f', 'raw', '-F', 'vmdk')).toBe(0);
  }, 60_000);

  it('a stream VMDK on a pipe is read as it arrives: output leaves before the input has ended', async () => {
    const vmdk = readFileSync(t.file('in.vmdk'));
    const { child, err, closed } = spawnCli(['convert', '-O', 'raw', '-', '-']);
    const out: Buffer[] = [];
    const firstOutput = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.on('data', (d: Buffer) => out.push(d));
    // Half the file, then wait: a copy to a scratch file would print nothing until the end.
    child.stdin.write(vmdk.subarray(0, vmdk.length >> 1));
    const early = await Promise.race([firstOutput.then(() => true), closed.then(() => false)]);
    expect(early, err()).toBe(true);
    child.stdin.end(vmdk.subarray(vmdk.length >> 1));
    expect(await closed, err()).toBe(0);
    expect(Buffer.concat(out).equals(readFileSync(RAW))).toBe(true);
  }, 60_000);

  it('SIGTERM while stdin is being copied: exits at once (143) and removes the scratch copy', async () => {
    const dir = t.file('sigterm');
    mkdirSync(dir);
    const { child, err, closed } = spawnCli(['convert', '-f', 'raw', '-O', 'raw', '-', 'out.raw'], { cwd: dir });
    child.stdin.on('error', () => {}); // the CLI stops reading: what was still to go gets EPIPE
    // Some data and then silence: the copy waits for more that never comes.
    child.stdin.write(readFileSync(RAW).subarray(0, 4 * MiB));
    for (let i = 0; i < 100 && !readdirSync(dir).some((f) => f.includes('unpack')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(dir).some((f) => f.includes('unpack'))).toBe(true);
    const t0 = performance.now();
    child.kill('SIGTERM');
    expect(await closed).toBe(143);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(err()).toContain('operation cancelled');
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);

  it('a file redirected to stdin (< in.vmdk) converts too', () => {
    shOk('$DF convert -O qcow2 - redirected.qcow2 < in.vmdk');
    expect(qemuCompare(RAW, t.file('redirected.qcow2'), '-f', 'raw', '-F', 'qcow2')).toBe(0);
  });

  it('info - reads a piped image (through a scratch copy), as qemu-img info reads the file', () => {
    shOk('cat in.qcow2 | $DF info --output=json - > info.json');
    const ours = JSON.parse(readFileSync(t.file('info.json'), 'utf8')) as Record<string, unknown>;
    const theirs = JSON.parse(qemuImg('info', '--output=json', t.file('in.qcow2'))) as Record<string, unknown>;
    expect(ours['virtual-size']).toBe(theirs['virtual-size']);
    expect(ours.format).toBe('qcow2');
    expect(ours['cluster-size']).toBe(theirs['cluster-size']);
  });

  it('an empty pipe is an empty disk: one line, exit 1', () => {
    const r = sh('printf "" | $DF convert -f raw -O raw - empty.raw');
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/empty/);
  });
});

describe('refusals', () => {
  it('a format that is not written front to back: one line naming it and the ones that are', async () => {
    await expectOneLineFailure(
      ['convert', '-O', 'vhdx', RAW, '-'],
      /vhdx cannot be written to "-".*raw, qcow2, vmdk.*vpc \(subformat=fixed\)/,
    );
    await expectOneLineFailure(['convert', '-O', 'vpc', RAW, '-'], /vpc \(subformat=dynamic\)|vpc cannot be written to "-"/);
    await expectOneLineFailure(['convert', '-O', 'vmdk', RAW, '-'], /vmdk cannot be written to "-"/);
    await expectOneLineFailure(['convert', '-O', 'vdi', RAW, '-'], /vdi cannot be written to "-"/);
    // -O ovf writes several files side by side; -O ova goes (in two passes).
    await expectOneLineFailure(['convert', '-O', 'ovf', RAW, '-'], /ovf cannot be written to "-"/);
  });

  it('-n, --verify, -b and an encrypted qcow2 to stdout are refused with one line', async () => {
    await expectOneLineFailure(['convert', '-n', '-O', 'raw', RAW, '-'], /standard output/);
    await expectOneLineFailure(['convert', '--verify', '-O', 'qcow2', RAW, '-'], /cannot be read back/);
    await expectOneLineFailure(['convert', '-O', 'qcow2', '-b', RAW, '-F', 'raw', RAW, '-'], /backing file.*front to back/);
    await expectOneLineFailure(
      ['convert', '--object', 'secret,id=s,data=pw', '-O', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=s', RAW, '-'],
      /encrypted qcow2 cannot be written front to back/,
    );
  });

  it('stdin named twice is refused', async () => {
    await expectOneLineFailure(['convert', '-O', 'raw', '-', '-', t.file('twice.raw')], /read only once/);
  });
});

/** A Writable that keeps what it is given. */
function collector(): { stream: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk));
      cb();
    },
  });
  return { stream, bytes: () => Buffer.concat(parts) };
}

describe('the stdout sink', () => {
  it('writes forward, fills gaps with zeros, refuses to go back, and offers no truncate', async () => {
    const c = collector();
    const sink = new StdoutSink(c.stream);
    await sink.write(0, new Uint8Array([1, 2]));
    await sink.write(5, new Uint8Array([3]));
    await expect(sink.write(4, new Uint8Array([9]))).rejects.toThrow(/would go back/);
    await expect(sink.write(5, new Uint8Array([9]))).rejects.toThrow(/would go back/);
    await sink.write(7, new Uint8Array([4]));
    await sink.close();
    expect([...c.bytes()]).toEqual([1, 2, 0, 0, 0, 3, 0, 4]);
    expect('truncate' in sink).toBe(false);
  });

  it('catches a writer that seeks: the ordinary qcow2 writer (tables last, at the front) fails on it', async () => {
    const disk = new Uint8Array(4 * MiB).fill(7);
    const source = await openImage(new MemorySource(disk, 'disk.raw'), drivers, { format: 'raw', codecs: nodeCodecs });
    const sink = new StdoutSink(new PassThrough().resume());
    await expect(
      convert({ source, target: findDriver(drivers, 'qcow2'), sink, create: { options: {}, codecs: nodeCodecs, filename: 'x.qcow2' } }),
    ).rejects.toThrow(/would go back/);
  });
});
