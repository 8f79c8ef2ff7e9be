import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { expectReadsLikeQemu, seedArb, sparseRegions, writeSparseDisk } from './helpers/property.ts';
import { qemuCompare, qemuImg, runStatus, tempDir } from './helpers/sys.ts';

// Random virtual sizes (not only powers of two), cluster sizes and sparse patterns.
const t = tempDir();
afterAll(() => t.cleanup());

const disk = fc.record({
  size: fc.integer({ min: 1, max: 6 * 1024 * 1024 }),
  clusterSize: fc.constantFrom(512, 4096, 65536, 2 * 1024 * 1024),
  compress: fc.boolean(),
  compat: fc.constantFrom('1.1', '0.10'),
  seed: seedArb,
  regions: sparseRegions(300_000),
});

type Disk = typeof disk extends fc.Arbitrary<infer T> ? T : never;

let n = 0;
function makeRaw(d: Disk): string {
  const file = t.file(`p${++n}.raw`);
  writeSparseDisk(file, d.size, d.regions, d.seed);
  return file;
}

describe('qcow2 property tests', () => {
  it('what qemu-img writes, we read to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const raw = makeRaw(d);
        const img = `${raw}.qemu.qcow2`;
        const args = d.compress ? ['-c'] : [];
        qemuImg('convert', '-f', 'raw', ...args, '-o', `cluster_size=${d.clusterSize},compat=${d.compat}`, '-O', 'qcow2', raw, img);
        await expectReadsLikeQemu(img);
      }),
      { numRuns: 12, seed: 20261125 },
    );
  });

  it('what we write, qemu-img checks clean and reads to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, fc.constantFrom('16', '8', '1', '64'), async (d, refcountBits) => {
        const raw = makeRaw(d);
        const img = `${raw}.ours.qcow2`;
        const args = d.compress ? ['-c'] : [];
        const rb = d.compat === '0.10' ? '16' : refcountBits;
        await cliOk(
          'convert',
          '-f',
          'raw',
          ...args,
          '-o',
          `cluster_size=${d.clusterSize},compat=${d.compat},refcount_bits=${rb}`,
          '-O',
          'qcow2',
          raw,
          img,
        );
        const check = runStatus('qemu-img', ['check', img]);
        expect(check.stdout + check.stderr).toContain('No errors were found');
        expect(check.status).toBe(0);
        expect(qemuCompare(raw, img, '-f', 'raw', '-F', 'qcow2')).toBe(0);
      }),
      { numRuns: 12, seed: 424242 },
    );
  });
});
