import { copyFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { qemuImg, qemuIo, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// Less common qcow2 features: external data files, header bits, and QEMU's open-time limits.
const t = tempDir();
const raw = t.file('src.raw');
const base = t.file('base.qcow2');

function pokeBE(file: string, offset: number, value: bigint, bytes: 4 | 8): void {
  const b = Buffer.alloc(bytes);
  if (bytes === 4) b.writeUInt32BE(Number(value));
  else b.writeBigUInt64BE(value);
  const fd = openSync(file, 'r+');
  writeSync(fd, b, 0, bytes, offset);
  closeSync(fd);
}

function mutated(name: string, offset: number, value: bigint, bytes: 4 | 8): string {
  const f = t.file(name);
  copyFileSync(base, f);
  pokeBE(f, offset, value, bytes);
  return f;
}

beforeAll(() => {
  standardRaw(raw, 6 << 20, 2);
  qemuImg('convert', '-O', 'qcow2', raw, base);
});
afterAll(() => t.cleanup());

describe('qcow2 features', () => {
  it.each([['off'], ['on']])('an external data file (data_file_raw=%s) is read through the resolver', async (rawOpt) => {
    const opt = `data_file_raw=${rawOpt}`;
    const img = t.file(`ext-${rawOpt}.qcow2`);
    // QEMU 7.2 resolves a relative data_file name against its working directory (DiskFerry: against
    // the image's folder, as for backing files), so qemu runs from the image's folder here.
    const cwd = process.cwd();
    process.chdir(t.dir);
    try {
      qemuImg('create', '-f', 'qcow2', '-o', `data_file=ext-${rawOpt}.data,${opt}`, img, '6M');
      qemuIo('-c', 'write -P 0x31 0 1M', '-c', 'write -P 0x32 3M 512k', img);
      await expectSameExport(img, t.file, `ext-${rawOpt}`);
      await expectInfoMatches(img);
    } finally {
      process.chdir(cwd);
    }
  });

  it('the dirty and corrupt bits are reported as qemu-img reports them', async () => {
    const dirty = mutated('dirty.qcow2', 72, 1n, 8);
    await expectInfoMatches(dirty);
    const corrupt = mutated('corrupt.qcow2', 72, 2n, 8);
    await expectInfoMatches(corrupt);
    expect(JSON.parse(qemuImg('info', '--output=json', dirty))['dirty-flag']).toBe(true);
  });

  // Each of these makes qemu-img refuse the image at open; we must refuse it too, in one clear line.
  const LIMITS: [string, number, bigint, 4 | 8, RegExp][] = [
    ['huge L1 table', 36, 0x0fffffffn, 4, /L1 table is too large/],
    ['huge refcount table', 56, 0x00ffffffn, 4, /refcount table is too large/],
    ['too many snapshots', 60, 70000n, 4, /too many snapshots/],
    ['unknown incompatible feature', 72, 1n << 40n, 8, /incompatible feature/],
    ['bad cluster bits', 20, 30n, 4, /cluster_bits/],
    ['unaligned L1 table', 40, 0x30001n, 8, /L1 table offset is not cluster aligned/],
    ['L1 too small for the disk', 36, 0n, 4, /L1 table is too small/],
    ['refcount order above 6', 96, 7n, 4, /refcount_order/],
  ];
  it.each(LIMITS)('%s', async (name, offset, value, bytes, message) => {
    const f = mutated(`${name.replace(/ /g, '-')}.qcow2`, offset, value, bytes);
    expect(runStatus('qemu-img', ['info', f]).status).toBe(1);
    const r = await cli('info', f);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(f);
  });
});
