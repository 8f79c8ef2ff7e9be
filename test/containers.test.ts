import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuCompare, qemuImg, run, standardRaw, tempDir, writePatternedRaw } from './helpers/sys.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { detectContainer, StreamingSource, unwrapContainer, type ScratchFactory } from '../src-core/image/containers/index.ts';
import { MemorySource } from '../src-core/io/bytes.ts';

// Compressed containers as input: every container the usual tools write, around raw, qcow2 and
// vmdk images, converts to the bytes of the image it holds; raw streams without a scratch file.
const t = tempDir();
const ROOT = path.resolve(import.meta.dirname, '..');
const SIZE = 9 * 1024 * 1024 + 4096;

/** Each container, made by its own tool from `file`; returns the container's path. */
const PACK: Record<string, (file: string) => string> = {
  gz: (f) => (run('gzip', ['-kf', f]), `${f}.gz`),
  xz: (f) => (run('xz', ['-kf', '-T1', '-3', f]), `${f}.xz`),
  'xz-blocks': (f) => (run('xz', ['-kf', '-T1', '--block-size=1MiB', '-S', '.b.xz', f]), `${f}.b.xz`),
  zst: (f) => (run('zstd', ['-qkf', f]), `${f}.zst`),
  'zst-nosize': (f) => (
    writeFileSync(`${f}.n.zst`, spawnSync('sh', ['-c', `cat "${f}" | zstd -q -c`], { maxBuffer: 1 << 30 }).stdout),
    `${f}.n.zst`
  ),
  bz2: (f) => (run('bzip2', ['-kf', f]), `${f}.bz2`),
  // Two members, frames or streams back to back (pigz, zstd -T, xz of split input, cat a b).
  'gz-members': (f) => concatHalves(f, 'gzip', '.m.gz'),
  'zst-frames': (f) => concatHalves(f, 'zstd', '.m.zst'),
  'xz-streams': (f) => concatHalves(f, 'xz', '.m.xz'),
  zip: (f) => (run('zip', ['-qj', `${f}.zip`, f]), `${f}.zip`),
  'zip-stored': (f) => (run('zip', ['-qj0', `${f}.0.zip`, f]), `${f}.0.zip`),
  // Zip64 records (-fz), and a member zip streamed from stdin (data descriptor, named "-").
  zip64: (f) => (run('zip', ['-qj', '-fz', `${f}.64.zip`, f]), `${f}.64.zip`),
  'zip-stdin': (f) => (spawnSync('sh', ['-c', `cat "${f}" | zip -q "${f}.s.zip" -`]), `${f}.s.zip`),
};
function concatHalves(f: string, tool: string, suffix: string): string {
  const b = readFileSync(f);
  const half = Math.floor(b.length / 2);
  const pack = (part: Uint8Array) => spawnSync(tool, ['-c', '-q'], { input: part, maxBuffer: 1 << 30 }).stdout as Buffer;
  writeFileSync(`${f}${suffix}`, Buffer.concat([pack(b.subarray(0, half)), pack(b.subarray(half))]));
  return `${f}${suffix}`;
}

const INNER: [string, string[]][] = [
  ['raw', []],
  ['qcow2', ['-O', 'qcow2']],
  ['vmdk', ['-O', 'vmdk']],
];

beforeAll(() => {
  standardRaw(t.file('disk.raw'), SIZE, 31);
  qemuImg('convert', '-f', 'raw', '-O', 'qcow2', t.file('disk.raw'), t.file('disk.qcow2'));
  qemuImg('convert', '-f', 'raw', '-O', 'vmdk', t.file('disk.raw'), t.file('disk.vmdk'));
});
afterAll(() => t.cleanup());

const noScratchLeft = () => expect(readdirSync(t.dir).filter((n) => n.includes('diskferry-unpack'))).toEqual([]);

describe('every container around raw, qcow2 and vmdk converts to the bytes of the image inside', () => {
  const cases = Object.keys(PACK).flatMap((c) => INNER.map(([inner]) => [c, inner] as const));
  it.each(cases)('%s holding %s', async (kind, inner) => {
    const packed = PACK[kind]!(t.file(`disk.${inner}`));
    const out = t.file(`out-${kind}-${inner}.raw`);
    await cliOk('convert', '-O', 'raw', packed, out);
    run('cmp', [out, t.file('disk.raw')]);
    const info = JSON.parse(await cliOk('info', '--output=json', packed));
    expect(info.format).toBe(inner);
    expect(info['virtual-size']).toBe(SIZE);
    // And into another format: qemu-img finds the same disk.
    const q = t.file(`out-${kind}-${inner}.qcow2`);
    await cliOk('convert', '-O', 'qcow2', packed, q);
    expect(qemuCompare(q, t.file('disk.raw'))).toBe(0);
    noScratchLeft();
  });
});

describe('container API (src-core)', () => {
  it('detectContainer knows each magic and nothing else', () => {
    const b = (...x: number[]) => new Uint8Array([...x, ...new Array(16).fill(0)]);
    expect(detectContainer(b(0x1f, 0x8b, 8))).toBe('gzip');
    expect(detectContainer(b(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0))).toBe('xz');
    expect(detectContainer(b(0x28, 0xb5, 0x2f, 0xfd))).toBe('zstd');
    expect(detectContainer(b(0x5e, 0x2a, 0x4d, 0x18))).toBe('zstd');
    expect(detectContainer(b(0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59))).toBe('bzip2');
    expect(detectContainer(b(0x50, 0x4b, 3, 4))).toBe('zip');
    expect(detectContainer(b(0x42, 0x5a, 0x68, 0x39, 1, 2, 3, 4, 5, 6))).toBeUndefined();
    expect(detectContainer(b(0x1f, 0x8b, 7))).toBeUndefined();
    expect(detectContainer(new TextEncoder().encode('QFI\xfb'))).toBeUndefined();
    expect(detectContainer(new Uint8Array(0))).toBeUndefined();
  });

  const counting = () => {
    const used = { n: 0 };
    const factory: ScratchFactory = async () => {
      used.n++;
      const parts = new Map<number, Uint8Array>();
      let size = 0;
      return {
        write: async (o, d) => void parts.set(o, d.slice()),
        finish: async (s, name) => {
          size = s;
          const all = new Uint8Array(size);
          for (const [o, d] of parts) all.set(d, o);
          return new MemorySource(all, name);
        },
        discard: async () => {},
      };
    };
    return { used, factory };
  };

  it('a raw image streams (no scratch, progress reported); a qcow2 is unpacked to scratch', async () => {
    const xzRaw = new Uint8Array(readFileSync(PACK.xz!(t.file('disk.raw'))));
    const { used, factory } = counting();
    const phases = new Set<string>();
    const src = await unwrapContainer(new MemorySource(xzRaw, 'disk.raw.xz'), {
      drivers,
      scratch: factory,
      onProgress: (p) => phases.add(p.phase),
    });
    expect(src).toBeInstanceOf(StreamingSource);
    expect(src.size).toBe(SIZE);
    const want = readFileSync(t.file('disk.raw'));
    for (let o = 0; o < SIZE; o += 1 << 20) expect(Buffer.compare(await src.read(o, 1 << 20), want.subarray(o, o + (1 << 20)))).toBe(0);
    await expect(src.read(0, 1 << 20).then(() => src.read(4096 * 1024, 10))).rejects.toThrow(/read as a stream, front to back/);
    expect(used.n).toBe(0);
    expect([...phases].sort()).toEqual(['measure', 'stream']);
    // An xz of several blocks (or a stored zip) gives its tail without the measuring pass.
    phases.clear();
    const blocks = await unwrapContainer(
      new MemorySource(new Uint8Array(readFileSync(PACK['xz-blocks']!(t.file('disk.raw')))), 'disk.raw.b.xz'),
      { drivers, scratch: factory, onProgress: (p) => phases.add(p.phase) },
    );
    expect(blocks).toBeInstanceOf(StreamingSource);
    for (let o = 0; o < SIZE; o += 1 << 20) expect(Buffer.compare(await blocks.read(o, 1 << 20), want.subarray(o, o + (1 << 20)))).toBe(0);
    expect([...phases]).toEqual(['stream']);
    const q = await unwrapContainer(new MemorySource(new Uint8Array(readFileSync(PACK.zst!(t.file('disk.qcow2')))), 'disk.qcow2.zst'), {
      drivers,
      scratch: factory,
    });
    expect(used.n).toBe(1);
    expect(Buffer.compare(await q.read(0, 4), Buffer.from('QFI\xfb', 'latin1'))).toBe(0);
    // Not a container: the same source back.
    const plain = new MemorySource(new Uint8Array(100));
    expect(await unwrapContainer(plain, { drivers })).toBe(plain);
  });

  it('cancellation stops an unpack with a typed error', async () => {
    const ac = new AbortController();
    const xzQcow = new Uint8Array(readFileSync(PACK.xz!(t.file('disk.qcow2'))));
    ac.abort();
    await expect(
      unwrapContainer(new MemorySource(xzQcow, 'disk.qcow2.xz'), { drivers, scratch: counting().factory, signal: ac.signal }),
    ).rejects.toThrow(/cancelled/);
  });
});

describe('what a container holds is probed whole, and damage is reported', () => {
  it.each(['gz', 'xz-blocks', 'zip-stored'])('a fixed VHD (footer at the end only) inside %s is read as vpc, not raw', async (kind) => {
    const vhd = t.file('fixed.vhd');
    qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size=on', t.file('disk.raw'), vhd);
    const packed = PACK[kind]!(vhd);
    expect(JSON.parse(await cliOk('info', '--output=json', packed)).format).toBe(
      JSON.parse(await cliOk('info', '--output=json', vhd)).format,
    );
    await cliOk('convert', '-O', 'raw', packed, t.file('fixed.out'));
    await cliOk('convert', '-O', 'raw', vhd, t.file('fixed.ref'));
    run('cmp', [t.file('fixed.out'), t.file('fixed.ref')]);
  });

  it('a qed image inside a .zst is read as qed, not taken as raw', async () => {
    qemuImg('create', '-f', 'qed', t.file('x.qed'), '4M');
    const r = await cli('info', '--output=json', PACK.zst!(t.file('x.qed')));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).format).toBe('qed');
  });

  it('truncated and damaged containers give one-line typed errors and leave no scratch file', async () => {
    for (const kind of Object.keys(PACK)) {
      for (const inner of ['raw', 'qcow2']) {
        const packed = PACK[kind]!(t.file(`disk.${inner}`));
        const b = readFileSync(packed);
        const bad = t.file(`bad-${kind}-${inner}${path.extname(packed)}`);
        writeFileSync(bad, b.subarray(0, Math.floor(b.length * 0.6)));
        const r = await cli('convert', '-O', 'raw', bad, t.file('bad.raw'));
        expect(r.code, `${kind}/${inner}: ${r.stdout}`).toBe(1);
        expect(r.stderr.trim().split('\n'), `${kind}/${inner}: ${r.stderr}`).toHaveLength(1);
        expect(r.stderr, `${kind}/${inner}`).toMatch(/truncated|cannot be unpacked|ends|end of central directory|past the end/);
      }
    }
    noScratchLeft();
  });

  it('a zip of two files is refused, naming them', async () => {
    run('zip', ['-qj', t.file('two.zip'), t.file('disk.raw'), t.file('disk.qcow2')]);
    const r = await cli('info', t.file('two.zip'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/zip holds 2 files \(disk.raw, disk.qcow2\)/);
  });

  it('-f raw takes the container bytes as they are, as qemu-img does', async () => {
    const info = JSON.parse(await cliOk('info', '--output=json', '-f', 'raw', PACK.gz!(t.file('disk.raw'))));
    expect(info['virtual-size']).toBe(Math.ceil(readFileSync(`${t.file('disk.raw')}.gz`).length / 512) * 512);
  });
});

describe('memory stays flat', () => {
  it('a 2 GiB mostly-zero raw in a .xz converts to qcow2 with peak RSS under 400 MB', async () => {
    const big = t.file('big.raw');
    const size = 2 * 1024 * 1024 * 1024;
    writePatternedRaw(
      big,
      size,
      [
        { offset: 0, length: 3 << 20 },
        { offset: 1 << 30, length: 2 << 20 },
        { offset: size - (1 << 20), length: 1 << 20 },
      ],
      5,
    );
    run('xz', ['-kf', '-T2', '-0', big]);
    const dst = t.file('big.qcow2');
    const r = spawnSync(
      '/usr/bin/time',
      ['-f', 'maxrss=%M', process.execPath, '--import', 'tsx', path.join(ROOT, 'cli/main.ts'), 'convert', '-O', 'qcow2', `${big}.xz`, dst],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const kb = Number(/maxrss=(\d+)/.exec(r.stderr)?.[1]);
    expect(kb).toBeGreaterThan(0);
    expect(kb / 1024).toBeLessThan(400);
    expect(qemuCompare(dst, big)).toBe(0);
    noScratchLeft();
  }, 300_000);
});
