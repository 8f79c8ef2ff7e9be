import { describe, expect, it } from 'vitest';
import { MapResolver, MemorySource, type ByteSource } from '../src-core/io/bytes.ts';
import { DiskFerryError } from '../src-core/io/errors.ts';
import { openImage } from '../src-core/image/open.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { portableCodecs } from '../src-core/codecs/portable.ts';
import { buildStreamVmdk } from './helpers/vmdkStream.ts';
import { buildCowd } from './helpers/vmdkEsx.ts';

// Damaged and hostile VMDK/OVA input: every case ends in a typed, one-line error naming the file,
// quickly and without allocating what the numbers in the file ask for.

function sparseHeader(
  f: { capacity?: bigint; grain?: bigint; gtes?: number; gd?: bigint; version?: number; flags?: number; compress?: number } = {},
): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  b.set([0x4b, 0x44, 0x4d, 0x56]);
  v.setUint32(4, f.version ?? 1, true);
  v.setUint32(8, f.flags ?? 3, true);
  v.setBigUint64(12, f.capacity ?? 2048n, true);
  v.setBigUint64(20, f.grain ?? 128n, true);
  v.setUint32(44, f.gtes ?? 512, true);
  v.setBigUint64(56, f.gd ?? 1n, true);
  v.setUint16(77, f.compress ?? 0, true);
  return b;
}

function withTail(head: Uint8Array, size: number): Uint8Array {
  const b = new Uint8Array(size);
  b.set(head);
  return b;
}

async function expectTyped(files: Record<string, Uint8Array>, main: string, pattern?: RegExp): Promise<DiskFerryError> {
  const map = new Map<string, ByteSource>(Object.entries(files).map(([k, v]) => [k, new MemorySource(v, k)]));
  const started = Date.now();
  let err: unknown;
  try {
    const dev = await openImage(map.get(main)!, drivers, { codecs: portableCodecs, resolver: new MapResolver(map) });
    try {
      await dev.read(0, Math.min(dev.virtualSize, 4 << 20));
      for await (const e of dev.extents()) void e;
    } finally {
      await dev.close();
    }
  } catch (e) {
    err = e;
  }
  expect(Date.now() - started).toBeLessThan(3000);
  expect(err, 'expected an error').toBeInstanceOf(DiskFerryError);
  const e = err as DiskFerryError;
  expect(e.message).not.toContain('\n');
  if (pattern) expect(e.message).toMatch(pattern);
  return e;
}

describe('hostile VMDK input', () => {
  it('capacity beyond 2^53 bytes', async () => {
    await expectTyped({ 'a.vmdk': withTail(sparseHeader({ capacity: 1n << 60n }), 4096) }, 'a.vmdk', /a\.vmdk: .*capacity/);
  });
  it('a 64-bit field past 2^53', async () => {
    await expectTyped({ 'a.vmdk': withTail(sparseHeader({ gd: 1n << 62n }), 4096) }, 'a.vmdk', /a\.vmdk: /);
  });
  it('grain tables of 0 or 100000 entries', async () => {
    await expectTyped({ 'a.vmdk': withTail(sparseHeader({ gtes: 0 }), 4096) }, 'a.vmdk', /grain table/);
    await expectTyped({ 'a.vmdk': withTail(sparseHeader({ gtes: 100000 }), 4096) }, 'a.vmdk', /grain table/);
  });
  it('a grain directory far larger than the table limit is refused before it is read', async () => {
    await expectTyped({ 'a.vmdk': withTail(sparseHeader({ capacity: 1n << 40n, grain: 1n }), 4096) }, 'a.vmdk', /grain directory .* limit/);
  });
  it('a grain directory past the end of the file', async () => {
    await expectTyped({ 'a.vmdk': withTail(sparseHeader({ gd: 100000n }), 4096) }, 'a.vmdk', /a\.vmdk: .*(end|truncated)/);
  });
  it('a grain table entry pointing past the end of the file', async () => {
    const f = withTail(sparseHeader({ gd: 2n }), 4096);
    const v = new DataView(f.buffer);
    v.setUint32(2 * 512, 3, true); // GD[0] = sector 3
    v.setUint32(3 * 512, 999999, true); // GT[0] = a grain far away
    await expectTyped({ 'a.vmdk': f }, 'a.vmdk', /a\.vmdk: /);
  });
  it('unknown incompatible flags and versions', async () => {
    await expectTyped({ 'a.vmdk': withTail(sparseHeader({ flags: 0x40003 }), 4096) }, 'a.vmdk', /flags/);
    await expectTyped({ 'a.vmdk': withTail(sparseHeader({ version: 4 }), 4096) }, 'a.vmdk', /version 4/);
  });
  it('stream grains with a bad marker size or damaged zlib data', async () => {
    const raw = new Uint8Array(1 << 20).fill(0x41);
    const good = buildStreamVmdk(raw);
    const first = 128 * 512; // first grain marker
    for (const patch of [
      (b: Buffer) => b.writeUInt32LE(0, first + 8),
      (b: Buffer) => b.writeUInt32LE(0x7fffffff, first + 8),
      (b: Buffer) => b.fill(0x55, first + 14, first + 40),
    ]) {
      const b = Buffer.from(good);
      patch(b);
      await expectTyped({ 's.vmdk': b }, 's.vmdk', /s\.vmdk: .*grain/);
    }
  });
  it('descriptors: absurd extent sizes, a missing extent, a SPARSE extent that is not sparse', async () => {
    const d = (line: string) =>
      new TextEncoder().encode(
        `# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\n# Extent description\n${line}\n`,
      );
    await expectTyped(
      { 'd.vmdk': d('RW 99999999999999999999 FLAT "x.bin" 0'), 'x.bin': new Uint8Array(512) },
      'd.vmdk',
      /d\.vmdk: .*range/,
    );
    await expectTyped({ 'd.vmdk': d('RW 2048 FLAT "gone.bin" 0') }, 'd.vmdk', /gone\.bin/);
    const half = Math.floor(Number.MAX_SAFE_INTEGER / 512) - 1;
    await expectTyped(
      { 'd.vmdk': d(`RW ${half} FLAT "x.bin" 0\nRW ${half} FLAT "x.bin" 0`), 'x.bin': new Uint8Array(512) },
      'd.vmdk',
      /d\.vmdk: .*add up/,
    );
    await expectTyped({ 'd.vmdk': d('RW 2048 SPARSE "d.vmdk"') }, 'd.vmdk', /d\.vmdk: .*magic/);
    await expectTyped({ 'd.vmdk': d('RW 2048 VMFSRDM "dev.bin"'), 'dev.bin': new Uint8Array(512) }, 'd.vmdk', /raw device/);
  });
  it('a COWD grain directory larger than the limit', async () => {
    const b = buildCowd(new Uint8Array(1 << 20).fill(1));
    b.writeUInt32LE(0xffffffff, 12); // capacity
    b.writeUInt32LE(1, 16); // 1-sector grains
    b.writeUInt32LE(0xffffffff, 24); // GD entries
    const d = new TextEncoder().encode(
      '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="vmfsSparse"\n# Extent description\nRW 2048 VMFSSPARSE "c-delta.vmdk"\n',
    );
    await expectTyped({ 'c.vmdk': d, 'c-delta.vmdk': b }, 'c.vmdk', /c-delta\.vmdk: .*limit/);
  });
  it('a delta disk that names itself as its parent', async () => {
    const desc = new TextEncoder().encode(
      '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=1\ncreateType="monolithicFlat"\nparentFileNameHint="loop.vmdk"\n# Extent description\nRW 1 FLAT "loop.bin" 0\n',
    );
    await expectTyped({ 'loop.vmdk': desc, 'loop.bin': new Uint8Array(512) }, 'loop.vmdk', /loop/);
  });
});

describe('hostile OVA input', () => {
  function tarHeader(name: string, size: number): Uint8Array {
    const h = new Uint8Array(512);
    const enc = new TextEncoder();
    h.set(enc.encode(name));
    h.set(enc.encode('0000644\0'), 100);
    h.set(enc.encode(size.toString(8).padStart(11, '0') + '\0'), 124);
    h.set(enc.encode('ustar\0' + '00'), 257);
    h[156] = 0x30;
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of h) sum += x;
    h.set(enc.encode(sum.toString(8).padStart(6, '0') + '\0 '), 148);
    return h;
  }
  it('a member that runs past the end of the archive', async () => {
    const b = new Uint8Array(4096);
    b.set(tarHeader('x.ovf', 1 << 30));
    await expectTyped({ 'x.ova': b }, 'x.ova', /x\.ova: .*past the end/);
  });
  it('a damaged member header checksum', async () => {
    const b = new Uint8Array(4096);
    b.set(tarHeader('x.ovf', 10));
    b.set(tarHeader('disk.vmdk', 10), 1024);
    b[1024 + 3] ^= 0xff;
    await expectTyped({ 'x.ova': b }, 'x.ova', /x\.ova: .*checksum/);
  });
  it('an OVF naming a disk that is not in the archive', async () => {
    const ovf = new TextEncoder().encode(
      '<Envelope><References><File ovf:href="disk.vmdk" ovf:id="f1"/></References><DiskSection><Disk ovf:fileRef="f1"/></DiskSection></Envelope>',
    );
    const b = new Uint8Array(4096);
    b.set(tarHeader('x.ovf', ovf.length));
    b.set(ovf, 512);
    await expectTyped({ 'x.ova': b }, 'x.ova', /disk\.vmdk/);
  });
});
