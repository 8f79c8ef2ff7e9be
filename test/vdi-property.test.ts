import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { expectReadsLikeQemu, seedArb, sparseRegions, writeSparseDisk } from './helpers/property.ts';
import { qemuCompare, qemuImg, runStatus, tempDir } from './helpers/sys.ts';

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
        const size = d.sectors * 512;
        const raw = t.file(`p${++n}.raw`);
        writeSparseDisk(raw, size, d.regions, d.seed);
        const img = `${raw}.vdi`;
        await cliOk('convert', '-O', 'vdi', ...(d.isStatic ? ['-o', 'static=on'] : []), raw, img);
        const check = runStatus('qemu-img', ['check', img]);
        expect(check.status).toBe(0);
        expect(JSON.parse(qemuImg('info', '--output=json', img))['virtual-size']).toBe(size);
        expect(qemuCompare(raw, img, '-f', 'raw', '-F', 'vdi')).toBe(0);
      }),
      { numRuns: 10, seed: 20261125 },
    );
  });

  it('what qemu-img writes, we read to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const size = d.sectors * 512;
        const raw = t.file(`q${++n}.raw`);
        writeSparseDisk(raw, size, d.regions, d.seed);
        const img = `${raw}.vdi`;
        qemuImg('convert', '-f', 'raw', '-O', 'vdi', ...(d.isStatic ? ['-o', 'static=on'] : []), raw, img);
        await expectReadsLikeQemu(img);
      }),
      { numRuns: 10, seed: 20261126 },
    );
  });
});
