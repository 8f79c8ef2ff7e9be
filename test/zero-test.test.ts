import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAllZero } from '../src-core/io/struct.ts';

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
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.nat(7), fc.nat(2047), (bytes, start, at) => {
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
