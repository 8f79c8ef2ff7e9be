import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drivers } from '../src-core/formats/registry.ts';
import { tempDir } from './helpers/sys.ts';
import { CORPUS } from './fuzz/corpus.ts';
import { exercise } from './fuzz/exercise.ts';
import { FUZZ_MAKERS, type FuzzSeedImage } from './fuzz/fixtures.ts';
import { mutate, PatchedBytes } from './fuzz/mutate.ts';

// Seeded mutations of images qemu-img made, for every registered format. Each case must end
// quickly in success or a typed one-line error: never a crash, a hang or an unbounded allocation.
// `npm run fuzz` raises the count (FUZZ_CASES) and moves the seeds (FUZZ_SEED).
const CASES = Number(process.env.FUZZ_CASES ?? 2000);
const SEED_BASE = Number(process.env.FUZZ_SEED ?? 1);
const CASE_MS = 2000;
const MAX_ARRAY_BUFFERS = 768 * 1024 * 1024;

const t = tempDir('diskferry-fuzz-');
const seeds = new Map<string, FuzzSeedImage[]>();
afterAll(() => t.cleanup());

beforeAll(async () => {
  for (const d of drivers) {
    const make = FUZZ_MAKERS[d.name];
    if (make) seeds.set(d.name, await make(t.file));
  }
});

interface Failure {
  format: string;
  variant: string;
  seed: number;
  mutation: string;
  error: string;
}

async function runCase(format: string, img: FuzzSeedImage, seed: number): Promise<Failure | undefined> {
  const { bytes, mutation } = mutate(img.bytes, seed, img.hot);
  const started = performance.now();
  // Alternate between trusting the probe and forcing the format: both paths must be safe.
  // Unlocking an encrypted image costs PBKDF2 rounds: one case in 16 does (the rest stop at a typed NeedsPasswordError).
  const outcome = await exercise(bytes, `fuzz.${format}`, seed % 2 ? format : undefined, Math.floor(seed / 2) % 16 === 0);
  const ms = performance.now() - started;
  const fail = (error: string): Failure => ({ format, variant: img.variant, seed, mutation: `${mutation.kind} ${mutation.detail}`, error });
  if (ms > CASE_MS) return fail(`took ${Math.round(ms)} ms`);
  if (process.memoryUsage().arrayBuffers > MAX_ARRAY_BUFFERS) return fail('array buffers above the memory bound');
  if (!outcome.ok && !outcome.typed) {
    const e = outcome.error as Error;
    return fail(`${e?.name}: ${e?.message} ${(e?.stack ?? '').split('\n').slice(1, 3).join(' ')}`);
  }
  return undefined;
}

describe('fuzzing every format', () => {
  it('every registered format has fuzz seed images', () => {
    expect(drivers.map((d) => d.name).filter((n) => !FUZZ_MAKERS[n])).toEqual([]);
  });

  it.each(drivers.map((d) => d.name).filter((n) => FUZZ_MAKERS[n]))(`%s: ${CASES} mutated images`, async (format) => {
    const imgs = seeds.get(format)!;
    expect(imgs.length).toBeGreaterThan(0);
    // The seed images themselves must open cleanly, or the mutations prove nothing.
    for (const img of imgs)
      expect(await exercise(new PatchedBytes(img.bytes), `fuzz.${format}`, format), `${format}/${img.variant}`).toEqual({ ok: true });
    const failures: Failure[] = [];
    for (let i = 0; i < CASES && failures.length < 5; i++) {
      const f = await runCase(format, imgs[i % imgs.length]!, SEED_BASE + i);
      if (f) failures.push(f);
    }
    expect(failures).toEqual([]);
  });

  it.each(CORPUS.map((c) => [`${c.format}/${c.variant}#${c.seed}`, c] as const))('regression %s', async (_n, c) => {
    const img = seeds.get(c.format)?.find((s) => s.variant === c.variant);
    expect(img, `seed image ${c.format}/${c.variant}`).toBeDefined();
    expect(`${mutate(img!.bytes, c.seed, img!.hot).mutation.kind} ${mutate(img!.bytes, c.seed, img!.hot).mutation.detail}`).toBe(
      c.mutation,
    );
    expect(await runCase(c.format, img!, c.seed)).toBeUndefined();
  });
});
