import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { qemuCompare, qemuImg, run, runStatus, standardRaw, tempDir, writePatternedRaw } from './helpers/sys.ts';
import { MemorySource } from '../src-core/io/bytes.ts';
import { readStructure } from '../src-core/formats/vhdx/reader.ts';
import { entryState, payloadIndex } from '../src-core/formats/vhdx/bat.ts';

// Images we write must satisfy qemu-img (compare, check, virtual size) and libvhdi (vhdiinfo, pyvhdi reads).
const t = tempDir('diskferry-vhdxw-');
const src = t.file('src.raw');
const SIZE = 29 * 1024 * 1024 + 1536; // not a block or MiB multiple

const CASES: [string, string[]][] = [
  ['dynamic', []],
  ['fixed', ['-o', 'subformat=fixed']],
  ['block-1M', ['-o', 'block_size=1M']],
  ['block-2M-log-3M', ['-o', 'block_size=2M,log_size=3M']],
  ['fixed-1M', ['-o', 'subformat=fixed,block_size=1M']],
  ['zero-state', ['-o', 'block_state_zero=on']],
];

/** Reads the whole disk through python3-libvhdi and compares it with a raw file: an independent reader. */
function pyvhdiMatches(image: string, raw: string): string {
  const py = `
import pyvhdi, sys
f = pyvhdi.file(); f.open(sys.argv[1])
size = f.get_media_size()
r = open(sys.argv[2], 'rb')
off = 0
while off < size:
    n = min(4 << 20, size - off)
    a = f.read_buffer_at_offset(n, off); b = r.read(n)
    if a != b: print('differs near', off); sys.exit(1)
    off += n
print('ok', size)
`;
  return run('/usr/bin/python3', ['-c', py, image, raw]).trim();
}

beforeAll(() => standardRaw(src, SIZE, 5));
afterAll(() => t.cleanup());

describe('VHDX images we write', () => {
  it.each(CASES)('%s: qemu-img compare, check and size; vhdiinfo and pyvhdi read it', async (name, args) => {
    const out = t.file(`${name}.vhdx`);
    const r = await cli('convert', '-O', 'vhdx', ...args, src, out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(qemuCompare(src, out, '-f', 'raw', '-F', 'vhdx')).toBe(0);
    expect(runStatus('qemu-img', ['check', '-f', 'vhdx', out]).status).toBe(0);
    const info = JSON.parse(qemuImg('info', '--output=json', out));
    expect(info.format).toBe('vhdx');
    expect(info['virtual-size']).toBe(SIZE);
    const vi = run('vhdiinfo', [out]);
    expect(vi).toMatch(/VHDX/);
    expect(vi).toContain(`(${SIZE} bytes)`);
    expect(vi).toMatch(args.join(' ').includes('fixed') ? /Disk type\s*: Fixed/ : /Disk type\s*: Dynamic/);
    expect(pyvhdiMatches(out, src)).toBe(`ok ${SIZE}`);
    // And we read back what we wrote, the way qemu-img reads it, and describe it as qemu-img does.
    await expectSameExport(out, t.file, `${name}-back`);
    await expectInfoMatches(out);
  });

  it('fixed means fixed: every payload block FULLY_PRESENT, in order, and the file holds them all', async () => {
    const out = t.file('fixed-1M.vhdx');
    const bytes = readFileSync(out);
    const s = await readStructure(new MemorySource(bytes, out), {});
    expect(s.metadata.leaveBlocksAllocated).toBe(true);
    const g = s.geometry;
    expect(g.payloadBlocks).toBe(30);
    let prev = 0;
    for (let b = 0; b < g.payloadBlocks; b++) {
      const e = s.bat[payloadIndex(g, b)]!;
      expect(entryState(e)).toBe(6);
      const off = Number(e >> 20n) * 2 ** 20;
      expect(off).toBeGreaterThan(prev);
      prev = off;
    }
    expect(statSync(out).size).toBeGreaterThanOrEqual(prev + 2 ** 20);
  });

  it('dynamic stays sparse: all-zero blocks are not allocated', async () => {
    const sparse = t.file('sparse.raw');
    // 64 MiB with data in only two places.
    writePatternedRaw(
      sparse,
      64 << 20,
      [
        { offset: 1 << 20, length: 4096 },
        { offset: 50 << 20, length: 100000 },
      ],
      3,
    );
    const out = t.file('sparse.vhdx');
    expect((await cli('convert', '-O', 'vhdx', '-o', 'block_size=1M', sparse, out)).code).toBe(0);
    expect(qemuCompare(sparse, out, '-f', 'raw', '-F', 'vhdx')).toBe(0);
    const s = await readStructure(new MemorySource(readFileSync(out), out), {});
    const present = Array.from({ length: s.geometry.payloadBlocks }, (_, b) => entryState(s.bat[payloadIndex(s.geometry, b)]!)).filter(
      (x) => x === 6,
    );
    expect(present).toHaveLength(2);
  });

  it('from a qcow2 source with a size that is not a MiB multiple, and through vhdx again', async () => {
    const q = t.file('src.qcow2');
    qemuImg('convert', '-O', 'qcow2', src, q);
    const a = t.file('from-qcow2.vhdx');
    expect((await cli('convert', '-O', 'vhdx', q, a)).code).toBe(0);
    expect(qemuCompare(q, a)).toBe(0);
    const b = t.file('again.vhdx');
    expect((await cli('convert', '-O', 'vhdx', '-o', 'subformat=fixed', a, b)).code).toBe(0);
    expect(qemuCompare(src, b, '-f', 'raw', '-F', 'vhdx')).toBe(0);
    expect(runStatus('qemu-img', ['check', b]).status).toBe(0);
  });

  it('measure predicts the files we write (qemu-img 7.2 cannot measure vhdx)', async () => {
    const q = t.file('m.qcow2');
    qemuImg('convert', '-O', 'qcow2', src, q);
    for (const [name, opts] of [
      ['m-dyn', 'block_size=1M'],
      ['m-fixed', 'subformat=fixed'],
      ['m-dyn8', ''],
    ] as const) {
      const out = t.file(`${name}.vhdx`);
      const o = opts ? ['-o', opts] : [];
      expect((await cli('convert', '-O', 'vhdx', ...o, q, out)).code).toBe(0);
      const m = JSON.parse((await cli('measure', '--output=json', '-O', 'vhdx', ...o, q)).stdout);
      expect(m.required).toBe(statSync(out).size);
      if (name === 'm-fixed') expect(m['fully-allocated']).toBe(statSync(out).size);
      else if (name === 'm-dyn') expect(m['fully-allocated']).toBeGreaterThan(m.required);
      else expect(m['fully-allocated']).toBeGreaterThanOrEqual(m.required);
    }
  });

  it('refuses bad options with one line', async () => {
    for (const o of ['block_size=3M', 'subformat=weird', 'cluster_size=64k']) {
      const r = await cli('convert', '-O', 'vhdx', '-o', o, src, t.file('bad.vhdx'));
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
