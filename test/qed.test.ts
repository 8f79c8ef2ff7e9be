import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliOk, expectOneLineFailure } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { expectQemuReadsAsRaw, expectReadsLikeQemu, seedArb, sparseRegions, writeSectorDisk } from './helpers/property.ts';
import { qemuCompare, qemuImg, qemuIo, runStatus, tempDir, writePatternedRaw } from './helpers/sys.ts';

// QED images made by qemu-img 7.2 (sparse, zero clusters, backing chains) read as qemu-img reads
// them; what we write qemu-img checks clean and compares equal; check gives qemu-img's verdicts.
const t = tempDir('diskferry-qed-');
afterAll(() => t.cleanup());
const MiB = 1024 * 1024;
const SIZE = 13 * MiB + 1536;
const src = t.file('src.raw');
const base = t.file('base.raw');

beforeAll(() => {
  writePatternedRaw(
    src,
    SIZE,
    [
      { offset: 0, length: 2 * MiB + 4321 },
      { offset: 6 * MiB + 512, length: 1500000 },
      { offset: SIZE - 70000, length: 70000 },
    ],
    29,
  );
  writePatternedRaw(base, SIZE, [{ offset: 0, length: SIZE }], 30);
});

/** Header fields from the spec's layout (not through our driver). */
const hdr = (b: Buffer) => ({ cluster: b.readUInt32LE(4), tableSize: b.readUInt32LE(8), l1: Number(b.readBigUInt64LE(40)) });

const VARIANTS: [string, string[]][] = [
  ['default', []],
  ['4k-t2', ['-o', 'cluster_size=4k,table_size=2']],
  ['4k-t16', ['-o', 'cluster_size=4k,table_size=16']],
  ['1M', ['-o', 'cluster_size=1M']],
];

describe('images made by qemu-img read byte-identically, with the same info and map', () => {
  it.each(VARIANTS)('convert -O qed %s', async (name, opts) => {
    const f = t.file(`conv-${name}.qed`);
    qemuImg('convert', '-f', 'raw', '-O', 'qed', ...opts, src, f);
    await expectSameExport(f, t.file, `conv-${name}`);
    await expectInfoMatches(f);
    expect(JSON.parse(await cliOk('map', '--output=json', f))).toEqual(JSON.parse(qemuImg('map', '--output=json', f)));
  });

  it('sparse qemu-io writes and zero clusters (write -z), preallocation=full', async () => {
    const f = t.file('io.qed');
    qemuImg('create', '-f', 'qed', '-o', 'cluster_size=16k,preallocation=full', f, '9M');
    qemuIo(
      '-f',
      'qed',
      '-c',
      'write -P 0xa5 5M 4k',
      '-c',
      'write -P 0x11 0 512',
      '-c',
      'write -P 0x22 32256 3k',
      '-c',
      'write -z 5M 16k',
      '-c',
      'write -P 0x44 9436160 1k',
      f,
    );
    await expectSameExport(f, t.file, 'io');
    await expectInfoMatches(f);
    expect(JSON.parse(await cliOk('map', '--output=json', f))).toEqual(JSON.parse(qemuImg('map', '--output=json', f)));
  });

  it('backing chains: a raw backing file (-F raw, no probing) and a qcow2 one, three levels deep', async () => {
    const mid = t.file('mid.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', mid);
    qemuIo('-c', 'write -P 0x66 1M 300k', mid);
    const top = t.file('top.qed');
    qemuImg('create', '-f', 'qed', '-b', 'mid.qcow2', '-F', 'qcow2', top);
    qemuIo('-c', 'write -P 0x77 1100k 8k', '-c', 'write -z 4M 128k', '-c', 'write -P 0x78 12M 64k', top);
    await expectSameExport(top, t.file, 'top');
    await expectInfoMatches(top);
    expect(JSON.parse(await cliOk('map', '--output=json', top))).toEqual(JSON.parse(qemuImg('map', '--output=json', top)));
    const overRaw = t.file('over-raw.qed');
    qemuImg('create', '-f', 'qed', '-b', 'base.raw', '-F', 'raw', overRaw);
    qemuIo('-c', 'write -z 64k 64k', '-c', 'write -P 0x10 3M 1k', overRaw);
    await expectSameExport(overRaw, t.file, 'over-raw');
    await expectInfoMatches(overRaw);
    expect(JSON.parse(await cliOk('info', '--output=json', overRaw))['backing-filename-format']).toBe('raw');
  });

  it('the need-check (dirty) feature: read as qemu-img reads it, dirty-flag as qemu-img 7.2 prints it', async () => {
    const f = t.file('dirty.qed');
    const b = readFileSync(t.file('conv-default.qed'));
    b.writeBigUInt64LE(2n, 16);
    writeFileSync(f, b);
    await expectSameExport(f, t.file, 'dirty');
    await expectInfoMatches(f);
    expect(await cliOk('info', f)).toContain('qed-need-check: true');
  });
});

describe('images we write', () => {
  it.each(VARIANTS)('%s: qemu-img checks clean, compares equal, and our check agrees', async (name, opts) => {
    const out = t.file(`w-${name}.qed`);
    await cliOk('convert', '-O', 'qed', ...opts, src, out);
    expectQemuReadsAsRaw(out, 'qed', src, SIZE, true);
    const info = JSON.parse(qemuImg('info', '--output=json', out));
    const b = readFileSync(out);
    expect(info['cluster-size']).toBe(hdr(b).cluster);
    if (name === '4k-t16') expect(hdr(b).tableSize).toBe(16);
    expect((await cli('check', out)).code).toBe(0);
  });

  it('-B with a backing file: data that equals the backing file is left out, zeros over it become zero clusters', async () => {
    // The source: the base, with one range changed and one range zeroed.
    const srcB = readFileSync(base);
    srcB.fill(0x5a, 2 * MiB, 2 * MiB + 5000);
    srcB.fill(0, 7 * MiB, 8 * MiB);
    const s = t.file('changed.raw');
    writeFileSync(s, srcB);
    const out = t.file('delta.qed');
    await cliOk('convert', '-O', 'qed', '-B', 'base.raw', '-F', 'raw', s, out);
    expect(runStatus('qemu-img', ['check', out]).status).toBe(0);
    expect(qemuCompare(s, out, '-f', 'raw', '-F', 'qed')).toBe(0);
    const info = JSON.parse(qemuImg('info', '--output=json', out));
    expect(info['backing-filename']).toBe('base.raw');
    expect(info['backing-filename-format']).toBe('raw');
    const map = JSON.parse(qemuImg('map', '--output=json', out)) as {
      start: number;
      length: number;
      depth: number;
      zero: boolean;
      data: boolean;
    }[];
    const own = map.filter((m) => m.depth === 0);
    expect(own.filter((m) => m.data).reduce((n, m) => n + m.length, 0)).toBe(64 * 1024); // one cluster of changed data
    expect(own.filter((m) => m.zero && !m.data).reduce((n, m) => n + m.length, 0)).toBe(MiB);
    await expectSameExport(out, t.file, 'delta');
  });

  it('refuses bad options as qemu-img does', async () => {
    for (const o of ['cluster_size=3k', 'table_size=3', 'table_size=1', 'cluster_size=128M', 'subformat=x']) {
      const r = await cli('convert', '-O', 'qed', '-o', o, src, t.file('bad.qed'));
      expect(r.code, o).not.toBe(0);
    }
  });
});

describe('check gives qemu-img 7.2 check --output=json and its exit code', () => {
  /** Offset of L2 entry `i` of the first L2 table. */
  const l2Entry = (b: Buffer, i: number) => Number(b.readBigUInt64LE(hdr(b).l1)) + 8 * i;
  const firstData = (b: Buffer) => b.readBigUInt64LE(l2Entry(b, 0));
  it.each([
    ['clean', 0, () => {}],
    ['leaked clusters at the end', 3, () => 'grow'],
    ['a cluster past the end of the file', 2, (b: Buffer) => b.writeBigUInt64LE(BigInt(b.length) * 4n, l2Entry(b, 40))],
    ['a cluster used twice', 2, (b: Buffer) => b.writeBigUInt64LE(firstData(b), l2Entry(b, 40))],
    ['an unaligned cluster offset', 2, (b: Buffer) => b.writeBigUInt64LE(firstData(b) + 5n, l2Entry(b, 40))],
    ['a cluster inside the L1 table (used twice)', 2, (b: Buffer) => b.writeBigUInt64LE(BigInt(hdr(b).l1), l2Entry(b, 40))],
    ['an L2 table past the end of the file', 2, (b: Buffer) => b.writeBigUInt64LE(BigInt(b.length) * 2n, hdr(b).l1 + 8)],
    ['a zero cluster entry (not an error)', 0, (b: Buffer) => b.writeBigUInt64LE(1n, l2Entry(b, 40))],
  ] as [string, number, (b: Buffer) => unknown][])('%s', async (name, code, damage) => {
    let b = readFileSync(t.file('conv-default.qed'));
    if (damage(b) === 'grow') b = Buffer.concat([b, Buffer.alloc(200000, 7)]);
    const f = t.file(`check-${name.replace(/\W+/g, '-')}.qed`);
    writeFileSync(f, b);
    const theirs = runStatus('qemu-img', ['check', '--output=json', f]);
    const ours = await cli('check', '--output=json', f);
    expect(theirs.status).toBe(code);
    expect(ours.code).toBe(code);
    expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(theirs.stdout));
  });
});

describe('hostile headers and tables give typed one-line errors', () => {
  const expectTyped = async (name: string, edit: (b: Buffer) => void, what: RegExp) => {
    const b = readFileSync(t.file('conv-default.qed'));
    edit(b);
    const f = t.file(name);
    writeFileSync(f, b);
    await expectOneLineFailure(['convert', '-O', 'raw', f, `${f}.out`], what);
  };
  it('a cluster size that is not a power of two', () => expectTyped('cs.qed', (b) => b.writeUInt32LE(3 * 4096, 4), /cluster size 12288/));
  it('a table size of 64 clusters', () => expectTyped('ts.qed', (b) => b.writeUInt32LE(64, 8), /table size 64/));
  it('an image size beyond what the tables map', () =>
    expectTyped('big.qed', (b) => b.writeBigUInt64LE(1n << 50n, 48), /image size \d+ is not a multiple of 512 or too large/));
  it('an L1 table past the end of the file', () => expectTyped('l1.qed', (b) => b.writeBigUInt64LE(1n << 40n, 40), /L1 table offset/));
  it('unknown features', () => expectTyped('feat.qed', (b) => b.writeBigUInt64LE(0x100n, 16), /unsupported QED features 0x100/));
  it('a backing file name outside the header', () =>
    expectTyped(
      'bf.qed',
      (b) => {
        b.writeBigUInt64LE(1n, 16);
        b.writeUInt32LE(0xfffffff0, 56);
        b.writeUInt32LE(100, 60);
      },
      /backing file name lies outside the header/,
    ));
  it('an L2 entry past the end of the file', () =>
    expectTyped('l2e.qed', (b) => b.writeBigUInt64LE(1n << 45n, Number(b.readBigUInt64LE(hdr(b).l1))), /invalid offset/));
});

describe('property tests', () => {
  const disk = fc.record({
    sectors: fc.integer({ min: 1, max: 12 * 2048 }),
    cluster: fc.constantFrom('4k', '64k', '256k'),
    table: fc.constantFrom('2', '4', '16'),
    seed: seedArb,
    regions: sparseRegions(2_000_000),
  });
  let n = 0;
  it('what we write, qemu-img checks clean, sizes exactly and reads to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw, size } = writeSectorDisk(t.file(`p${++n}.raw`), d);
        const img = `${raw}.qed`;
        await cliOk('convert', '-O', 'qed', '-o', `cluster_size=${d.cluster},table_size=${d.table}`, raw, img);
        expectQemuReadsAsRaw(img, 'qed', raw, size, true);
      }),
      { numRuns: 8, seed: 20261207 },
    );
  });
  it('what qemu-img writes, we read to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw } = writeSectorDisk(t.file(`q${++n}.raw`), d);
        const img = `${raw}.qed`;
        qemuImg('convert', '-f', 'raw', '-O', 'qed', '-o', `cluster_size=${d.cluster},table_size=${d.table}`, raw, img);
        await expectReadsLikeQemu(img);
      }),
      { numRuns: 8, seed: 20261208 },
    );
  });
});
