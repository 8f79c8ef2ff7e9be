import type { HashName } from '../types.ts';
import { HASHES } from './hashes.ts';

/**
 * LUKS anti-forensic splitter (crypto/afsplit.c, LUKS1 spec §2.4): the key is stored as
 * `stripes` blocks whose chained XOR-and-diffuse gives it back, so losing any one sector of
 * the key material destroys the key.
 */

/** Replaces each digest-sized piece j of `block` by Hash(BE32(j) ‖ piece), truncated to the piece. */
function diffuse(hash: HashName, block: Uint8Array): void {
  const { digestLength, fn } = HASHES[hash];
  const pieces = Math.ceil(block.length / digestLength);
  const input = new Uint8Array(4 + digestLength);
  const view = new DataView(input.buffer);
  for (let j = 0; j < pieces; j++) {
    const start = j * digestLength;
    const len = Math.min(digestLength, block.length - start);
    view.setUint32(0, j);
    input.set(block.subarray(start, start + len), 4);
    const d = fn(input.subarray(0, 4 + len));
    block.set(d.subarray(0, len), start);
  }
}

export function afMerge(hash: HashName, keyLength: number, stripes: number, material: Uint8Array): Uint8Array {
  if (material.length < keyLength * stripes) throw new RangeError('AF material is shorter than key × stripes');
  const block = new Uint8Array(keyLength);
  for (let i = 0; i < stripes - 1; i++) {
    const s = material.subarray(i * keyLength, (i + 1) * keyLength);
    for (let k = 0; k < keyLength; k++) block[k]! ^= s[k]!;
    diffuse(hash, block);
  }
  const last = material.subarray((stripes - 1) * keyLength, stripes * keyLength);
  for (let k = 0; k < keyLength; k++) block[k]! ^= last[k]!;
  return block;
}

/** The inverse: random stripes, and a last stripe that makes the merge yield `key`. */
export function afSplit(hash: HashName, key: Uint8Array, stripes: number, random: (n: number) => Uint8Array): Uint8Array {
  const n = key.length;
  const out = random(n * stripes);
  const block = new Uint8Array(n);
  for (let i = 0; i < stripes - 1; i++) {
    for (let k = 0; k < n; k++) block[k]! ^= out[i * n + k]!;
    diffuse(hash, block);
  }
  for (let k = 0; k < n; k++) out[(stripes - 1) * n + k] = block[k]! ^ key[k]!;
  return out;
}

/** Cryptographically random bytes, in the 64 KiB pieces getRandomValues allows. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}
