import { describe, expect, it } from 'vitest';
import { pooledCodecs, type DeflateBridge, type DeflateReply } from '../src-core/codecs/deflatePool.ts';
import { portableCodecs } from '../src-core/codecs/portable.ts';
import { QCOW_DEFLATE, type DeflateParams } from '../src-core/codecs/types.ts';
import { prng } from './helpers/sys.ts';

/** A stand-in worker: answers after a random delay with "compressed" = the job reversed. */
class FakeBridge implements DeflateBridge {
  inFlight = 0;
  maxInFlight = 0;
  batches: number[] = [];
  terminated = false;
  constructor(private readonly rand: () => number) {}
  async deflate(jobs: Uint8Array[], _p: DeflateParams): Promise<DeflateReply[]> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.batches.push(jobs.length);
    await new Promise((r) => setTimeout(r, this.rand() % 5));
    this.inFlight--;
    return jobs.map((j) => ({ out: j.slice().reverse(), spare: j }));
  }
  terminate(): void {
    this.terminated = true;
  }
}

describe('the compression pool dispatcher', () => {
  it('answers every job with its own result, in batches, within the in-flight limit', async () => {
    const rand = prng(3);
    const bridges = [new FakeBridge(rand), new FakeBridge(rand)];
    let started = 0;
    const pool = pooledCodecs(() => (started++, bridges), portableCodecs, 2, 8);
    expect(started).toBe(0); // no workers until the first deflate
    expect(pool.workers).toBe(0);
    const jobs = Array.from({ length: 300 }, (_, i) => new Uint8Array([i & 0xff, i >> 8, 7, 9]));
    const results = await Promise.all(jobs.map((j) => pool.deflateRaw(j, QCOW_DEFLATE)));
    expect(started).toBe(1);
    results.forEach((r, i) => expect(Array.from(r)).toEqual(Array.from(jobs[i]!).reverse()));
    for (const b of bridges) {
      expect(b.maxInFlight).toBeLessThanOrEqual(2);
      expect(Math.max(...b.batches)).toBeLessThanOrEqual(8);
      expect(b.batches.length).toBeGreaterThan(0); // both workers got work
    }
    // Jobs handed over together leave as full batches, not one message per cluster.
    const all = bridges.flatMap((b) => b.batches);
    expect(all.length).toBeLessThan(300 / 4);
    // The caller's buffers are never handed to a worker (they may be views of a read window).
    expect(jobs.every((j) => j.byteLength === 4)).toBe(true);
    await pool.close();
    expect(bridges.every((b) => b.terminated)).toBe(true);
  });

  it('rejects the jobs of a failed batch and keeps serving the rest', async () => {
    let calls = 0;
    const flaky: DeflateBridge = {
      async deflate(jobs) {
        if (calls++ === 0) throw new Error('worker died');
        return jobs.map((j) => ({ out: j }));
      },
      terminate() {},
    };
    const pool = pooledCodecs([flaky], portableCodecs, 1, 2);
    const a = pool.deflateRaw(new Uint8Array([1]), QCOW_DEFLATE);
    const b = pool.deflateRaw(new Uint8Array([2]), QCOW_DEFLATE);
    const c = pool.deflateRaw(new Uint8Array([3]), QCOW_DEFLATE);
    await expect(a).rejects.toThrow('worker died');
    await expect(b).rejects.toThrow('worker died');
    expect(Array.from(await c)).toEqual([3]);
    await pool.close();
    await expect(pool.deflateRaw(new Uint8Array([4]), QCOW_DEFLATE)).rejects.toThrow(/closed/);
  });
});

describe('zlib streams on the pool (VMDK stream grains, cloop blocks)', () => {
  it('are zlib streams (valid header, the input inflated back) at levels 6 and 9, for text and for incompressible blocks (which fall back to the base codec)', async () => {
    const { createNodeDeflatePool } = await import('../cli/pool/pool.ts');
    const { nodeCodecs } = await import('../cli/nodeCodecs.ts');
    const zlib = await import('node:zlib');
    const pool = createNodeDeflatePool(nodeCodecs, { engine: 'wasm', workers: 2 });
    try {
      const rand = prng(11);
      const text = new TextEncoder().encode('grain of a virtual disk '.repeat(2731)).subarray(0, 65536);
      const noise = new Uint8Array(65536).map(() => rand() & 0xff);
      for (const level of [6, 9]) {
        for (const data of [text, noise]) {
          const out = await pool.zlibDeflate(data, level);
          expect(zlib.inflateSync(out)).toEqual(Buffer.from(data));
          expect(out[0]).toBe(0x78);
          expect((out[0]! * 256 + out[1]!) % 31).toBe(0);
        }
        const tiny = await pool.zlibDeflate(text, level);
        expect(tiny.length).toBeLessThan(text.length / 10);
      }
      expect(pool.workers).toBe(2);
    } finally {
      await pool.close();
    }
  });
  it("write the page's bytes on the wasm engine (libdeflate) and Node's zlib's on the native one, for zlib streams and qcow clusters", async () => {
    const { createNodeDeflatePool } = await import('../cli/pool/pool.ts');
    const { nodeCodecs } = await import('../cli/nodeCodecs.ts');
    const { WasmDeflater } = await import('../src-core/codecs/deflate-wasm/loader.ts');
    const { zlibStreamParams } = await import('../src-core/codecs/types.ts');
    const { readFileSync } = await import('node:fs');
    const zlib = await import('node:zlib');
    const wasm = await WasmDeflater.create(readFileSync('src-core/codecs/deflate-wasm/deflate.wasm'));
    // Numbers as text: matches at many distances, where the two engines choose differently.
    const rand = prng(3);
    const text = new TextEncoder().encode(Array.from({ length: 20000 }, () => `${rand() % 1000} `).join('')).subarray(0, 65536);
    const expected = {
      wasm: { stream: wasm.deflate(text, zlibStreamParams(6), true), cluster: wasm.deflate(text, QCOW_DEFLATE) },
      native: {
        stream: zlib.deflateSync(text, { level: 6 }),
        cluster: zlib.deflateRawSync(text, { level: 6, windowBits: 12, memLevel: 9 }),
      },
    };
    expect(Buffer.from(expected.wasm.stream).equals(expected.native.stream)).toBe(false); // else this test could not tell them apart
    for (const engine of ['wasm', 'native'] as const) {
      const pool = createNodeDeflatePool(nodeCodecs, { engine, workers: 1 });
      try {
        expect(Buffer.from(await pool.zlibDeflate(text, 6)).equals(expected[engine].stream)).toBe(true);
        expect(Buffer.from(await pool.deflateRaw(text, QCOW_DEFLATE)).equals(expected[engine].cluster)).toBe(true);
      } finally {
        await pool.close();
      }
    }
  });
});
