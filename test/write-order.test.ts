import { describe, expect, it } from 'vitest';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { drivers } from '../src-core/formats/registry.ts';
import { MemorySink } from '../src-core/io/bytes.ts';

// The ImageWriter contract (image/writeOrder.ts): aligned, increasing offsets, inside the disk.
// A caller that breaks it must get an error, never a silently wrong image.
const SIZE = 8 * 1024 * 1024;
/** Writers that cannot be created without options (a LUKS volume needs its secret). */
const NEEDS: Record<string, Record<string, string>> = { luks: { 'key-secret': 's', 'iter-time': '1' } };
const secrets = new Map([['s', new TextEncoder().encode('pw')]]);

describe('every writer refuses writes out of order, unaligned or past the end', () => {
  for (const d of drivers.filter((x) => x.create)) {
    it(d.name, async () => {
      const make = () => d.create!(new MemorySink(`w.${d.name}`), { virtualSize: SIZE, options: { ...NEEDS[d.name] }, secrets, codecs: nodeCodecs, filename: `w.${d.name}` });
      const w = await make();
      const g = w.granularity;
      await w.write(g, new Uint8Array(g).fill(1));
      await expect(w.write(0, new Uint8Array(g).fill(2))).rejects.toThrow(RangeError);
      const w2 = await make();
      if (g > 1) await expect(w2.write(1, new Uint8Array(g))).rejects.toThrow(RangeError);
      await expect(w2.write(SIZE, new Uint8Array(g).fill(3))).rejects.toThrow(RangeError);
    });
  }
});
