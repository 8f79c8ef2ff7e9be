import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { expectQemuReadsAsRaw, expectReadsLikeQemu, seedArb, sparseRegions, writeSectorDisk } from './helpers/property.ts';
import { qemuImg, tempDir } from './helpers/sys.ts';

// Random sizes (not only block multiples), sparse patterns, dynamic and static.
const t = tempDir('diskferry-vdip-');
afterAll(() => t.cleanup());

const disk = fc.record({
  sectors: fc.integer({ min: 1, max: 14 * 2048 }),
  isStatic: fc.boolean(),
  seed: seedArb,
  regions: sparseRegions(2_500_000),
});

let n = 0;

describe('vdi property tests', () => {
  it('what we write, qemu-img checks clean, sizes exactly and reads to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw, size } = writeSectorDisk(t.file(`p${++n}.raw`), d);
        const img = `${raw}.vdi`;
        await cliOk('convert', '-O', 'vdi', ...(d.isStatic ? ['-o', 'static=on'] : []), raw, img);
        expectQemuReadsAsRaw(img, 'vdi', raw, size, true);
      }),
      { numRuns: 10, seed: 20261125 },
    );
  });

  it('what qemu-img writes, we read to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw } = writeSectorDisk(t.file(`q${++n}.raw`), d);
        const img = `${raw}.vdi`;
        qemuImg('convert', '-f', 'raw', '-O', 'vdi', ...(d.isStatic ? ['-o', 'static=on'] : []), raw, img);
        await expectReadsLikeQemu(img);
      }),
      { numRuns: 10, seed: 20261126 },
    );
  });
});
