import { describe, expect, it } from 'vitest';
import { FileSetResolver } from '../workers/io/fileSet.ts';
import { BlobSource } from '../workers/io/blobSource.ts';
import { allocationSummary } from '../workers/allocationMap.ts';
import type { BlockDevice, Extent } from '../src-core/image/types.ts';
import { MissingFileError } from '../src-core/io/errors.ts';

const file = (name: string, text = name) => new File([text], name.slice(name.lastIndexOf('/') + 1));
const readText = async (r: FileSetResolver, name: string, rel: string) => {
  const s = await r.open(name, rel);
  return new TextDecoder().decode(await s.read(0, s.size));
};

describe('FileSetResolver', () => {
  it('finds a companion relative to the referring file first', async () => {
    const r = new FileSetResolver([
      { file: file('vm/disk.vmdk'), path: 'vm/disk.vmdk' },
      { file: file('vm/disk-s001.vmdk'), path: 'vm/disk-s001.vmdk' },
      { file: file('other/disk-s001.vmdk'), path: 'other/disk-s001.vmdk' },
    ]);
    expect(await readText(r, 'disk-s001.vmdk', 'vm/disk.vmdk')).toBe('vm/disk-s001.vmdk');
    expect(await readText(r, '../other/disk-s001.vmdk', 'vm/disk.vmdk')).toBe('other/disk-s001.vmdk');
    expect([...r.opened].sort()).toEqual(['other/disk-s001.vmdk', 'vm/disk-s001.vmdk']);
  });

  it('falls back to the base name for loose files, preferring the same folder', async () => {
    const r = new FileSetResolver([
      { file: file('a/base.qcow2'), path: 'a/base.qcow2' },
      { file: file('b/base.qcow2'), path: 'b/base.qcow2' },
      { file: file('top.qcow2'), path: 'top.qcow2' },
    ]);
    // An absolute path from another machine still finds the dropped file of that name.
    expect(await readText(r, '/home/alice/vms/base.qcow2', 'b/top.qcow2')).toBe('b/base.qcow2');
    expect(await readText(r, 'C:\\VMs\\base.qcow2', 'a/x.qcow2')).toBe('a/base.qcow2');
  });

  it('names the missing companion and the file that wanted it', async () => {
    const r = new FileSetResolver([{ file: file('disk.vmdk'), path: 'disk.vmdk' }]);
    const err = await r.open('disk-flat.vmdk', 'disk.vmdk').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingFileError);
    expect((err as Error).message).toContain('disk-flat.vmdk');
    expect((err as Error).message).toContain('disk.vmdk');
  });

  it('lists the files in the folder of a file', async () => {
    const r = new FileSetResolver([
      { file: file('vm/a.vdi'), path: 'vm/a.vdi' },
      { file: file('vm/b.vdi'), path: 'vm/b.vdi' },
      { file: file('c.vdi'), path: 'c.vdi' },
    ]);
    expect((await r.list('vm/a.vdi')).sort()).toEqual(['a.vdi', 'b.vdi']);
  });
});

describe('BlobSource', () => {
  it('reads slices and stops at the end of the blob', async () => {
    const s = new BlobSource(new Blob([new Uint8Array([1, 2, 3, 4, 5])]), 'x');
    expect([...(await s.read(1, 3))]).toEqual([2, 3, 4]);
    expect([...(await s.read(3, 10))]).toEqual([4, 5]);
    expect((await s.read(9, 4)).length).toBe(0);
  });

  it('reads the next data runs ahead while they follow each other, and each byte range once', async () => {
    const MiB = 1 << 20;
    const bytes = new Uint8Array(7 * MiB + 5).map((_, i) => (i * 7 + (i >>> 20)) & 0xff);
    const slices: [number, number][] = [];
    class CountingBlob extends Blob {
      override slice(start?: number, end?: number): Blob {
        slices.push([start!, end!]);
        return super.slice(start, end);
      }
    }
    const s = new BlobSource(new CountingBlob([bytes]), 'x');
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(b);
    for (let at = 0; at < 4 * MiB; at += MiB) expect(same(await s.read(at, MiB), bytes.subarray(at, at + MiB))).toBe(true);
    // Runs 0–3 asked for, 4 and 5 on their way; each fetched exactly once.
    expect(slices).toEqual([0, 1, 2, 3, 4, 5].map((k) => [k * MiB, (k + 1) * MiB]));
    // A jump elsewhere drops what was read ahead and still returns the right bytes, up to the end.
    expect(same(await s.read(MiB / 2, MiB), bytes.subarray(MiB / 2, MiB / 2 + MiB))).toBe(true);
    expect(same(await s.read(6 * MiB, 2 * MiB), bytes.subarray(6 * MiB))).toBe(true);
    // Small (metadata) reads never read ahead.
    slices.length = 0;
    await s.read(100, 512);
    expect(slices).toEqual([[100, 612]]);
  });
});

describe('allocationSummary', () => {
  const device = (size: number, extents: Extent[]): BlockDevice => ({
    format: 'test',
    filename: 't',
    virtualSize: size,
    async *extents() {
      yield* extents;
    },
    read: async () => new Uint8Array(0),
    info: () => ({ filename: 't', format: 'test', 'virtual-size': size }),
    close: async () => {},
  });

  it('spreads extents over cells as shares of each kind', async () => {
    // 4 cells of 100 bytes: data across the first boundary, compressed, zeros, then a hole.
    const m = await allocationSummary(
      device(400, [
        { offset: 0, length: 150, kind: 'data' },
        { offset: 150, length: 50, kind: 'data', compressed: true },
        { offset: 200, length: 100, kind: 'zero' },
        { offset: 300, length: 100, kind: 'unallocated' },
      ]),
      4,
    );
    expect(m.data).toEqual([1, 0.5, 0, 0]);
    expect(m.compressed).toEqual([0, 0.5, 0, 0]);
    expect(m.zero).toEqual([0, 0, 1, 0]);
    expect(m.unallocated).toEqual([0, 0, 0, 1]);
    expect(m.totals).toEqual({ data: 150, compressed: 50, zero: 100, unallocated: 100 });
    expect(m.partial).toBe(false);
  });

  it('handles disks larger than 2^32 bytes and cells that are not whole bytes', async () => {
    const size = 5 * 2 ** 32 + 3;
    const m = await allocationSummary(device(size, [{ offset: 4 * 2 ** 32, length: size - 4 * 2 ** 32, kind: 'data' }]), 512);
    const sum = m.data.reduce((a, b) => a + b, 0) * m.cellBytes;
    expect(Math.abs(sum - (size - 4 * 2 ** 32))).toBeLessThan(1);
    expect(m.data[0]).toBe(0);
    expect(m.data[511]).toBe(1);
  });
});
