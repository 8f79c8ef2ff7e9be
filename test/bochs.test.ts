import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBochs, type BochsBuild } from './helpers/bochs.ts';
import { cli, cliOk, expectOneLineFailure } from './helpers/cli.ts';
import { expectInfoMatches, expectSameExport } from './helpers/fixtures.ts';
import { expectReadsLikeQemu, seedArb, sparseRegions, writeSectorDisk } from './helpers/property.ts';
import { prng, qemuImg, standardRaw, tempDir } from './helpers/sys.ts';
import { portableCodecs } from '../src-core/codecs/portable.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { openImage } from '../src-core/image/open.ts';
import { MemorySource } from '../src-core/io/bytes.ts';

// Bochs growing images (block/bochs.c), read-only. No tool here writes them, so they are built
// from the layout (test/helpers/bochs.ts) and qemu-img is the judge of what they hold.
const t = tempDir();
const SIZE = 3 * 1024 * 1024 + 7 * 512;
let disk: Uint8Array;
beforeAll(() => {
  standardRaw(t.file('src.raw'), SIZE, 21);
  disk = new Uint8Array(readFileSync(t.file('src.raw')));
});
afterAll(() => t.cleanup());

const CASES: [string, BochsBuild][] = [
  ['v2 64k extents', {}],
  ['v1 header', { version: 1 }],
  ['v2 4k extents, bitmap of 1 block', { extentSize: 4096, bitmapSize: 512 }],
  ['v2 512-byte extents', { extentSize: 512, bitmapSize: 1 }],
  ['v2 2M extents, 2-block bitmap, every bit set', { extentSize: 2 << 20, bitmapSize: 1000, allBits: true }],
  ['extents stored in guest order, spare catalog entries', { order: 'forward', spareEntries: 7 }],
  ['catalog after a 1 KiB header', { headerSize: 1024 }],
  ['disk size with a partial sector', { diskSize: SIZE - 100 }],
];

describe('bochs images read byte-identically to qemu-img', () => {
  it.each(CASES)('%s', async (name, opts) => {
    const f = t.file(`${name.replace(/\W+/g, '-')}.bochs`);
    writeFileSync(f, buildBochs(disk, opts));
    expect(JSON.parse(qemuImg('info', '--output=json', f)).format).toBe('bochs');
    await expectSameExport(f, t.file, name.replace(/\W+/g, '-'), [], ['-f', 'bochs']);
    await expectInfoMatches(f);
  });

  it('unaligned reads through the core equal the source', async () => {
    const rand = prng(3);
    for (const [name, opts] of [CASES[2]!, CASES[3]!]) {
      const dev = await openImage(new MemorySource(buildBochs(disk, opts), name), drivers, { codecs: portableCodecs });
      for (let i = 0; i < 60; i++) {
        const off = rand() % SIZE;
        const len = Math.min(1 + (rand() % 20000), SIZE - off);
        expect(Buffer.compare(await dev.read(off, len), disk.subarray(off, off + len)), `${name} at ${off}+${len}`).toBe(0);
      }
      await dev.close();
    }
  });

  it('random sparse disks read like qemu-img', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          sectors: fc.integer({ min: 1, max: 8 * 2048 }),
          seed: seedArb,
          regions: sparseRegions(900_000),
          extentSize: fc.constantFrom(512, 4096, 32768, 1 << 20),
          version: fc.constantFrom(1 as const, 2 as const),
        }),
        async (d) => {
          const { raw } = writeSectorDisk(t.file(`p${++n}.raw`), d);
          const img = `${raw}.bochs`;
          writeFileSync(img, buildBochs(new Uint8Array(readFileSync(raw)), { extentSize: d.extentSize, version: d.version }));
          await expectReadsLikeQemu(img, 'bochs');
        },
      ),
      { numRuns: 12, seed: 20261205 },
    );
  });
});

describe('bochs hostile headers', () => {
  const base = () => buildBochs(disk.subarray(0, 1 << 20), { extentSize: 4096 });
  it.each([
    ['catalog too large', (v: DataView) => v.setUint32(72, 0x100001, true), /catalog of 1048577 entries is too large/],
    ['catalog too small', (v: DataView) => v.setUint32(72, 3, true), /catalog of 3 entries is too small/],
    ['extent size 0', (v: DataView) => v.setUint32(80, 0, true), /extent size 0 must be at least 512/],
    ['extent size 5000', (v: DataView) => v.setUint32(80, 5000, true), /extent size 5000 is not a power of two/],
    ['extent size 16 MiB', (v: DataView) => v.setUint32(80, 16 << 20, true), /extent size 16777216 is too large/],
    ['catalog past the end', (v: DataView) => v.setUint32(68, 0x7fffffff, true), /truncated file/],
    ['disk size beyond 2^53', (v: DataView) => v.setBigUint64(88, 1n << 60n, true), /beyond the 2\^53 limit/],
  ])('%s gives a one-line typed error', async (name, edit, message) => {
    const b = base();
    edit(new DataView(b.buffer));
    const f = t.file(`bad-${name.replace(/\W+/g, '-')}.bochs`);
    writeFileSync(f, b);
    await expectOneLineFailure(['convert', '-f', 'bochs', '-O', 'raw', f, t.file('bad.raw')], message);
  });

  it('a catalog entry far beyond the file reads as zeros, as in QEMU; one beyond 2^53 is refused', async () => {
    const b = base();
    const v = new DataView(b.buffer);
    v.setUint32(512, 0x00ffffff, true); // extent 0 at about 8 GiB into the file
    const f = t.file('far.bochs');
    writeFileSync(f, b);
    await expectSameExport(f, t.file, 'far', [], ['-f', 'bochs']);
    v.setUint32(76, 0xffffffff, true); // a 4 GiB bitmap: entry · 512 · blocks passes 2^53
    v.setUint32(512, 0xfffffffe, true);
    writeFileSync(f, b);
    const r = await cli('convert', '-O', 'raw', f, t.file('bad.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/beyond the 2\^53 limit/);
  });

  it('other subtypes are not bochs images DiskFerry reads (nor does QEMU)', async () => {
    const b = base();
    b.set(new TextEncoder().encode('Undoable'), 48);
    const f = t.file('undoable.bochs');
    writeFileSync(f, b);
    expect(JSON.parse(await cliOk('info', '--output=json', f)).format).toBe('raw');
    expect(JSON.parse(qemuImg('info', '--output=json', f)).format).toBe('raw');
  });
});
