import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk } from './helpers/cli.ts';
import { qemuCompare, qemuImg, run, tempDir, writePatternedRaw } from './helpers/sys.ts';
import { pyvhdiExport, readBytesAt, vhdSum } from './helpers/vhd.ts';

// VHDs we write, judged by qemu-img (compare, info) and libvhdi (vhdiinfo, pyvhdi).
const t = tempDir('diskferry-vpcw-');
const MiB = 1024 * 1024;
const SIZES: [string, number][] = [
  ['odd', 29 * MiB + 1536], // neither a CHS size nor a block multiple
  ['10M', 10 * MiB],
];

beforeAll(() => {
  // Data in the first and the last block, a hole of several blocks, and a short tail.
  for (const [name, size] of SIZES) {
    writePatternedRaw(
      t.file(`${name}.raw`),
      size,
      [
        { offset: 0, length: 3 * MiB + 777 },
        { offset: 8 * MiB, length: 300000 },
        { offset: size - 70000, length: 70000 },
      ],
      21,
    );
  }
});
afterAll(() => t.cleanup());

const VARIANTS: [string, string[]][] = [
  ['dynamic', []],
  ['fixed', ['-o', 'subformat=fixed']],
  ['dynamic-force', ['-o', 'force_size=on']],
  ['fixed-force', ['-o', 'subformat=fixed,force_size=on']],
];

const qemuSize = (f: string) => JSON.parse(qemuImg('info', '--output=json', '-f', 'vpc', f))['virtual-size'] as number;

describe('VHDs we write keep the exact size and read back identically everywhere', () => {
  for (const [sizeName, size] of SIZES) {
    it.each(VARIANTS)(`%s, ${sizeName}`, async (variant, args) => {
      const src = t.file(`${sizeName}.raw`);
      const out = t.file(`${sizeName}-${variant}.vhd`);
      await cliOk('convert', '-O', 'vpc', ...args, src, out);
      expect(qemuSize(out)).toBe(size);
      expect(qemuCompare(src, out, '-f', 'raw', '-F', 'vpc')).toBe(0);
      const vi = run('vhdiinfo', [out]);
      expect(vi).toContain(`(${size} bytes)`);
      expect(vi).toContain(variant.startsWith('fixed') ? 'Fixed' : 'Dynamic');
      const lib = t.file(`${sizeName}-${variant}.libvhdi.raw`);
      pyvhdiExport(out, lib);
      run('cmp', [src, lib]);
      const back = t.file(`${sizeName}-${variant}.back.raw`);
      await cliOk('convert', '-O', 'raw', out, back);
      run('cmp', [src, back]);
    });
  }

  it('the default footer says creator "win " and the size is current size, checksummed; dynamic copies are identical', async () => {
    const out = t.file('odd-dynamic.vhd');
    const bytes = readFileSync(out);
    const head = bytes.subarray(0, 512);
    const tail = bytes.subarray(bytes.length - 512);
    expect(head.equals(tail)).toBe(true);
    expect(head.subarray(28, 32).toString('latin1')).toBe('win ');
    expect(Number(head.readBigUInt64BE(48))).toBe(SIZES[0]![1]);
    expect(head.readUInt32BE(64)).toBe(vhdSum(head, 64));
    expect(head.readUInt32BE(60)).toBe(3);
    const dyn = readBytesAt(out, 512, 1024);
    expect(dyn.subarray(0, 8).toString('latin1')).toBe('cxsparse');
    expect(dyn.readBigUInt64BE(8)).toBe(0xffffffffffffffffn); // "next offset": all 64 bits, as Microsoft tools expect
    expect(dyn.readUInt32BE(36)).toBe(vhdSum(dyn, 36));
    const fixed = readFileSync(t.file('odd-fixed.vhd'));
    expect(fixed.length).toBe(SIZES[0]![1] + 512);
    const ff = fixed.subarray(fixed.length - 512);
    expect(ff.readBigUInt64BE(16)).toBe(0xffffffffffffffffn);
    expect(ff.readUInt32BE(60)).toBe(2);
  });

  it('says how readers will see a size that is not a CHS product', async () => {
    const r = await cli('convert', '-O', 'vpc', t.file('odd.raw'), t.file('warn.vhd'));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/keeps the exact size 30410240 .*Virtual PC would see only its CHS size/);
    expect(r.stderr).not.toContain('Azure');
    const f = await cli('convert', '-O', 'vpc', '-o', 'subformat=fixed', t.file('odd.raw'), t.file('warn-fixed.vhd'));
    expect(f.stderr).toMatch(/Azure accepts only fixed VHDs whose size is a whole number of MiB/);
    const ok = await cli('convert', '-O', 'vpc', '-o', 'subformat=fixed', t.file('10M.raw'), t.file('ok-fixed.vhd'));
    expect(ok.stderr).not.toContain('Azure');
  });

  it('force_size=off is qemu-img\'s default: rounded up to CHS, creator "qemu"', async () => {
    const src = t.file('odd.raw');
    const ours = t.file('off.vhd');
    const theirs = t.file('off.qemu.vhd');
    await cliOk('convert', '-O', 'vpc', '-o', 'force_size=off', src, ours);
    qemuImg('convert', '-f', 'raw', '-O', 'vpc', src, theirs);
    expect(qemuSize(ours)).toBe(qemuSize(theirs));
    expect(qemuSize(ours)).toBeGreaterThan(SIZES[0]![1]);
    expect(readBytesAt(ours, 0, 512).subarray(28, 32).toString('latin1')).toBe('qemu');
    expect(qemuCompare(src, ours, '-f', 'raw', '-F', 'vpc')).toBe(0);
  });

  it('a zero-only disk writes no blocks', async () => {
    const z = t.file('zero.raw');
    run('truncate', ['-s', '6M', z]);
    const out = t.file('zero.vhd');
    await cliOk('convert', '-O', 'vpc', z, out);
    // footer copy + header + one BAT sector + footer
    expect(readFileSync(out).length).toBe(512 + 1024 + 512 + 512);
    expect(qemuCompare(z, out, '-f', 'raw', '-F', 'vpc')).toBe(0);
  });
});
