import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { expectQemuReadsAsRaw, expectReadsLikeQemu, seedArb, sparseRegions, writeSectorDisk } from './helpers/property.ts';
import { qemuImg, run, tempDir } from './helpers/sys.ts';

// Random sizes (sector multiples, so raw and VHD agree on the size), sparse patterns, both
// subformats: the exact size must survive, whatever CHS makes of it.
const t = tempDir('diskferry-vpcp-');
afterAll(() => t.cleanup());

const disk = fc.record({
  sectors: fc.integer({ min: 1, max: 14 * 2048 }),
  fixed: fc.boolean(),
  seed: seedArb,
  regions: sparseRegions(2_500_000),
});

let n = 0;

describe('vpc property tests', () => {
  it('what we write keeps its exact size for qemu-img and libvhdi, and reads back identically', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw, size } = writeSectorDisk(t.file(`p${++n}.raw`), d);
        const img = `${raw}.vhd`;
        await cliOk('convert', '-O', 'vpc', ...(d.fixed ? ['-o', 'subformat=fixed'] : []), raw, img);
        expectQemuReadsAsRaw(img, 'vpc', raw, size, false); // qemu-img cannot check vpc
        expect(run('vhdiinfo', [img])).toContain(`(${size} bytes)`);
        const back = `${raw}.back`;
        await cliOk('convert', '-O', 'raw', img, back);
        expect(readFileSync(back).equals(readFileSync(raw))).toBe(true);
      }),
      { numRuns: 10, seed: 20261125 },
    );
  });

  it('what qemu-img writes, we read to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw } = writeSectorDisk(t.file(`q${++n}.raw`), d);
        const img = `${raw}.vhd`;
        qemuImg('convert', '-f', 'raw', '-O', 'vpc', ...(d.fixed ? ['-o', 'subformat=fixed'] : []), raw, img);
        await expectReadsLikeQemu(img, 'vpc');
      }),
      { numRuns: 10, seed: 20261126 },
    );
  });
});
