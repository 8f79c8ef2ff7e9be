import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk, expectOneLineFailure } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { expectQemuReadsAsRaw, expectReadsLikeQemu, seedArb, sparseRegions, writeSectorDisk } from './helpers/property.ts';
import { qemuCompare, qemuImg, qemuIo, runStatus, tempDir, writePatternedRaw } from './helpers/sys.ts';

// Parallels images made by qemu-img 7.2 (and hand-edited copies: the old "WithoutFreeSpace"
// header, a format extension with a dirty bitmap) read as qemu-img reads them; what we write is
// what qemu-img writes; check gives qemu-img's verdicts.
const t = tempDir('diskferry-prl-');
afterAll(() => t.cleanup());
const MiB = 1024 * 1024;
const SIZE = 13 * MiB + 1536;
const src = t.file('src.raw');

beforeAll(() => {
  writePatternedRaw(
    src,
    SIZE,
    [
      { offset: 0, length: 2 * MiB + 4321 },
      { offset: 6 * MiB + 512, length: 1500000 },
      { offset: SIZE - 70000, length: 70000 },
    ],
    23,
  );
});

/** Header fields, read here from the documented layout (not through our driver). */
const hdr = (b: Buffer) => ({ tracks: b.readUInt32LE(28), entries: b.readUInt32LE(32), dataOff: b.readUInt32LE(48) });

const CLUSTERS = ['default', '4k', '64k', '33k', '2M'];

describe('images made by qemu-img read byte-identically, with the same info and map', () => {
  it.each(CLUSTERS)('convert -O parallels, cluster_size %s', async (cs) => {
    const f = t.file(`conv-${cs}.hds`);
    qemuImg('convert', '-f', 'raw', '-O', 'parallels', ...(cs === 'default' ? [] : ['-o', `cluster_size=${cs}`]), src, f);
    await expectSameExport(f, t.file, `conv-${cs}`);
    await expectInfoMatches(f);
    expect(JSON.parse(await cliOk('map', '--output=json', f))).toEqual(JSON.parse(qemuImg('map', '--output=json', f)));
  });

  it.each(['off', 'falloc', 'full'])('create -o preallocation=%s, then sparse qemu-io writes', async (prealloc) => {
    const f = t.file(`io-${prealloc}.hdd`);
    qemuImg('create', '-f', 'parallels', '-o', `preallocation=${prealloc},cluster_size=64k`, f, '7M');
    // Out of guest order, partial clusters, one run across a cluster boundary, a rewrite.
    qemuIo(
      '-f',
      'parallels',
      '-c',
      'write -P 0xa5 5M 4k',
      '-c',
      'write -P 0x11 0 512',
      '-c',
      'write -P 0x22 130560 3k',
      '-c',
      'write -P 0x33 5M 1k',
      '-c',
      'write -P 0x44 7338496 1k',
      f,
    );
    await expectSameExport(f, t.file, `io-${prealloc}`);
    await expectInfoMatches(f);
  });

  it('an empty image and an odd size', async () => {
    const f = t.file('empty.hds');
    qemuImg('create', '-f', 'parallels', f, '1000001');
    await expectSameExport(f, t.file, 'empty');
    await expectInfoMatches(f);
  });

  it('an old "WithoutFreeSpace" image: BAT in sectors, only the low 32 bits of nb_sectors', async () => {
    const b = readFileSync(t.file('conv-64k.hds'));
    const { tracks, entries } = hdr(b);
    b.write('WithoutFreeSpace', 0, 'latin1');
    for (let i = 0; i < entries; i++) b.writeUInt32LE(b.readUInt32LE(64 + 4 * i) * tracks, 64 + 4 * i);
    b.writeUInt32LE(7, 40); // high half of nb_sectors: ignored in this version
    const f = t.file('v1.hds');
    writeFileSync(f, b);
    await expectSameExport(f, t.file, 'v1');
    await expectInfoMatches(f);
    expect(readFileSync(t.file('v1.ours.raw')).equals(readFileSync(src))).toBe(true);
  });

  it('clusters at and past the end of the file read as zeros, as in qemu-img', async () => {
    const b = readFileSync(t.file('conv-64k.hds'));
    const cs = hdr(b).tracks * 512;
    const used = Array.from({ length: hdr(b).entries }, (_, i) => b.readUInt32LE(64 + 4 * i));
    const free = used.findIndex((e) => e === 0);
    b.writeUInt32LE(b.length / cs, 64 + 4 * free); // starts exactly at the end
    b.writeUInt32LE(b.length / cs + 3, 64 + 4 * (free + 1 + used.slice(free + 1).findIndex((e) => e === 0)));
    const f = t.file('short.hds');
    writeFileSync(f, b.subarray(0, b.length - cs / 2)); // and the last cluster cut in half
    await expectSameExport(f, t.file, 'short');
  });

  it('a format extension with a dirty bitmap is parsed and ignored for data; a bad checksum is refused', async () => {
    const f = t.file('ext.hds');
    writeFileSync(f, withExtension(readFileSync(t.file('conv-64k.hds'))));
    await expectSameExport(f, t.file, 'ext');
    await expectInfoMatches(f);
    const bad = readFileSync(f);
    bad[bad.length - 100]! ^= 1;
    writeFileSync(t.file('ext-bad.hds'), bad);
    expect(runStatus('qemu-img', ['info', t.file('ext-bad.hds')]).stderr).toContain('checksum');
    const r = await cli('convert', '-O', 'raw', t.file('ext-bad.hds'), t.file('ext-bad.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^diskferry convert: .*ext-bad\.hds: wrong checksum in the Parallels format extension.*\n$/);
  });
});

/** Appends a format extension cluster holding one dirty bitmap (L1 entry 1: all ones) and points ext_off at it. */
function withExtension(b: Buffer): Buffer {
  const { tracks } = hdr(b);
  const cs = tracks * 512;
  const sectors = Number(b.readBigUInt64LE(36));
  const gran = 128; // sectors
  const l1 = Math.ceil((Math.ceil(Math.ceil((sectors * 512) / (gran * 512)) / 64) * 8) / cs);
  const ext = Buffer.alloc(cs);
  ext.writeBigUInt64LE(0xab234cef23dcea87n, 0);
  let p = 24;
  ext.writeBigUInt64LE(0x20385fae252cb34an, p);
  ext.writeUInt32LE(32 + 8 * l1, p + 16);
  p += 24;
  ext.writeBigUInt64LE(BigInt(sectors), p);
  Buffer.from('0123456789abcdef0123456789abcdef', 'hex').copy(ext, p + 8);
  ext.writeUInt32LE(gran, p + 24);
  ext.writeUInt32LE(l1, p + 28);
  for (let i = 0; i < l1; i++) ext.writeBigUInt64LE(1n, p + 32 + 8 * i);
  // The end-of-features marker is all zeros and already there.
  createHash('md5').update(ext.subarray(24)).digest().copy(ext, 8);
  const out = Buffer.concat([b, ext]);
  out.writeBigUInt64LE(BigInt(b.length / 512), 56);
  return out;
}

describe('images we write', () => {
  it.each(CLUSTERS)('cluster_size %s: byte-identical to qemu-img convert, check clean, compare equal', async (cs) => {
    const opts = cs === 'default' ? [] : ['-o', `cluster_size=${cs}`];
    const ours = t.file(`w-${cs}.hds`);
    const theirs = t.file(`wq-${cs}.hds`);
    await cliOk('convert', '-O', 'parallels', ...opts, src, ours);
    qemuImg('convert', '-f', 'raw', '-O', 'parallels', ...opts, src, theirs);
    expectQemuReadsAsRaw(ours, 'parallels', src, SIZE, true);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
    expect((await cli('check', ours)).code).toBe(0);
  });

  it('a size that is not a multiple of 512 is rounded up, as qemu-img does', async () => {
    const raw = t.file('odd.raw');
    writePatternedRaw(raw, 1000001, [{ offset: 0, length: 1000001 }], 5);
    const out = t.file('odd.hds');
    await cliOk('convert', '-f', 'raw', '-O', 'parallels', raw, out);
    expect(JSON.parse(qemuImg('info', '--output=json', out))['virtual-size']).toBe(1000448);
    expect(qemuCompare(raw, out, '-f', 'raw', '-F', 'parallels')).toBe(0);
  });

  it('refuses options it does not know and a backing file', async () => {
    let r = await cli('convert', '-O', 'parallels', '-o', 'table_size=4', src, t.file('bad.hds'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('table_size');
    r = await cli('convert', '-O', 'parallels', '-B', src, src, t.file('bad2.hds'));
    expect(r.code).not.toBe(0);
  });
});

describe('check gives qemu-img 7.2 check --output=json and its exit code', () => {
  const entry = (_b: Buffer, i: number) => 64 + 4 * i;
  /** An unallocated guest cluster, so that the damage changes nothing else. */
  const free = (b: Buffer) => {
    for (let i = 0; ; i++) if (b.readUInt32LE(64 + 4 * i) === 0) return i;
  };
  it.each([
    ['clean', 0, (_b: Buffer) => {}],
    ['BAT entry outside the image', 2, (b: Buffer) => b.writeUInt32LE(100000, entry(b, 3))],
    [
      'BAT entry at the end of the file (not outside)',
      0,
      (b: Buffer) => b.writeUInt32LE(b.length / (hdr(b).tracks * 512), entry(b, free(b))),
    ],
    ['in-use (dirty) header', 2, (b: Buffer) => b.writeUInt32LE(0x746f6e59, 44)],
    ['a cluster used twice (7.2 does not look)', 0, (b: Buffer) => b.writeUInt32LE(b.readUInt32LE(entry(b, 0)), entry(b, free(b)))],
    ['space leaked at the end', 3, () => 'grow'],
  ] as [string, number, (b: Buffer) => unknown][])('%s', async (name, code, damage) => {
    let b = readFileSync(t.file('conv-64k.hds'));
    if (damage(b) === 'grow') b = Buffer.concat([b, Buffer.alloc(200000, 7)]);
    const f = t.file(`check-${name.replace(/\W+/g, '-')}.hds`);
    writeFileSync(f, b);
    const theirs = runStatus('qemu-img', ['check', '--output=json', f]);
    const ours = await cli('check', '--output=json', f);
    expect(theirs.status).toBe(code);
    expect(ours.code).toBe(code);
    expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(theirs.stdout));
  });

  it('an image with a format extension cluster past the data (7.2 counts it as leaked)', async () => {
    const f = t.file('ext.hds');
    const theirs = runStatus('qemu-img', ['check', '--output=json', f]);
    const ours = await cli('check', '--output=json', f);
    expect(ours.code).toBe(theirs.status);
    expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(theirs.stdout));
  });
});

describe('hostile headers give typed one-line errors', () => {
  const expectTyped = async (name: string, edit: (b: Buffer) => void, what: RegExp) => {
    const b = readFileSync(t.file('conv-64k.hds'));
    edit(b);
    const f = t.file(name);
    writeFileSync(f, b);
    await expectOneLineFailure(['convert', '-O', 'raw', f, `${f}.out`], what);
  };
  it('zero sectors per cluster', () => expectTyped('zero-tracks.hds', (b) => b.writeUInt32LE(0, 28), /zero sectors per track/));
  it('a BAT past the end of the file', () =>
    expectTyped('big-bat.hds', (b) => b.writeUInt32LE(0x3fffffff, 32), /BAT of \d+ entries is larger|truncated/));
  it('a huge cluster size', () =>
    expectTyped('huge-cluster.hds', (b) => b.writeUInt32LE(0x7fffffff, 28), /cluster of \d+ sectors is too big/));
  it('an ext_off past the end', () =>
    expectTyped('ext-far.hds', (b) => b.writeBigUInt64LE(1n << 40n, 56), /format extension at \d+ ends past the end/));
});

describe('property tests', () => {
  const disk = fc.record({
    sectors: fc.integer({ min: 1, max: 12 * 2048 }),
    cluster: fc.constantFrom('4k', '64k', '1M', '33k'),
    seed: seedArb,
    regions: sparseRegions(2_000_000),
  });
  let n = 0;
  it('what we write, qemu-img checks clean, sizes exactly and reads to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw, size } = writeSectorDisk(t.file(`p${++n}.raw`), d);
        const img = `${raw}.hds`;
        await cliOk('convert', '-O', 'parallels', '-o', `cluster_size=${d.cluster}`, raw, img);
        expectQemuReadsAsRaw(img, 'parallels', raw, size, true);
      }),
      { numRuns: 8, seed: 20261205 },
    );
  });
  it('what qemu-img writes, we read to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw } = writeSectorDisk(t.file(`q${++n}.raw`), d);
        const img = `${raw}.hds`;
        qemuImg('convert', '-f', 'raw', '-O', 'parallels', '-o', `cluster_size=${d.cluster}`, raw, img);
        await expectReadsLikeQemu(img);
      }),
      { numRuns: 8, seed: 20261206 },
    );
  });
});
