import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuImg, run, runStatus, tempDir, writePatternedRaw } from './helpers/sys.ts';
import { pyvhdiExport, vhdSum } from './helpers/vhd.ts';

// Differencing VHDs written with -B. qemu-img 7.2 reads a VHD without its parent (vpc.c has no
// backing file and ignores sector bitmaps), so the judges are libvhdi (through the parent),
// our reader, qemu-img for the child's own blocks, and the bytes of the header against the spec.
const t = tempDir('diskferry-vpcd-');
afterAll(() => t.cleanup());

const MiB = 1 << 20;
const SIZE = 9 * MiB + 1536; // not a block multiple: the last block is short
const base = t.file('base.raw');
const changed = t.file('changed.raw');

/** Pages of 4 KiB where `changed` differs from `base`: what the child must hold. */
function differingPages(): Set<number> {
  const a = readFileSync(base);
  const b = readFileSync(changed);
  const pages = new Set<number>();
  for (let p = 0; p < SIZE; p += 4096) if (!a.subarray(p, p + 4096).equals(b.subarray(p, p + 4096))) pages.add(p / 4096);
  return pages;
}

beforeAll(() => {
  writePatternedRaw(
    base,
    SIZE,
    [
      { offset: 0, length: 700000 },
      { offset: 3 * MiB, length: 900000 },
      { offset: 7 * MiB, length: 600000 },
    ],
    3,
  );
  const b = Buffer.from(readFileSync(base));
  b.fill(0x11, 100, 612); // two sectors of one page, in block 0
  b.fill(0, 3 * MiB + 4096, 3 * MiB + 12288); // zeros over the parent's data
  b.fill(0x22, 5 * MiB, 5 * MiB + 1000); // new data where the parent has none (block 2)
  b.fill(0x33, SIZE - 512, SIZE); // the very last sector
  writeFileSync(changed, b);
});

async function makeChild(name: string, parentArgs: string[] = ['-O', 'vpc']): Promise<{ parent: string; child: string }> {
  const parent = t.file(`${name}-parent.vhd`);
  const child = t.file(`${name}.vhd`);
  await cliOk('convert', ...parentArgs, base, parent);
  await cliOk('convert', '-O', 'vpc', '-B', `${name}-parent.vhd`, '-F', 'vpc', changed, child);
  return { parent, child };
}

describe('differencing VHD (convert -O vpc -B)', () => {
  it('reads as the source through its parent: libvhdi, our reader; vhdiinfo names the parent', async () => {
    const { parent, child } = await makeChild('d');
    const lib = t.file('d.libvhdi.raw');
    pyvhdiExport(child, lib, parent);
    run('cmp', [changed, lib]);
    const back = t.file('d.back.raw');
    await cliOk('convert', '-O', 'raw', child, back);
    run('cmp', [changed, back]);
    expect((await cli('compare', child, changed)).code).toBe(0);
    const vi = run('vhdiinfo', [child]);
    expect(vi).toContain('Differential');
    expect(vi).toMatch(/Parent filename\s*: .*d-parent\.vhd/);
    const info = JSON.parse(await cliOk('info', '--output=json', child));
    expect(info['backing-filename']).toBe('d-parent.vhd');
    // qemu-img sees a vpc image of the same size (it never opens a VHD parent).
    const q = JSON.parse(qemuImg('info', '--output=json', child));
    expect([q.format, q['virtual-size'], q['backing-filename']]).toEqual(['vpc', SIZE, undefined]);
  });

  it('the header links the parent as the spec says: UUID, time stamp, name, W2ku and W2ru locators', async () => {
    const { parent, child } = await makeChild('h');
    const p = readFileSync(parent).subarray(0, 512);
    const f = readFileSync(child);
    const footer = f.subarray(0, 512);
    expect(footer.equals(f.subarray(f.length - 512))).toBe(true);
    expect(footer.readUInt32BE(60)).toBe(4); // differencing
    expect(footer.readUInt32BE(64)).toBe(vhdSum(footer, 64));
    expect(Number(footer.readBigUInt64BE(48))).toBe(SIZE);
    expect(footer.subarray(56, 60).equals(p.subarray(56, 60))).toBe(true); // the parent's geometry
    const h = f.subarray(512, 1536);
    expect(h.subarray(0, 8).toString('latin1')).toBe('cxsparse');
    expect(h.readUInt32BE(36)).toBe(vhdSum(h, 36));
    expect(h.subarray(40, 56).equals(p.subarray(68, 84))).toBe(true); // parent UUID = the parent's footer UUID
    expect(h.readUInt32BE(56)).toBe(p.readUInt32BE(24)); // parent time stamp
    const name = Buffer.from(h.subarray(64, 576)).swap16().toString('utf16le').replace(/\0+$/, '');
    expect(name).toBe(t.file('h-parent.vhd').replace(/\//g, '\\'));
    const locators = [0, 1].map((i) => {
      const e = h.subarray(576 + i * 24, 600 + i * 24);
      const len = e.readUInt32BE(8);
      const at = Number(e.readBigUInt64BE(16));
      expect(e.readUInt32BE(4)).toBeGreaterThanOrEqual(len); // data space, in bytes (as Hyper-V and VirtualBox)
      return [e.subarray(0, 4).toString('latin1'), f.subarray(at, at + len).toString('utf16le')];
    });
    expect(locators).toEqual([
      ['W2ku', t.file('h-parent.vhd').replace(/\//g, '\\')],
      ['W2ru', '.\\h-parent.vhd'],
    ]);
  });

  it('holds only the 4 KiB pages that differ, marked in the bitmaps; qemu-img reads them at their places', async () => {
    const { child } = await makeChild('p');
    const want = differingPages();
    const f = readFileSync(child);
    const batAt = Number(f.readBigUInt64BE(512 + 16));
    const blocks = Math.ceil(SIZE / (2 * MiB));
    const held = new Set<number>();
    let allocated = 0;
    for (let i = 0; i < blocks; i++) {
      const e = f.readUInt32BE(batAt + i * 4);
      if (e === 0xffffffff) continue;
      allocated++;
      const bitmap = f.subarray(e * 512, e * 512 + 512);
      for (let s = 0; s < 4096; s++) {
        if (!(bitmap[s >> 3]! & (0x80 >> (s & 7)))) continue;
        expect(s % 8 === 0 || held.has(i * 512 + (s >> 3))).toBe(true);
        held.add(i * 512 + (s >> 3));
      }
    }
    expect([...held].sort((a, b) => a - b)).toEqual([...want].sort((a, b) => a - b));
    // Blocks 0, 1 (zeros over data), 2 (new data) and 4 (last sector); block 3 is the parent's.
    expect(allocated).toBe(4);
    // qemu-img reads the child's blocks by the BAT alone: each held page is the source's.
    const q = t.file('p.qemu.raw');
    qemuImg('convert', '-f', 'vpc', '-O', 'raw', child, q);
    const qb = readFileSync(q);
    const src = readFileSync(changed);
    for (const page of held)
      expect(qb.subarray(page * 4096, page * 4096 + 4096).equals(src.subarray(page * 4096, page * 4096 + 4096))).toBe(true);
  });

  it('over a fixed parent, and a second level over a differencing parent', async () => {
    const { parent, child } = await makeChild('fx', ['-O', 'vpc', '-o', 'subformat=fixed']);
    const lib = t.file('fx.libvhdi.raw');
    pyvhdiExport(child, lib, parent);
    run('cmp', [changed, lib]);
    // Level two: the first child as parent; only what differs from it is held.
    const more = t.file('more.raw');
    const m = Buffer.from(readFileSync(changed));
    m.fill(0x44, 6 * MiB, 6 * MiB + 4096);
    writeFileSync(more, m);
    const grand = t.file('fx2.vhd');
    await cliOk('convert', '-O', 'vpc', '-B', 'fx.vhd', '-F', 'vpc', more, grand);
    const back = t.file('fx2.back.raw');
    await cliOk('convert', '-O', 'raw', grand, back);
    run('cmp', [more, back]);
    const f = readFileSync(grand);
    const batAt = Number(f.readBigUInt64BE(512 + 16));
    const used = [0, 1, 2, 3, 4].filter((i) => f.readUInt32BE(batAt + i * 4) !== 0xffffffff);
    expect(used).toEqual([3]);
  });

  it('refuses a parent of another format or size, and a fixed child', async () => {
    qemuImg('create', '-q', '-f', 'qcow2', t.file('q.qcow2'), String(SIZE));
    let r = await cli('convert', '-O', 'vpc', '-B', 'q.qcow2', '-F', 'qcow2', changed, t.file('bad1.vhd'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/parent of a differencing VHD must be a VHD \(vpc\), not qcow2/);
    qemuImg('create', '-q', '-f', 'vpc', '-o', 'force_size=on', t.file('small.vhd'), '4M');
    r = await cli('convert', '-O', 'vpc', '-B', 'small.vhd', '-F', 'vpc', changed, t.file('bad2.vhd'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/must have its parent's size: small\.vhd is 4194304 bytes/);
    await cliOk('convert', '-O', 'vpc', base, t.file('okp.vhd'));
    r = await cli('convert', '-O', 'vpc', '-o', 'subformat=fixed', '-B', 'okp.vhd', '-F', 'vpc', changed, t.file('bad3.vhd'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot be fixed/);
  });

  it('check: qemu-img never opens a VHD parent, so a missing one changes nothing (exit 63 for both)', async () => {
    const { parent, child } = await makeChild('c');
    renameSync(parent, t.file('c-moved.vhd'));
    const q = runStatus('qemu-img', ['check', child]);
    const r = await cli('check', child);
    expect(q.status).toBe(63);
    expect(r.code).toBe(63);
    // The same line after the program's own name.
    expect(r.stderr.replace(/^diskferry check: /, '')).toBe(q.stderr.replace(/^qemu-img: /, ''));
    copyFileSync(t.file('c-moved.vhd'), parent);
  });
});
