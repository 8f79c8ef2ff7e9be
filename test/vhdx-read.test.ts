import { copyFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { qemuImg, qemuIo, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// Every VHDX flavour qemu-img makes, read by us and by qemu-img: raw exports must match byte for byte.
const t = tempDir('diskferry-vhdx-');
const src = t.file('src.raw');
const SIZE = 29 * 1024 * 1024 + 1536; // not a block multiple

const CASES: [string, string[]][] = [
  ['dynamic', []],
  ['block-1M', ['-o', 'block_size=1M']],
  ['block-32M', ['-o', 'block_size=32M']],
  ['fixed', ['-o', 'subformat=fixed']],
  ['fixed-not-zero', ['-o', 'subformat=fixed,block_state_zero=off']],
  ['dynamic-not-zero', ['-o', 'block_state_zero=off']],
  ['log-3M', ['-o', 'log_size=3M,block_size=2M']],
];

beforeAll(() => {
  standardRaw(src, SIZE, 11);
  for (const [name, args] of CASES) qemuImg('convert', '-f', 'raw', ...args, '-O', 'vhdx', src, t.file(`${name}.vhdx`));
});
afterAll(() => t.cleanup());

/** Flips one byte of a file in place. */
function flip(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x5a;
  writeSync(fd, b, 0, 1, offset);
  closeSync(fd);
}

describe('VHDX images made by qemu-img read byte-identically', () => {
  it.each(CASES)('%s', async (name) => {
    await expectSameExport(t.file(`${name}.vhdx`), t.file, name);
    await expectInfoMatches(t.file(`${name}.vhdx`));
  });

  it('a fixed image keeps LeaveBlocksAllocated and says so', async () => {
    const info = JSON.parse((await cli('info', '--output=json', t.file('fixed-not-zero.vhdx'))).stdout);
    expect(info.format).toBe('vhdx');
    const r = await cli('info', t.file('fixed-not-zero.vhdx'));
    expect(r.stdout).toMatch(/fixed/);
  });

  it('BAT interleave: with 1 MiB blocks a write at 4 GiB lands after the first sector-bitmap slot', async () => {
    const img = t.file('big.vhdx');
    qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M', img, '5G');
    qemuIo('-f', 'vhdx', '-c', 'write -P 0x11 4G 4k', '-c', 'write -P 0x22 0 64k', '-c', 'write -P 0x33 5119M 1M', img);
    const out = t.file('big.ours.raw');
    const r = await cli('convert', '-O', 'raw', img, out);
    expect(r.stderr).toBe('');
    const fd = openSync(out, 'r');
    const probe = (at: number, len: number) => {
      const b = Buffer.alloc(len);
      readSync(fd, b, 0, len, at);
      return b;
    };
    expect(probe(4 * 2 ** 30, 4096).every((x) => x === 0x11)).toBe(true);
    expect(probe(4 * 2 ** 30 + 4096, 4096).every((x) => x === 0)).toBe(true);
    expect(probe(0, 65536).every((x) => x === 0x22)).toBe(true);
    expect(probe(5 * 2 ** 30 - 2 ** 20, 2 ** 20).every((x) => x === 0x33)).toBe(true);
    closeSync(fd);
    // And the whole disk, the way qemu-img reads it.
    const mine = JSON.parse((await cli('info', '--output=json', img)).stdout);
    expect(mine['virtual-size']).toBe(5 * 2 ** 30);
  });
});

describe('VHDX checksums', () => {
  it('a damaged header 1 falls back to header 2 (as qemu-img does)', async () => {
    const img = t.file('h1.vhdx');
    copyFileSync(t.file('dynamic.vhdx'), img);
    flip(img, 64 * 1024 + 100);
    await expectSameExport(img, t.file, 'h1');
  });

  it('both headers damaged: one line naming the header checksums', async () => {
    const img = t.file('h12.vhdx');
    copyFileSync(t.file('dynamic.vhdx'), img);
    flip(img, 64 * 1024 + 100);
    flip(img, 128 * 1024 + 3000);
    expect(runStatus('qemu-img', ['info', img]).status).not.toBe(0);
    const r = await cli('info', img);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/header 1 checksum mismatch \(CRC-32C/);
    expect(r.stderr).toMatch(/header 2 checksum mismatch/);
  });

  it('a damaged region table 1 falls back to the second copy; both damaged gives the region table checksum error', async () => {
    const img = t.file('rt.vhdx');
    copyFileSync(t.file('block-1M.vhdx'), img);
    flip(img, 192 * 1024 + 40000);
    // qemu-img reads only the first copy and refuses the file.
    expect(runStatus('qemu-img', ['info', img]).status).not.toBe(0);
    const ours = t.file('rt.ours.raw');
    expect((await cli('convert', '-O', 'raw', img, ours)).code).toBe(0);
    qemuImg('convert', '-O', 'raw', t.file('block-1M.vhdx'), t.file('rt.ref.raw'));
    expect(runStatus('cmp', [ours, t.file('rt.ref.raw')]).status).toBe(0);
    flip(img, 256 * 1024 + 12);
    const r = await cli('info', img);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/region table 1 checksum mismatch \(CRC-32C.*region table 2 checksum mismatch/);
  });

  it('a file that is not VHDX or is cut inside the header section gives a typed one-line error', async () => {
    const img = t.file('short.vhdx');
    const fd = openSync(img, 'w');
    const head = Buffer.alloc(100 * 1024);
    head.write('vhdxfile');
    writeSync(fd, head);
    closeSync(fd);
    const r = await cli('info', '-f', 'vhdx', img);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/header section/);
  });
});
