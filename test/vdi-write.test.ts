import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuCompare, qemuImg, run, runStatus, tempDir, writePatternedRaw } from './helpers/sys.ts';

// VDIs we write, judged by qemu-img (compare, check, info) and by the VirtualBox header rules.
const t = tempDir('diskferry-vdiw-');
const MiB = 1024 * 1024;
const SIZES: [string, number][] = [
  ['odd', 29 * MiB + 1536],
  ['10M', 10 * MiB],
];

beforeAll(() => {
  for (const [name, size] of SIZES) {
    writePatternedRaw(
      t.file(`${name}.raw`),
      size,
      [
        { offset: 0, length: 2 * MiB + 777 },
        { offset: 7 * MiB, length: 300000 },
        { offset: size - 70000, length: 70000 },
      ],
      31,
    );
  }
});
afterAll(() => t.cleanup());

const VARIANTS: [string, string[]][] = [
  ['dynamic', []],
  ['static', ['-o', 'static=on']],
];

const isNull = (b: Buffer) => b.every((x) => x === 0);

describe('VDIs we write', () => {
  for (const [sizeName, size] of SIZES) {
    it.each(VARIANTS)(`%s, ${sizeName}: compare identical, check clean, exact size, valid UUIDs`, async (variant, args) => {
      const src = t.file(`${sizeName}.raw`);
      const out = t.file(`${sizeName}-${variant}.vdi`);
      await cliOk('convert', '-O', 'vdi', ...args, src, out);
      expect(qemuCompare(src, out, '-f', 'raw', '-F', 'vdi')).toBe(0);
      const check = runStatus('qemu-img', ['check', out]);
      expect(check.stdout).toContain('No errors were found on the image.');
      expect(check.status).toBe(0);
      const info = JSON.parse(qemuImg('info', '--output=json', out));
      expect(info['virtual-size']).toBe(size);
      expect(info.format).toBe('vdi');
      const back = t.file(`${sizeName}-${variant}.back.raw`);
      await cliOk('convert', '-O', 'raw', out, back);
      run('cmp', [src, back]);
      expect((await cli('check', out)).code).toBe(0);

      const h = readFileSync(out);
      expect(h.readUInt32LE(0x40)).toBe(0xbeda107f);
      expect(h.readUInt32LE(0x44)).toBe(0x00010001);
      expect(h.readUInt32LE(0x4c)).toBe(variant === 'static' ? 2 : 1);
      const create = h.subarray(0x188, 0x198);
      const modify = h.subarray(0x198, 0x1a8);
      // VirtualBox rejects a null creation or modification UUID; ours are random version-4 GUIDs.
      expect(isNull(create) || isNull(modify) || create.equals(modify)).toBe(false);
      expect(create[7]! >> 4).toBe(4);
      expect(isNull(h.subarray(0x1a8, 0x1c8))).toBe(true); // no linkage, no parent
      const offBlocks = h.readUInt32LE(0x154);
      const offData = h.readUInt32LE(0x158);
      expect(offBlocks % MiB).toBe(0);
      expect(offData % MiB).toBe(0);
      const blocks = h.readUInt32LE(0x180);
      expect(blocks).toBe(Math.ceil(size / MiB));
      if (variant === 'static') {
        expect(h.length).toBe(offData + blocks * MiB);
        for (let i = 0; i < blocks; i++) expect(h.readUInt32LE(offBlocks + 4 * i)).toBe(i);
        expect(h.readUInt32LE(0x184)).toBe(blocks);
      }
    });
  }

  it('dynamic images store only blocks with data', async () => {
    const h = readFileSync(t.file('odd-dynamic.vdi'));
    const blocks = h.readUInt32LE(0x180);
    const offBlocks = h.readUInt32LE(0x154);
    const map = Array.from({ length: blocks }, (_, i) => h.readUInt32LE(offBlocks + 4 * i));
    const used = map.flatMap((e, i) => (e === 0xffffffff ? [] : [i]));
    // Blocks 0-2 (2 MiB + 777), 7, and the 70000-byte tail straddling blocks 28 and 29; slots in guest order.
    expect(used).toEqual([0, 1, 2, 7, 28, 29]);
    expect(used.map((i) => map[i])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(h.readUInt32LE(0x184)).toBe(6);
    expect(h.length).toBe(h.readUInt32LE(0x158) + 6 * MiB);
  });

  it('refuses options it does not know, naming them', async () => {
    const r = await cli('convert', '-O', 'vdi', '-o', 'cluster_size=2M', t.file('10M.raw'), t.file('bad.vdi'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cluster_size');
  });
});
