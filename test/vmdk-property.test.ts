import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { MemorySink } from '../src-core/io/bytes.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { vmdkDriver } from '../src-core/formats/vmdk/index.ts';
import { cliOk } from './helpers/cli.ts';
import { expectQemuReadsAsRaw, expectReadsLikeQemu, seedArb, sparseRegions, writeSectorDisk } from './helpers/property.ts';
import { qemuImg, tempDir } from './helpers/sys.ts';

// Random sizes (any sector count, not only grain multiples), sparse patterns, every subformat.
const t = tempDir('diskferry-vmdkp-');
afterAll(() => t.cleanup());

const SUBS = ['monolithicSparse', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat', 'streamOptimized'] as const;
const disk = fc.record({
  sectors: fc.integer({ min: 1, max: 12 * 2048 }),
  sub: fc.constantFrom(...SUBS),
  zeroed: fc.boolean(),
  seed: seedArb,
  regions: sparseRegions(2_000_000),
});

const opts = (d: { sub: string; zeroed: boolean }) =>
  `subformat=${d.sub}` + (d.zeroed && !d.sub.includes('Flat') && d.sub !== 'streamOptimized' ? ',zeroed_grain=on' : '');
let n = 0;

describe('vmdk property tests', () => {
  it('what we write, qemu-img checks clean, sizes exactly and reads to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw, size } = writeSectorDisk(t.file(`p${++n}.raw`), d);
        const img = t.file(`p${n}.vmdk`);
        await cliOk('convert', '-O', 'vmdk', '-o', opts(d), raw, img);
        // qemu-img checks sparse extents only.
        expectQemuReadsAsRaw(img, 'vmdk', raw, size, !d.sub.includes('Flat'));
      }),
      { numRuns: 12, seed: 20261127 },
    );
  });

  it('what qemu-img writes, we read to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw } = writeSectorDisk(t.file(`q${++n}.raw`), d);
        const img = t.file(`q${n}.vmdk`);
        qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', opts(d), raw, img);
        await expectReadsLikeQemu(img);
      }),
      { numRuns: 12, seed: 20261128 },
    );
  });

  it('the stream writer only ever appends (a sequential sink is enough)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (sectors, seed) => {
        const size = sectors * 512;
        const mem = new MemorySink('s.vmdk');
        let end = 0;
        const sink = {
          name: 's.vmdk',
          write: async (offset: number, data: Uint8Array) => {
            expect(offset).toBe(end);
            end += data.length;
            await mem.write(offset, data);
          },
          close: () => mem.close(),
        };
        const w = await vmdkDriver.create!(sink, {
          virtualSize: size,
          options: { subformat: 'streamOptimized' },
          codecs: nodeCodecs,
          filename: 's.vmdk',
        });
        let x = seed;
        for (let off = 0; off < size; off += w.granularity) {
          const len = Math.min(w.granularity, size - off);
          x = (x * 1103515245 + 12345) % 2 ** 31;
          if (x % 3 === 0) continue;
          await w.write(off, new Uint8Array(len).fill((x % 255) + 1));
        }
        await w.finish();
        expect(end % 512).toBe(0);
        expect(mem.bytes.subarray(end - 512).every((b) => b === 0)).toBe(true);
      }),
      { numRuns: 20, seed: 20261129 },
    );
  });
});
