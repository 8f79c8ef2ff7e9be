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
      const make = () =>
        d.create!(new MemorySink(`w.${d.name}`), {
          virtualSize: SIZE,
          options: { ...NEEDS[d.name] },
          secrets,
          codecs: nodeCodecs,
          filename: `w.${d.name}`,
        });
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

// Whoever opens a sink closes it (io/bytes.ts ByteSink): finish() leaves the sink it was given
// open for its caller, and closes the companion files it created itself through resolver.create().
class RecordingSink extends MemorySink {
  /** Set by the test once finish() has returned: a close() before then is the writer's. */
  ownerMayClose = false;
  closedByWriter = false;
  override async close(): Promise<void> {
    if (!this.ownerMayClose) this.closedByWriter = true;
    await super.close();
  }
}

/** Every create option that changes which writer (or which files) a format uses. */
function variants(d: (typeof drivers)[number]): { label: string; options: Record<string, string>; compress?: boolean }[] {
  const out: { label: string; options: Record<string, string>; compress?: boolean }[] = [{ label: 'default', options: {} }];
  for (const o of d.createOptions ?? []) {
    if (o.name === 'subformat') for (const v of o.values ?? []) out.push({ label: `subformat=${v}`, options: { subformat: v } });
    if (o.name === 'static') out.push({ label: 'static=on', options: { static: 'on' } });
  }
  if (d.compression)
    out.push({ label: '-c', options: d.compression.subformat ? { subformat: d.compression.subformat } : {}, compress: true });
  return out;
}

describe('finish() never closes the sink it was given, and closes the companions it created', () => {
  for (const d of drivers.filter((x) => x.create)) {
    for (const v of variants(d)) {
      it(`${d.name} ${v.label}`, async () => {
        const name = `w.${d.name}`;
        const sink = new RecordingSink(name);
        const companions: RecordingSink[] = [];
        const resolver = {
          open: async () => {
            throw new Error('no files to open here');
          },
          create: async (n: string) => {
            const s = new RecordingSink(n);
            companions.push(s);
            return s;
          },
        };
        const w = await d.create!(sink, {
          virtualSize: SIZE,
          options: { ...NEEDS[d.name], ...v.options },
          compress: v.compress,
          secrets,
          codecs: nodeCodecs,
          filename: name,
          resolver,
        });
        const g = w.granularity;
        await w.write(0, new Uint8Array(g).fill(1));
        await w.finish();
        expect(sink.closedByWriter, 'the writer closed the sink its caller opened').toBe(false);
        expect(sink.bytes.length).toBeGreaterThan(0);
        for (const c of companions) expect(c.closed, `companion ${c.name} left open by finish()`).toBe(true);
        sink.ownerMayClose = true;
        await sink.close();
      });
    }
  }
});
