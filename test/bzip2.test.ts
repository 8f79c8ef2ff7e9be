import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { prng, patternChunk } from './helpers/sys.ts';
import { Bzip2Error, bunzip2Stream, bunzip2Sync } from '../src-core/codecs/bzip2.ts';

// The bzip2 decoder (src-core/codecs/bzip2.ts) against the bzip2 tool, on data of every kind:
// text, random bytes, long runs (the run-length stages), and streams bzip2 -1 … -9 write.
const bzip2 = (data: Uint8Array, level = 9) =>
  new Uint8Array(execFileSync('bzip2', [`-${level}`, '-c'], { input: data, maxBuffer: 1 << 28 }));

function sample(len: number, seed: number): Uint8Array {
  const out = patternChunk(len, prng(seed));
  // Runs of every length around the 4-byte threshold and past 255 repeats.
  for (let at = 1000, n = 1; at + n < len && n < 4000; at += n + 1000, n = n * 2 + 1) out.fill(7 + (n & 3), at, at + n);
  return out;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return new Uint8Array(Buffer.concat(parts));
}

async function* chunked(b: Uint8Array, size: number) {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

describe('bzip2 decoder', () => {
  it.each([1, 5, 9])('level %i, sync and streamed in odd chunks, equals the input', async (level) => {
    const data = sample(1_300_000 + level, level);
    const z = bzip2(data, level);
    expect(Buffer.compare(bunzip2Sync(z, data.length), data)).toBe(0);
    expect(Buffer.compare(await collect(bunzip2Stream(chunked(z, 7919))), data)).toBe(0);
  });

  it('a million equal bytes, empty input, and concatenated streams', async () => {
    const same = new Uint8Array(1_000_000).fill(0x41);
    expect(Buffer.compare(bunzip2Sync(bzip2(same), same.length), same)).toBe(0);
    expect(bunzip2Sync(bzip2(new Uint8Array(0)), 0)).toHaveLength(0);
    const a = sample(200_000, 1);
    const b = sample(300_000, 2);
    const both = new Uint8Array(Buffer.concat([bzip2(a, 1), bzip2(b, 3)]));
    expect(Buffer.compare(await collect(bunzip2Stream(chunked(both, 65536))), Buffer.concat([a, b]))).toBe(0);
  });

  it('damaged and truncated data give a Bzip2Error, never a hang or a crash', async () => {
    const data = sample(400_000, 9);
    const z = bzip2(data);
    expect(() => bunzip2Sync(z, data.length - 1)).toThrow(Bzip2Error);
    await expect(collect(bunzip2Stream(chunked(z.subarray(0, z.length - 100), 4096)))).rejects.toThrow(/ends early/);
    expect(() => bunzip2Sync(new Uint8Array([1, 2, 3, 4, 5]), 10)).toThrow(/not a bzip2 stream/);
    const rand = prng(77);
    let errors = 0;
    for (let i = 0; i < 300; i++) {
      const bad = z.slice();
      for (let k = 0; k < 3; k++) bad[4 + (rand() % (bad.length - 4))] ^= 1 << (rand() % 8);
      try {
        bunzip2Sync(bad, data.length);
      } catch (e) {
        expect(e).toBeInstanceOf(Bzip2Error);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(250);
  });
});
