import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk, expectOneLineFailure } from './helpers/cli.ts';
import { prng, qemuCompare, run, standardRaw, tempDir } from './helpers/sys.ts';
import { portableCodecs } from '../src-core/codecs/portable.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { MapResolver, MemorySource } from '../src-core/io/bytes.ts';

// cow (User-Mode-Linux copy-on-write; QEMU's `cow` until 2014). No tool here writes it, so the
// fixtures below are built by this file straight from the layout table in
// docs/formats/cow.md, and our output is read back by an independent reader
// written here from the same notes — never through src-core's own cow code.
const t = tempDir();
const SECTOR = 512;
const SIZE = 3 * 1024 * 1024 + 3 * SECTOR; // 6147 sectors: the bitmap's last byte is partly used
const base = t.file('base.raw');

type Layout = 'qemu-v2' | 'qemu-v2-32' | 'uml-v1' | 'uml-v2' | 'uml-v3' | 'uml-v3-broken';

interface Fixture {
  size: number;
  backing: string;
  /** The overlay's own content; only sectors with `present` set are stored. */
  data: Uint8Array;
  present: boolean[];
  align?: number;
}

const roundUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** A cow file in `layout`, written field by field from the notes' table. */
function buildCow(layout: Layout, f: Fixture): Uint8Array {
  const sectors = Math.ceil(f.size / SECTOR);
  const le = layout === 'uml-v1';
  const name = new TextEncoder().encode(f.backing);
  // [version, name offset, name field length, mtime, size, sectorsize, header size, align, format]
  const table: Record<Layout, number[]> = {
    'qemu-v2': [2, 8, 1024, 1032, 1040, 1048, 1056],
    'qemu-v2-32': [2, 8, 1024, 1032, 1036, 1044, 1048],
    'uml-v1': [1, 8, 256, 264, 268, 276, 280],
    'uml-v2': [2, 8, 4096, 4104, 4108, 4116, 4120],
    'uml-v3': [3, 32, 4096, 8, 12, 20, 4128, 24, 28],
    'uml-v3-broken': [3, 36, 4096, 8, 16, 24, 4136, 28, 32],
  };
  const [version, nameOff, nameLen, mtimeOff, sizeOff, ssOff, headerSize, alignOff, formatOff] = table[layout] as number[];
  expect(name.length).toBeLessThan(nameLen!);
  const align = f.align ?? 4096;
  let bitmapOff: number;
  let dataOff: number;
  const bitmapLen = Math.ceil(sectors / 8);
  if (layout.startsWith('qemu')) {
    bitmapOff = headerSize!;
    dataOff = roundUp(headerSize! + bitmapLen, 512);
  } else if (layout === 'uml-v3' || layout === 'uml-v3-broken') {
    bitmapOff = roundUp(headerSize!, align);
    dataOff = roundUp(bitmapOff + bitmapLen, align);
  } else {
    bitmapOff = headerSize!;
    dataOff = roundUp(bitmapOff + Math.floor((f.size + SECTOR - 1) / (8 * SECTOR)), SECTOR);
  }
  let last = -1;
  for (let s = 0; s < sectors; s++) if (f.present[s]) last = s;
  const out = new Uint8Array(Math.max(dataOff + (last + 1) * SECTOR, bitmapOff + bitmapLen));
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x4f4f4f4d, le);
  v.setUint32(4, version!, le);
  out.set(name, nameOff);
  v.setUint32(mtimeOff!, 1_133_000_000, le);
  v.setBigUint64(sizeOff!, BigInt(f.size), le);
  v.setUint32(ssOff!, SECTOR, le);
  if (alignOff !== undefined) {
    v.setUint32(alignOff, align, le);
    v.setUint32(formatOff!, 0, le);
  }
  // The broken layout's padding after mtime was never initialised (cow_user.c malloc'd the header).
  if (layout === 'uml-v3-broken') v.setUint32(12, 0xdeadbeef);
  for (let s = 0; s < sectors; s++) {
    if (!f.present[s]) continue;
    out[bitmapOff + Math.floor(s / 8)]! |= 1 << (s % 8); // least significant bit first
    out.set(f.data.subarray(s * SECTOR, (s + 1) * SECTOR), dataOff + s * SECTOR);
  }
  return out;
}

/** What the disk must read as: stored sectors from the overlay, the rest from the base (or zeros). */
function expectedDisk(f: Fixture, baseBytes: Uint8Array | undefined): Uint8Array {
  const out = new Uint8Array(Math.floor(f.size / SECTOR) * SECTOR);
  if (baseBytes) out.set(baseBytes.subarray(0, Math.min(out.length, baseBytes.length)));
  for (let s = 0; s * SECTOR < out.length; s++) if (f.present[s]) out.set(f.data.subarray(s * SECTOR, (s + 1) * SECTOR), s * SECTOR);
  return out;
}

function overlayFixture(backing: string, seed: number): Fixture {
  const rand = prng(seed);
  const sectors = Math.ceil(SIZE / SECTOR);
  const data = new Uint8Array(sectors * SECTOR);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 9)) & 0xff;
  const present = new Array<boolean>(sectors).fill(false);
  for (let s = 0; s < 100; s++) present[s] = true; // a long run (whole bitmap bytes)
  for (let s = 100; s < 3000; s++) present[s] = rand() % 10 < 3; // mixed bitmap bytes
  for (let s = 5000; s < 5003; s++) present[s] = true;
  present[sectors - 1] = true; // the partly used last bitmap byte
  for (let s = 4000; s < 4008; s++) {
    present[s] = true;
    data.fill(0, s * SECTOR, (s + 1) * SECTOR); // stored zeros hide the base
  }
  return { size: SIZE, backing, data, present };
}

beforeAll(() => standardRaw(base, SIZE, 21));
afterAll(() => t.cleanup());

async function expectReads(name: string, layout: Layout, f: Fixture, withBase: boolean): Promise<void> {
  const file = t.file(`${name}.cow`);
  writeFileSync(file, buildCow(layout, f));
  const expected = t.file(`${name}.expected.raw`);
  writeFileSync(expected, expectedDisk(f, withBase ? new Uint8Array(readFileSync(base)) : undefined));
  const ours = t.file(`${name}.ours.raw`);
  await cliOk('convert', '-O', 'raw', file, ours); // probed, not forced
  run('cmp', [ours, expected]);
  expect(qemuCompare(ours, expected, '-f', 'raw', '-F', 'raw')).toBe(0);
  const info = JSON.parse(await cliOk('info', '--output=json', file));
  expect(info.format).toBe('cow');
  expect(info['virtual-size']).toBe(Math.floor(f.size / SECTOR) * SECTOR);
  if (f.backing) expect(info['backing-filename']).toBe(f.backing);
  else expect(info['backing-filename']).toBeUndefined();
}

describe('cow fixtures built from the layout notes read identically', () => {
  it('QEMU version 2 (x86-64 layout) over a raw backing file', () =>
    expectReads('qemu-v2', 'qemu-v2', overlayFixture('base.raw', 1), true));
  it('QEMU version 2 without a backing file', () => expectReads('qemu-v2-nob', 'qemu-v2', overlayFixture('', 2), false));
  it('QEMU version 2 from a 32-bit build (size at 1036)', () =>
    expectReads('qemu-v2-32', 'qemu-v2-32', overlayFixture('base.raw', 3), true));
  it('UML version 3 with an absolute backing path, 4 KiB alignment', () => expectReads('uml-v3', 'uml-v3', overlayFixture(base, 4), true));
  it('UML version 3 with 512-byte alignment', () => expectReads('uml-v3-512', 'uml-v3', { ...overlayFixture(base, 5), align: 512 }, true));
  it('UML version 3, the "broken" 64-bit variant', () => expectReads('uml-v3-broken', 'uml-v3-broken', overlayFixture(base, 6), true));
  it('UML version 2 (4096-byte name field)', () => expectReads('uml-v2', 'uml-v2', overlayFixture(base, 7), true));
  it('UML version 1 in little-endian host order ("MOOO")', () => expectReads('uml-v1', 'uml-v1', overlayFixture(base, 8), true));
});

/** An independent reader of QEMU's version 2 layout (notes §5), used only to check our writer. */
function readQemuV2(file: string): { disk: Uint8Array; backing: string; sectorsStored: number } {
  const b = new Uint8Array(readFileSync(file));
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  expect(v.getUint32(0)).toBe(0x4f4f4f4d);
  expect(v.getUint32(4)).toBe(2);
  expect(v.getUint32(1036)).toBe(0); // the x86-64 padding before size
  expect(v.getUint32(1048)).toBe(512);
  const nameField = b.subarray(8, 8 + 1024);
  const backing = new TextDecoder().decode(nameField.subarray(0, nameField.indexOf(0)));
  const size = Number(v.getBigUint64(1040));
  const sectors = size / 512;
  expect(Number.isInteger(sectors)).toBe(true);
  const bitmap = 1056;
  const dataBase = roundUp(bitmap + Math.ceil(sectors / 8), 512);
  const disk = new Uint8Array(size);
  if (backing) disk.set(new Uint8Array(readFileSync(t.file(backing))).subarray(0, size));
  let stored = 0;
  for (let s = 0; s < sectors; s++) {
    if (!((b[bitmap + (s >> 3)]! >> (s & 7)) & 1)) continue;
    stored++;
    const at = dataBase + s * 512;
    const sector = new Uint8Array(512);
    sector.set(b.subarray(at, Math.min(at + 512, b.length)));
    disk.set(sector, s * 512);
  }
  return { disk, backing, sectorsStored: stored };
}

describe('cow we write (QEMU version 2) reads back through an independent reader', () => {
  it('without a backing file: every non-zero sector stored, holes left as holes', async () => {
    const src = t.file('w-src.raw');
    standardRaw(src, SIZE, 31);
    const out = t.file('w.cow');
    await cliOk('convert', '-O', 'cow', src, out);
    const r = readQemuV2(out);
    expect(r.backing).toBe('');
    writeFileSync(t.file('w.back.raw'), r.disk);
    run('cmp', [t.file('w.back.raw'), src]);
    const srcBytes = readFileSync(src);
    let nonZero = 0;
    for (let s = 0; s < SIZE / 512; s++) if (srcBytes.subarray(s * 512, s * 512 + 512).some((x) => x !== 0)) nonZero++;
    expect(r.sectorsStored).toBe(nonZero);
  });

  it('with -B: only sectors that differ from the base are stored, zeros over base data included', async () => {
    const changed = t.file('w-changed.raw');
    const bytes = new Uint8Array(readFileSync(base));
    bytes.fill(0x42, 100_000, 100_700); // straddles sector boundaries
    bytes.fill(0, 1_000_000, 1_050_000); // zeros where the base has data
    bytes.fill(0x17, SIZE - 100, SIZE);
    writeFileSync(changed, bytes);
    const out = t.file('wb.cow');
    await cliOk('convert', '-O', 'cow', '-B', 'base.raw', '-F', 'raw', changed, out);
    const r = readQemuV2(out);
    expect(r.backing).toBe('base.raw');
    writeFileSync(t.file('wb.back.raw'), r.disk);
    run('cmp', [t.file('wb.back.raw'), changed]);
    const baseBytes = readFileSync(base);
    let differ = 0;
    for (let s = 0; s < SIZE / 512; s++)
      if (Buffer.compare(baseBytes.subarray(s * 512, s * 512 + 512), bytes.subarray(s * 512, s * 512 + 512))) differ++;
    expect(r.sectorsStored).toBe(differ);
    // And our own reader agrees, through the backing chain.
    await cliOk('convert', '-O', 'raw', out, t.file('wb.ours.raw'));
    run('cmp', [t.file('wb.ours.raw'), changed]);
  });

  it('-o backing_file names the backing file too; a size not a multiple of 512 is rounded up', async () => {
    const small = t.file('small.raw');
    writeFileSync(small, new Uint8Array(1000).fill(0x61));
    const out = t.file('small.cow');
    await cliOk('convert', '-O', 'cow', small, out);
    const r = readQemuV2(out);
    expect(r.disk.length).toBe(1024);
    expect(r.disk.subarray(0, 1000).every((x) => x === 0x61)).toBe(true);
    expect(r.disk.subarray(1000).every((x) => x === 0)).toBe(true);
    const ob = t.file('ob.cow');
    await cliOk('convert', '-O', 'cow', '-o', 'backing_file=base.raw,backing_fmt=raw', base, ob);
    expect(readQemuV2(ob).backing).toBe('base.raw');
    expect(readQemuV2(ob).sectorsStored).toBe(0);
  });

  it('-c is refused: cow has no compression', async () => {
    const r = await cli('convert', '-c', '-O', 'cow', base, t.file('c.cow'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not support compression/);
  });
});

describe('cow hostile headers', () => {
  const good = () => buildCow('qemu-v2', overlayFixture('', 9));
  it.each([
    ['an unknown version', (b: Uint8Array) => new DataView(b.buffer).setUint32(4, 7), /cow version 7 is not supported/],
    ['a zero size', (b: Uint8Array) => new DataView(b.buffer).setBigUint64(1040, 0n), /invalid/],
    ['a version 2 header marked version 3', (b: Uint8Array) => new DataView(b.buffer).setUint32(4, 3), /invalid/],
  ])('%s gives a one-line typed error', async (name, mutate, message) => {
    const b = good();
    mutate(b);
    const f = t.file(`bad-${name.replace(/\W+/g, '-')}.cow`);
    writeFileSync(f, b);
    await expectOneLineFailure(['convert', '-f', 'cow', '-O', 'raw', f, t.file('bad.raw')], message);
  });

  it('the probe claims only the magic with a known version: anything else is left to raw', async () => {
    const b = good();
    new DataView(b.buffer).setUint32(4, 7);
    const f = t.file('v7.cow');
    writeFileSync(f, b);
    expect(JSON.parse(await cliOk('info', '--output=json', f)).format).toBe('raw');
    writeFileSync(f, good());
    expect(JSON.parse(await cliOk('info', '--output=json', f)).format).toBe('cow');
  });

  it('a header claiming a 4 PiB disk over a tiny file maps quickly: the bitmap past the end is empty', async () => {
    const b = new Uint8Array(1056 + 100);
    const v = new DataView(b.buffer);
    v.setUint32(0, 0x4f4f4f4d);
    v.setUint32(4, 2);
    v.setBigUint64(1040, 1n << 52n);
    v.setUint32(1048, 512);
    b.fill(0xff, 1056);
    const f = t.file('huge.cow');
    writeFileSync(f, b);
    const started = Date.now();
    const map = JSON.parse(await cliOk('map', '--output=json', f)) as { start: number; length: number; data: boolean }[];
    expect(Date.now() - started).toBeLessThan(5000);
    expect(map.map((e) => [e.start, e.length, e.data])).toEqual([
      [0, 800 * 512, true],
      [800 * 512, 2 ** 52 - 800 * 512, false],
    ]);
  });

  it('a truncated header is reported as such', async () => {
    const f = t.file('short.cow');
    writeFileSync(f, good().subarray(0, 600));
    const r = await cli('info', '-f', 'cow', f);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/short\.cow: .*shorter than a version 2 header/);
  });
});

describe('cow random reads through the core (in-memory source, backing through the resolver)', () => {
  it('unaligned reads of a UML v3 overlay equal the expected disk', async () => {
    const f = overlayFixture(base, 41);
    const files = new Map([[base, new MemorySource(new Uint8Array(readFileSync(base)), base)]]);
    const dev = await openImage(new MemorySource(buildCow('uml-v3', f), 'ov.cow'), drivers, {
      codecs: portableCodecs,
      resolver: new MapResolver(files),
    });
    const want = expectedDisk(f, new Uint8Array(readFileSync(base)));
    const rand = prng(3);
    for (let i = 0; i < 100; i++) {
      const off = rand() % dev.virtualSize;
      const len = Math.min(1 + (rand() % 20_000), dev.virtualSize - off);
      expect(Buffer.compare(await dev.read(off, len), want.subarray(off, off + len)), `at ${off}+${len}`).toBe(0);
    }
    await dev.close();
  });
});
