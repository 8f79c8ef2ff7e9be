import { describe, expect, it } from 'vitest';
import { crc32c, crc32cFinish, crc32cUpdate, crc32cWithZeroField } from '../src-core/codecs/crc32c.ts';
import { prng } from './helpers/sys.ts';

/** Bit-by-bit reference straight from the definition (reflected 0x82F63B78), independent of the tables. */
function reference(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let b = 0; b < 8; b++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('CRC-32C', () => {
  it('gives the standard check values', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    // RFC 3720 B.4: 32 bytes of zeros and 32 bytes of 0xFF.
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
  });

  it('agrees with a bitwise reference on random lengths, and chains across buffers', () => {
    const rand = prng(99);
    for (const len of [1, 3, 7, 8, 9, 63, 64, 65, 1000, 4096 + 5]) {
      const data = new Uint8Array(len).map(() => rand() & 0xff);
      expect(crc32c(data)).toBe(reference(data));
      const cut = Math.floor(len / 3);
      expect(crc32cFinish(crc32cUpdate(crc32cUpdate(0xffffffff, data.subarray(0, cut)), data.subarray(cut)))).toBe(reference(data));
    }
  });

  it('treats the checksum field as zero without touching the buffer', () => {
    const data = new Uint8Array(64).map((_, i) => i * 7);
    const copy = data.slice();
    copy.fill(0, 4, 8);
    expect(crc32cWithZeroField(data, 4)).toBe(reference(copy));
    expect(data[4]).toBe(28);
  });
});
