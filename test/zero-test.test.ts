import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAllZero } from '../src-core/io/struct.ts';
import { wasmZeroPrefix } from '../src-core/io/zeroTest.ts';

/** isAllZero tests 64 bytes per step: a single non-zero byte anywhere, at any alignment, must be seen. */
describe('isAllZero', () => {
  it('sees one non-zero byte at every position of an unaligned, odd-length view', () => {
    const buf = new Uint8Array(300);
    for (const start of [0, 1, 2, 3, 4, 8]) {
      for (const len of [0, 1, 3, 4, 63, 64, 65, 127, 128, 200, 291]) {
        const view = buf.subarray(start, start + len);
        expect(isAllZero(view)).toBe(true);
        for (let i = 0; i < len; i++) {
          view[i] = 0x80;
          expect(isAllZero(view), `start ${start} len ${len} byte ${i}`).toBe(false);
          view[i] = 0;
        }
      }
    }
  });
  it('agrees with a byte-by-byte test on random views', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8192 }), fc.nat(7), fc.nat(8191), (bytes, start, at) => {
        const b = new Uint8Array(bytes.length + 8);
        b.set(
          bytes.map((x) => (x % 5 === 0 ? x : 0)),
          start,
        );
        if (at < b.length && bytes.length % 3 === 0) b[at] = 0;
        const view = b.subarray(start, start + bytes.length);
        expect(isAllZero(view)).toBe(view.every((x) => x === 0));
      }),
      { numRuns: 2000 },
    );
  });
});

// Units longer than 2 KiB: a JS prefix of 512 bytes, then wasm SIMD for the rest (io/zeroTest.ts).
// Every boundary of the 64-byte blocks, the prefix and the 64 KiB pieces copied into wasm.
describe('isAllZero past the JS prefix (wasm SIMD)', () => {
  it('runs the wasm SIMD test here (Node has WebAssembly SIMD)', () => {
    expect(wasmZeroPrefix(new Uint8Array(4096))).toBe(4096);
    const b = new Uint8Array(4096);
    b[1000] = 1;
    expect(wasmZeroPrefix(b)).toBe(960);
  });

  it('finds one non-zero byte wherever it is, and none in zeros', () => {
    const lengths = [0, 1, 63, 64, 65, 511, 512, 513, 2048, 2049, 2112, 4096, 65536, 65536 + 512, 65536 + 513, (1 << 20) + 7];
    let checked = 0;
    for (const n of lengths) {
      expect(isAllZero(new Uint8Array(n))).toBe(true);
      const spots = [0, 1, 511, 512, 513, 575, 576, 2047, 2048, n >> 1, 65535, 65536 + 511, 65536 + 512, 65536 + 575, n - 64, n - 7, n - 1];
      for (const at of new Set(spots)) {
        if (at < 0 || at >= n) continue;
        const b = new Uint8Array(n);
        b[at] = 0x80;
        expect(isAllZero(b), `length ${n}, byte ${at}`).toBe(false);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(120);
  });

  it('reads views at any offset of their buffer', () => {
    const big = new Uint8Array((1 << 20) + 16);
    for (const off of [1, 3, 5, 8]) {
      expect(isAllZero(big.subarray(off))).toBe(true);
      const c = new Uint8Array(big.length);
      c[c.length - 1] = 9;
      expect(isAllZero(c.subarray(off))).toBe(false);
      c[c.length - 1] = 0;
      c[off + 700] = 1;
      expect(isAllZero(c.subarray(off))).toBe(false);
      expect(isAllZero(c.subarray(off + 701))).toBe(true);
    }
  });
});
