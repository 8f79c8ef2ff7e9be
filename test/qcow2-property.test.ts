import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { qemuCompare, qemuImg, runStatus, tempDir, writePatternedRaw } from './helpers/sys.ts';

// Random virtual sizes (not only powers of two), cluster sizes and sparse patterns.
const t = tempDir();
afterAll(() => t.cleanup());

const disk = fc.record({
  size: fc.integer({ min: 1, max: 6 * 1024 * 1024 }),
  clusterSize: fc.constantFrom(512, 4096, 65536, 2 * 1024 * 1024),
  compress: fc.boolean(),
  compat: fc.constantFrom('1.1', '0.10'),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  regions: fc.array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 1, max: 300_000 }) }), { maxLength: 6 }),
});

type Disk = typeof disk extends fc.Arbitrary<infer T> ? T : never;

let n = 0;
function makeRaw(d: Disk): string {
  const file = t.file(`p${++n}.raw`);
  const regions = d.regions.map((r) => ({ offset: Math.floor(r.at * d.size), length: r.length }));
  writePatternedRaw(file, d.size, regions, d.seed);
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
        const ours = `${raw}.ours.raw`;
        const ref = `${raw}.ref.raw`;
        await cliOk('convert', '-O', 'raw', img, ours);
        qemuImg('convert', '-O', 'raw', img, ref);
        expect(readFileSync(ours).equals(readFileSync(ref))).toBe(true);
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
        await cliOk('convert', '-f', 'raw', ...args, '-o', `cluster_size=${d.clusterSize},compat=${d.compat},refcount_bits=${rb}`, '-O', 'qcow2', raw, img);
        const check = runStatus('qemu-img', ['check', img]);
        expect(check.stdout + check.stderr).toContain('No errors were found');
        expect(check.status).toBe(0);
        expect(qemuCompare(raw, img, '-f', 'raw', '-F', 'qcow2')).toBe(0);
      }),
      { numRuns: 12, seed: 424242 },
    );
  });
});
