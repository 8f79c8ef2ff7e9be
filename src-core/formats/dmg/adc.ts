import { CorruptImageError } from '../../io/errors.ts';

/**
 * Apple Data Compression (DMG chunk type 0x80000004), an LZ77 variant:
 *   1xxxxxxx              a run of (x + 1) literal bytes follows
 *   01xxxxxx hi lo        copy (x + 4) bytes from (hi·256 + lo + 1) bytes back
 *   00xxxxyy lo           copy (xxxx + 3) bytes from (yy·256 + lo + 1) bytes back
 * Output must fill exactly `size` bytes.
 */
export function adcDecode(file: string, where: string, data: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let i = 0;
  let o = 0;
  const bad = (why: string) => new CorruptImageError(file, `${where}: ADC data ${why}`);
  while (i < data.length && o < size) {
    const b = data[i]!;
    if (b & 0x80) {
      const n = (b & 0x7f) + 1;
      if (i + 1 + n > data.length) throw bad('ends inside a literal run');
      if (o + n > size) throw bad('produces more than the chunk holds');
      out.set(data.subarray(i + 1, i + 1 + n), o);
      i += 1 + n;
      o += n;
      continue;
    }
    let n: number;
    let dist: number;
    if (b & 0x40) {
      if (i + 3 > data.length) throw bad('ends inside a match');
      n = (b & 0x3f) + 4;
      dist = ((data[i + 1]! << 8) | data[i + 2]!) + 1;
      i += 3;
    } else {
      if (i + 2 > data.length) throw bad('ends inside a match');
      n = ((b >> 2) & 0xf) + 3;
      dist = (((b & 3) << 8) | data[i + 1]!) + 1;
      i += 2;
    }
    if (dist > o) throw bad(`refers to ${dist} bytes back at output offset ${o}`);
    if (o + n > size) throw bad('produces more than the chunk holds');
    for (let k = 0; k < n; k++, o++) out[o] = out[o - dist]!;
  }
  if (o !== size) throw bad(`produces ${o} bytes, not the ${size} the chunk holds`);
  return out;
}
