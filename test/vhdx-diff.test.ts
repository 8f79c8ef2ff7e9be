import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { MemorySource } from '../src-core/io/bytes.ts';
import { readStructure } from '../src-core/formats/vhdx/reader.ts';
import { bitmapIndex, entryState, payloadIndex } from '../src-core/formats/vhdx/bat.ts';
import { qemuImg, qemuIo, run, standardRaw, tempDir } from './helpers/sys.ts';
import { expectedChild, makeDifferencing, type ChildBlock } from './helpers/vhdxDiff.ts';

// Differencing VHDX: qemu-img cannot read them (ENOTSUP), so the oracles are the bytes the test
// put there and python3-libvhdi reading the child with its parent set.
const t = tempDir('diskferry-vhdxdiff-');
const MiB = 1 << 20;
const SIZE = 24 * MiB;
const parentRaw = t.file('parent.raw');
const parent = t.file('parent.vhdx');

const BLOCKS: ChildBlock[] = [
  { block: 2, state: 'full', fill: 0xa2 },
  {
    block: 5,
    state: 'partial',
    fill: 0xa5,
    sectors: [
      [0, 8],
      [100, 300],
      [2047, 2048],
    ],
  },
  { block: 7, state: 'zero' },
  { block: 8, state: 'unmapped' },
  { block: 9, state: 'undefined' },
  {
    block: 23,
    state: 'partial',
    fill: 0x33,
    sectors: [
      [1, 2],
      [1000, 2048],
    ],
  },
];

beforeAll(() => {
  standardRaw(parentRaw, SIZE, 21);
  qemuImg('convert', '-f', 'raw', '-O', 'vhdx', parentRaw, parent);
});
afterAll(() => t.cleanup());

function pyvhdiRead(child: string, parentFile: string, out: string): void {
  const py = `
import pyvhdi, sys
p = pyvhdi.file(); p.open(sys.argv[2])
c = pyvhdi.file(); c.open(sys.argv[1]); c.set_parent(p)
size = c.get_media_size()
with open(sys.argv[3], 'wb') as o:
    off = 0
    while off < size:
        n = min(4 << 20, size - off); o.write(c.read_buffer_at_offset(n, off)); off += n
`;
  run('/usr/bin/python3', ['-c', py, child, parentFile, out]);
}

describe('differencing VHDX', () => {
  it('reads through the parent by relative_path: every block state, sector bitmaps LSB-first', async () => {
    const child = t.file('child.vhdx');
    makeDifferencing(parent, child, SIZE, BLOCKS, { relative_path: '.\\parent.vhdx', absolute_win32_path: 'C:\\VMs\\other\\parent.vhdx' });
    const mine = t.file('child.ours.raw');
    const r = await cli('convert', '-O', 'raw', child, mine);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const expected = expectedChild(readFileSync(parentRaw), BLOCKS);
    expect(readFileSync(mine).equals(expected)).toBe(true);
    // libvhdi, an independent reader, agrees.
    const lib = t.file('child.pyvhdi.raw');
    pyvhdiRead(child, parent, lib);
    // libvhdi 20210425 reads the parent under a ZERO block too; MS-VHDX defines ZERO as zeros
    // (it is how a differencing disk hides parent data), so block 7 is the one place we differ.
    const a = readFileSync(mine);
    const b = readFileSync(lib);
    expect(a.length).toBe(b.length);
    expect(a.subarray(0, 7 * MiB).equals(b.subarray(0, 7 * MiB))).toBe(true);
    expect(a.subarray(8 * MiB).equals(b.subarray(8 * MiB))).toBe(true);
    expect(a.subarray(7 * MiB, 8 * MiB).every((x) => x === 0)).toBe(true);
    const info = JSON.parse((await cli('info', '--output=json', child)).stdout);
    expect(info['backing-filename']).toBe('parent.vhdx');
    expect(info['backing-filename-format']).toBe('vhdx');
    expect(info['virtual-size']).toBe(SIZE);
    expect((await cli('info', child)).stdout).toMatch(/parent-linkage: matches/);
  });

  it('says so when the parent changed after the child was made (DataWriteGuid no longer matches parent_linkage)', async () => {
    const p2 = t.file('parent2.vhdx');
    run('cp', [parent, p2]);
    const child = t.file('child2.vhdx');
    makeDifferencing(p2, child, SIZE, BLOCKS, { relative_path: '.\\parent2.vhdx' });
    qemuIo('-f', 'vhdx', '-c', 'write -P 0x99 0 4k', p2); // a guest-visible write: new DataWriteGuid
    expect((await cli('info', child)).stdout).toMatch(/parent-linkage: MISMATCH/);
  });

  it("falls back to the absolute path's file name beside the child when the relative path does not resolve", async () => {
    const dir = t.file('sub');
    mkdirSync(dir);
    const child = `${dir}/child.vhdx`;
    makeDifferencing(parent, child, SIZE, BLOCKS, {
      relative_path: '..\\nowhere\\parent-x.vhdx',
      absolute_win32_path: 'D:\\Hyper-V\\base.vhdx',
    });
    run('cp', [parent, `${dir}/base.vhdx`]);
    const mine = t.file('sub.ours.raw');
    const r = await cli('convert', '-O', 'raw', child, mine);
    expect(r.stderr).toBe('');
    expect(readFileSync(mine).equals(expectedChild(readFileSync(parentRaw), BLOCKS))).toBe(true);
    // Without the parent: a one-line error naming what is missing.
    renameSync(`${dir}/base.vhdx`, `${dir}/gone.vhdx`);
    const miss = await cli('convert', '-O', 'raw', child, t.file('miss.raw'));
    expect(miss.code).not.toBe(0);
    expect(miss.stderr.trim().split('\n')).toHaveLength(1);
    expect(miss.stderr).toMatch(/parent-x\.vhdx|base\.vhdx/);
  });

  it('we write differencing VHDX (-B): libvhdi and we read it as the source; vhdiinfo opens it', async () => {
    // The source: the parent's bytes with new data, zeros over parent data, and a whole new block.
    const src = Buffer.from(readFileSync(parentRaw));
    src.fill(0x6b, 3 * MiB + 4096, 3 * MiB + 3 * 4096); // a few sectors in a block
    src.fill(0, 0, MiB); // zeros over parent data: must hide it
    for (let i = 0; i < MiB; i++) src[12 * MiB + i] = (i * 7) & 0xff; // a whole block
    src.fill(0x2c, SIZE - 1536, SIZE); // the last sectors
    const srcFile = t.file('diff-src.raw');
    writeFileSync(srcFile, src);
    const child = t.file('written-child.vhdx');
    const r = await cli('convert', '-O', 'vhdx', '-o', 'block_size=4M', '-B', 'parent.vhdx', '-F', 'vhdx', srcFile, child);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Only what differs is stored: three blocks and one sector bitmap, not the 24 MiB disk.
    expect(statSync(child).size).toBe(4 * MiB + 3 * 4 * MiB + MiB); // metadata, three blocks, one bitmap
    const st = await readStructure(new MemorySource(new Uint8Array(readFileSync(child)), child), {});
    // 4 MiB blocks, 1 MiB pieces: block 0 has zeros over the parent and new sectors, 1 is
    // untouched, 3 holds one new MiB, 5 the tail; each is partly this file's, partly the parent's.
    const states = [0, 1, 3, 5].map((b) => entryState(st.bat[payloadIndex(st.geometry, b)]!));
    expect(states).toEqual([7, 0, 7, 7]);
    expect(entryState(st.bat[bitmapIndex(st.geometry, 0)]!)).toBe(6); // the chunk's sector bitmap
    const mine = t.file('written-child.ours.raw');
    expect((await cli('convert', '-O', 'raw', child, mine)).code).toBe(0);
    expect(readFileSync(mine).equals(src)).toBe(true);
    const lib = t.file('written-child.pyvhdi.raw');
    pyvhdiRead(child, parent, lib);
    expect(readFileSync(lib).equals(src)).toBe(true);
    expect(run('vhdiinfo', [child])).toMatch(/Disk type\s*: Differential/);
    expect((await cli('info', child)).stdout).toMatch(/parent-linkage: matches/);
    // With 1 MiB blocks every touched block is whole: FULLY_PRESENT, no sector bitmap needed.
    const child1 = t.file('written-child-1m.vhdx');
    expect((await cli('convert', '-O', 'vhdx', '-o', 'block_size=1M', '-B', 'parent.vhdx', '-F', 'vhdx', srcFile, child1)).code).toBe(0);
    const st1 = await readStructure(new MemorySource(new Uint8Array(readFileSync(child1)), child1), {});
    expect([0, 1, 3, 12, 23].map((b) => entryState(st1.bat[payloadIndex(st1.geometry, b)]!))).toEqual([6, 0, 6, 6, 6]);
    const lib1 = t.file('written-child-1m.pyvhdi.raw');
    pyvhdiRead(child1, parent, lib1);
    expect(readFileSync(lib1).equals(src)).toBe(true);
    // A parent of another size, or a fixed differencing file, is refused in one line.
    const bad = await cli('convert', '-O', 'vhdx', '-o', 'subformat=fixed', '-B', 'parent.vhdx', '-F', 'vhdx', srcFile, t.file('bad.vhdx'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
