import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { seedArb, sparseRegions, writeSparseDisk } from './helpers/property.ts';
import { qemuCompare, qemuImg, run, tempDir } from './helpers/sys.ts';

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
        const size = d.sectors * 512;
        const raw = t.file(`p${++n}.raw`);
        writeSparseDisk(raw, size, d.regions, d.seed);
        const img = `${raw}.vhd`;
        await cliOk('convert', '-O', 'vpc', ...(d.fixed ? ['-o', 'subformat=fixed'] : []), raw, img);
        expect(JSON.parse(qemuImg('info', '--output=json', '-f', 'vpc', img))['virtual-size']).toBe(size);
        expect(qemuCompare(raw, img, '-f', 'raw', '-F', 'vpc')).toBe(0);
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
        const size = d.sectors * 512;
        const raw = t.file(`q${++n}.raw`);
        writeSparseDisk(raw, size, d.regions, d.seed);
        const img = `${raw}.vhd`;
        qemuImg('convert', '-f', 'raw', '-O', 'vpc', ...(d.fixed ? ['-o', 'subformat=fixed'] : []), raw, img);
        const ours = `${raw}.ours`;
        const ref = `${raw}.ref`;
        await cliOk('convert', '-O', 'raw', img, ours);
        qemuImg('convert', '-f', 'vpc', '-O', 'raw', img, ref);
        expect(readFileSync(ours).equals(readFileSync(ref))).toBe(true);
      }),
      { numRuns: 10, seed: 20261126 },
    );
  });
});
