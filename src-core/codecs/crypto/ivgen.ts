import type { AesEcb, HashName } from '../types.ts';
import { AES_BLOCK, AesKey } from './aes.ts';
import { HASHES } from './hashes.ts';

export type IvGenName = 'plain' | 'plain64' | 'essiv';

/**
 * IV generators of dm-crypt/QEMU (crypto/ivgen-*.c): each 512-byte sector gets an IV from its
 * sector number. Produces the IVs for `count` consecutive sectors in one buffer so the ESSIV
 * encryption runs once per request.
 */
export interface IvGenerator {
  ivs(firstSector: number, count: number): Uint8Array;
}

/** Little-endian sector number in the first 8 (plain64) or 4 (plain) bytes, rest zero. */
function sectorIvs(firstSector: number, count: number, bytes: 4 | 8): Uint8Array {
  const out = new Uint8Array(count * AES_BLOCK);
  const v = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    const s = firstSector + i;
    const lo = s % 2 ** 32;
    v.setUint32(i * AES_BLOCK, lo, true);
    // plain truncates to 32 bits (ivgen-plain.c); plain64 keeps the high word.
    if (bytes === 8) v.setUint32(i * AES_BLOCK + 4, Math.floor(s / 2 ** 32), true);
  }
  return out;
}

export function makeIvGenerator(name: IvGenName, key: Uint8Array, essivHash?: HashName, engine?: AesEcb): IvGenerator {
  switch (name) {
    case 'plain':
      return { ivs: (first, count) => sectorIvs(first, count, 4) };
    case 'plain64':
      return { ivs: (first, count) => sectorIvs(first, count, 8) };
    case 'essiv': {
      // ESSIV: IV = E_salt(LE64 sector), salt = hash(key); the AES key size follows the digest
      // size, not the data cipher's (dm-crypt quirk, qcrypto_block_luks_essiv_cipher).
      if (!essivHash) throw new RangeError('ESSIV needs a hash');
      const salt = HASHES[essivHash].fn(key);
      const aes = new AesKey(salt, engine);
      return { ivs: (first, count) => aes.encryptBlocks(sectorIvs(first, count, 8)) };
    }
  }
}

/** Whether AES has a key of this ESSIV hash's digest size (16, 24 or 32 bytes). */
export function essivSupported(hash: HashName): boolean {
  const n = HASHES[hash].digestLength;
  return n === 16 || n === 24 || n === 32;
}
