import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { cliOk } from './helpers/cli.ts';
import { expectQemuReadsAsRaw, expectReadsLikeQemu, seedArb, sparseRegions, writeSectorDisk } from './helpers/property.ts';
import { qemuImg, tempDir } from './helpers/sys.ts';
import { MemorySource } from '../src-core/io/bytes.ts';
import { VhdxDevice } from '../src-core/formats/vhdx/reader.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';

// Random sizes (sector multiples, rarely block multiples), block sizes, sparse patterns, both subformats.
const t = tempDir('diskferry-vhdxp-');
afterAll(() => t.cleanup());

const disk = fc.record({
  sectors: fc.integer({ min: 1, max: 20 * 2048 }),
  blockMiB: fc.constantFrom(1, 2, 4, 8),
  fixed: fc.boolean(),
  seed: seedArb,
  regions: sparseRegions(2_500_000),
});

let n = 0;
const subformat = (fixed: boolean) => (fixed ? 'subformat=fixed' : 'subformat=dynamic');

const makeRaw = (d: { sectors: number; seed: number; regions: { at: number; length: number }[] }) =>
  writeSectorDisk(t.file(`p${++n}.raw`), d);

describe('vhdx property tests', () => {
  it('what we write, qemu-img checks clean, sizes exactly and reads to the same bytes; unaligned reads agree', async () => {
    await fc.assert(
      fc.asyncProperty(
        disk,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 3_000_000 })), { minLength: 3, maxLength: 6 }),
        async (d, reads) => {
          const { raw, size } = makeRaw(d);
          const img = `${raw}.vhdx`;
          await cliOk('convert', '-O', 'vhdx', '-o', `${subformat(d.fixed)},block_size=${d.blockMiB}M`, raw, img);
          expectQemuReadsAsRaw(img, 'vhdx', raw, size, true);
          // Unaligned reads straight through the core, against the raw bytes.
          const bytes = readFileSync(raw);
          const dev = await VhdxDevice.open(new MemorySource(new Uint8Array(readFileSync(img)), img), { codecs: nodeCodecs });
          for (const [at, len] of reads) {
            const off = at % size;
            const l = Math.min(len, size - off);
            expect(Buffer.from(await dev.read(off, l)).equals(bytes.subarray(off, off + l))).toBe(true);
          }
        },
      ),
      { numRuns: 10, seed: 20261125 },
    );
  });

  it('what qemu-img writes, we read to the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async (d) => {
        const { raw } = makeRaw(d);
        const img = `${raw}.vhdx`;
        qemuImg('convert', '-f', 'raw', '-O', 'vhdx', '-o', `${subformat(d.fixed)},block_size=${d.blockMiB}M`, raw, img);
        await expectReadsLikeQemu(img);
      }),
      { numRuns: 10, seed: 20261126 },
    );
  });
});
