import { describe, expect, it } from 'vitest';
import type { ByteSink } from '../src-core/io/bytes.ts';
import { SinkBuffer } from '../src-core/io/sinkBuffer.ts';
import { prng } from './helpers/sys.ts';

/**
 * A sink that takes its time like a File System Access stream: each write reads its bytes
 * only when it completes, a few ticks later, so a buffer reused too early shows up as wrong
 * bytes. It records how many writes were outstanding at once.
 */
class SlowSink implements ByteSink {
  readonly name = 'slow';
  readonly file = new Uint8Array(1 << 20);
  calls: { offset: number; length: number }[] = [];
  outstanding = 0;
  maxOutstanding = 0;
  failAt = -1;
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.calls.push({ offset, length: data.length });
    this.outstanding++;
    this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding);
    await new Promise((r) => setImmediate(r));
    this.outstanding--;
    if (offset === this.failAt) throw new Error('disk full');
    this.file.set(data, offset);
  }
  async close(): Promise<void> {}
}

/** The same, taking given-away bytes through writeOwned (as the browser's save-file sink does). */
class SlowOwningSink extends SlowSink {
  owned = 0;
  async writeOwned(offset: number, data: Uint8Array): Promise<void> {
    this.owned++;
    await this.write(offset, data);
  }
}

/** Writes pieces in file order, some contiguous and some not, some owned and some reused. */
async function scenario(buffer: SinkBuffer, expected: Uint8Array, seed: number): Promise<void> {
  const rand = prng(seed);
  const scratch = new Uint8Array(64 * 1024); // reused by the caller after every write()
  let pos = 0;
  while (pos < expected.length - 70 * 1024) {
    pos += rand() % 3 === 0 ? (rand() % 4) * 512 : 0; // sometimes a gap
    const len = 512 * (1 + (rand() % 120));
    const piece = expected.subarray(pos, pos + len);
    if (rand() % 2) {
      await buffer.writeOwned(pos, piece.slice());
    } else {
      scratch.set(piece);
      await buffer.write(pos, scratch.subarray(0, len));
      scratch.fill(0xee); // the caller reuses its buffer at once
    }
    pos += len;
  }
  await buffer.flush();
}

describe('SinkBuffer', () => {
  for (const [inFlight, owning] of [
    [1, false],
    [3, false],
    [1, true],
    [3, true],
  ] as const) {
    it(`coalesces writes and writes the right bytes with ${inFlight} write(s) in flight${owning ? ', into a sink that takes owned bytes' : ''}`, async () => {
      const rand = prng(5);
      const expected = new Uint8Array(1 << 20).map(() => rand() & 0xff);
      const sink = owning ? new SlowOwningSink() : new SlowSink();
      const buffer = new SinkBuffer(sink, 32 * 1024, inFlight);
      await scenario(buffer, expected, 11);
      // Every byte written matches; gaps stay zero.
      const wrong = sink.calls.filter(
        (c) => !Buffer.from(sink.file.subarray(c.offset, c.offset + c.length)).equals(expected.subarray(c.offset, c.offset + c.length)),
      );
      expect(wrong).toEqual([]);
      expect(sink.outstanding).toBe(0);
      expect(sink.maxOutstanding).toBeLessThanOrEqual(inFlight);
      if (inFlight > 1) expect(sink.maxOutstanding).toBeGreaterThan(1);
      // Runs reach the sink merged: far fewer calls than pieces of ≤ 60 KiB.
      expect(sink.calls.length).toBeLessThan(expected.length / (16 * 1024));
      if (sink instanceof SlowOwningSink) expect(sink.owned).toBeGreaterThan(0);
    });
  }

  it('a queued write that fails makes flush() fail', async () => {
    const sink = new SlowSink();
    sink.failAt = 0;
    const buffer = new SinkBuffer(sink, 4096, 3);
    await buffer.write(0, new Uint8Array(4096).fill(1)); // queued, will fail
    await expect(buffer.flush()).rejects.toThrow('disk full');
  });
  it('takes its queue depth from the sink, and a run over bytes still in flight waits for them (writes may land in any order)', async () => {
    // A thread-pool sink: each write lands after a random number of ticks, so two writes in
    // flight to the same bytes could land in either order.
    const rand = prng(9);
    const file = new Uint8Array(128 * 1024);
    /** The rounds whose write to the first 4 KiB landed, in landing order. */
    const landedAtZero: number[] = [];
    let inFlight = 0;
    let most = 0;
    const sink: ByteSink = {
      name: 'pool',
      queueDepth: 4,
      async write(offset, data) {
        const copy = data.slice();
        inFlight++;
        most = Math.max(most, inFlight);
        for (let t = rand() % 6; t > 0; t--) await new Promise((r) => setImmediate(r));
        file.set(copy, offset);
        if (offset === 0) landedAtZero.push(copy[0]!);
        inFlight--;
      },
      async close() {},
    };
    const buffer = new SinkBuffer(sink, 4096);
    // Each round rewrites the first 4 KiB (a table written again and again), then a new place.
    for (let round = 1; round <= 20; round++) {
      await buffer.write(0, new Uint8Array(4096).fill(round));
      await buffer.write(round * 4096, new Uint8Array(4096).fill(round));
    }
    await buffer.flush();
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
    expect(landedAtZero).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(file.subarray(0, 4096).every((b) => b === 20)).toBe(true);
    for (let round = 1; round <= 20; round++) expect(file[round * 4096]).toBe(round);
  });

  it('passes a read window on as one write when its clusters arrive as views of it (up to 16 MiB), and copies stay in 4 MiB runs', async () => {
    const calls: { offset: number; length: number; sameBuffer: boolean }[] = [];
    const window = new Uint8Array(20 * 1024 * 1024);
    const sink: ByteSink = {
      name: 'count',
      async write(offset, data) {
        calls.push({ offset, length: data.length, sameBuffer: data.buffer === window.buffer });
      },
      async writeOwned(offset, data) {
        calls.push({ offset, length: data.length, sameBuffer: data.buffer === window.buffer });
      },
      async close() {},
    };
    const buffer = new SinkBuffer(sink);
    const cluster = 64 * 1024;
    for (let pos = 0; pos < window.length; pos += cluster) await buffer.writeOwned(pos, window.subarray(pos, pos + cluster));
    const copied = new Uint8Array(cluster);
    for (let pos = 0; pos < 6 * 1024 * 1024; pos += cluster) await buffer.write(window.length + pos, copied);
    await buffer.flush();
    expect(calls).toEqual([
      { offset: 0, length: 16 * 1024 * 1024, sameBuffer: true },
      { offset: 16 * 1024 * 1024, length: 4 * 1024 * 1024, sameBuffer: true },
      { offset: window.length, length: 4 * 1024 * 1024, sameBuffer: false },
      { offset: window.length + 4 * 1024 * 1024, length: 2 * 1024 * 1024, sameBuffer: false },
    ]);
  });
});
