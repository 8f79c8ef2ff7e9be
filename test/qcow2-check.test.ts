import { copyFileSync, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.ts';
import { qemuImg, qemuIo, runStatus, standardRaw, tempDir } from './helpers/sys.ts';

// check and compare: our verdicts and exit codes against qemu-img's on images damaged on purpose.
const t = tempDir();
const clean = t.file('clean.qcow2');

function poke(file: string, offset: number, bytes: number[]): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset);
  closeSync(fd);
}

function be64(file: string, offset: number): bigint {
  return readFileSync(file).readBigUInt64BE(offset);
}

/** File offset of the first refcount block, from the header's refcount table. */
function refblockOffset(file: string): number {
  return Number(be64(file, Number(be64(file, 48))));
}

beforeAll(() => {
  const raw = t.file('src.raw');
  standardRaw(raw, 12 << 20, 4);
  qemuImg('convert', '-O', 'qcow2', raw, clean);
});
afterAll(() => t.cleanup());

async function expectSameCheck(file: string, expectedCode: number): Promise<void> {
  const theirs = runStatus('qemu-img', ['check', '--output=json', file]);
  const ours = await cli('check', '--output=json', file);
  expect(theirs.status).toBe(expectedCode);
  expect(ours.code).toBe(expectedCode);
  const a = JSON.parse(ours.stdout);
  const b = JSON.parse(theirs.stdout);
  for (const k of [
    'check-errors',
    'leaks',
    'corruptions',
    'image-end-offset',
    'total-clusters',
    'allocated-clusters',
    'fragmented-clusters',
    'compressed-clusters',
  ]) {
    expect([k, a[k]]).toEqual([k, b[k]]);
  }
}

describe('check', () => {
  it('a clean image: exit 0 and the same statistics', async () => {
    await expectSameCheck(clean, 0);
  });

  it('a compressed image with an internal snapshot: exit 0', async () => {
    const f = t.file('snap.qcow2');
    qemuImg('convert', '-c', '-O', 'qcow2', '-o', 'cluster_size=4k', t.file('src.raw'), f);
    qemuImg('snapshot', '-c', 's', f);
    qemuIo('-c', 'write -P 1 0 100k', f);
    await expectSameCheck(f, 0);
  });

  it('a raised refcount is a leak: exit 3', async () => {
    const f = t.file('leak.qcow2');
    copyFileSync(clean, f);
    // Cluster 1 (the refcount table) gets refcount 5 instead of 1.
    poke(f, refblockOffset(f) + 2, [0, 5]);
    await expectSameCheck(f, 3);
  });

  it('a lowered refcount is a corruption: exit 2', async () => {
    const f = t.file('corrupt.qcow2');
    copyFileSync(clean, f);
    // The last data cluster claims refcount 0 although an L2 entry points at it.
    const size = readFileSync(f).length;
    const lastCluster = Math.floor((size - 1) / 65536);
    poke(f, refblockOffset(f) + 2 * lastCluster, [0, 0]);
    await expectSameCheck(f, 2);
  });

  it('an L2 entry without OFLAG_COPIED is a corruption: exit 2', async () => {
    const f = t.file('copied.qcow2');
    copyFileSync(clean, f);
    const l1 = Number(be64(f, 40));
    const l2 = Number(be64(f, l1) & 0x00fffffffffffe00n);
    // Find the first allocated L2 entry and clear bit 63.
    const buf = readFileSync(f);
    let at = -1;
    for (let i = 0; i < 8192 && at < 0; i++) if (buf.readBigUInt64BE(l2 + 8 * i)) at = l2 + 8 * i;
    expect(at).toBeGreaterThan(0);
    poke(f, at, [buf[at]! & 0x7f]);
    await expectSameCheck(f, 2);
  });

  it('a format that has no check says so with exit 63', async () => {
    const r = await cli('check', '-f', 'raw', t.file('src.raw'));
    expect(r.code).toBe(63);
    expect(runStatus('qemu-img', ['check', '-f', 'raw', t.file('src.raw')]).status).toBe(63);
  });
});

describe('compare', () => {
  it('exits 0 for identical images in different formats, 1 at the first difference', async () => {
    const raw = t.file('src.raw');
    const same = await cli('compare', raw, clean);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain('Images are identical');
    const diff = t.file('diff.qcow2');
    copyFileSync(clean, diff);
    qemuIo('-c', 'write -P 0x99 5M 512', diff);
    const r = await cli('compare', raw, diff);
    expect(r.code).toBe(1);
    const q = runStatus('qemu-img', ['compare', raw, diff]);
    expect(q.status).toBe(1);
    expect(r.stdout.trim()).toBe(q.stdout.trim());
  });

  it('exits 2 when an image cannot be opened', async () => {
    const r = await cli('compare', t.file('src.raw'), t.file('missing.qcow2'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing.qcow2');
  });
});
