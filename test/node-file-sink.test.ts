import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeFileSink } from '../cli/nodeFiles.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'df-sink-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes that differ at every position (a piece written twice or skipped shows). */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >>> 8)) & 0xff;
  return b;
}

describe('NodeFileSink', () => {
  it('writes a run larger than one write(2) piece whole, at its offset, beside runs written at once', async () => {
    const file = path.join(dir, 'pieces.bin');
    const sink = await NodeFileSink.create(file);
    // 1 MiB + 3 bytes: four whole 256 KiB pieces and a short last one, at an odd offset.
    const big = pattern(1024 * 1024 + 3, 7);
    const small = pattern(4096, 99);
    await Promise.all([sink.write(5, big), sink.write(5 + big.length + 1000, small)]);
    await sink.close();
    const got = readFileSync(file);
    expect(got.length).toBe(5 + big.length + 1000 + small.length);
    expect(Buffer.compare(got.subarray(5, 5 + big.length), Buffer.from(big))).toBe(0);
    expect(got.subarray(0, 5).every((b) => b === 0)).toBe(true);
    expect(got.subarray(5 + big.length, 5 + big.length + 1000).every((b) => b === 0)).toBe(true);
    expect(Buffer.compare(got.subarray(5 + big.length + 1000), Buffer.from(small))).toBe(0);
  });
});
