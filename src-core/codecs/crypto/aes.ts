import { cbc, ecb } from '@noble/ciphers/aes.js';
import type { AesEcb } from '../types.ts';

/**
 * AES through @noble/ciphers. WebCrypto cannot serve disk encryption: it has no XTS and no
 * ECB, and forces PKCS#7 padding on CBC. Everything here works on whole 16-byte blocks with
 * padding disabled; ECB over a whole buffer (one key schedule per call) is the building block
 * for XTS, CBC decryption and CTR, so a cluster costs one library call, not one per block.
 */
export const AES_BLOCK = 16;

export function checkAesKey(key: Uint8Array): void {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new RangeError(`AES key of ${key.length} bytes`);
}

/** @noble/ciphers' ECB, the portable default for `Codecs.aesEcb`. */
export const nobleAesEcb: AesEcb = (key, data, decrypt) =>
  decrypt ? ecb(key, { disablePadding: true }).decrypt(data) : ecb(key, { disablePadding: true }).encrypt(data);

export class AesKey {
  /** `engine`: a platform's faster ECB (Codecs.aesEcb); @noble/ciphers otherwise. */
  constructor(
    readonly key: Uint8Array,
    private readonly engine: AesEcb = nobleAesEcb,
  ) {
    checkAesKey(key);
  }

  // A fresh noble instance per call: noble refuses to reuse one (its nonce-reuse guard applies
  // to ECB too), and a key schedule costs less than one 512-byte sector.

  /** ECB-encrypts whole blocks into a new buffer. */
  encryptBlocks(data: Uint8Array): Uint8Array {
    return data.length ? this.engine(this.key, data, false) : new Uint8Array(0);
  }

  decryptBlocks(data: Uint8Array): Uint8Array {
    return data.length ? this.engine(this.key, data, true) : new Uint8Array(0);
  }

  /** CBC encryption is sequential by nature: one chained pass per sector (always noble). */
  cbcEncrypt(data: Uint8Array, iv: Uint8Array): Uint8Array {
    return cbc(this.key, iv, { disablePadding: true }).encrypt(data);
  }
}

/** target ^= other, word-wise when both are 4-byte aligned (they are for buffers we allocate). */
export function xorInto(target: Uint8Array, other: Uint8Array): void {
  const n = target.length;
  let i = 0;
  if (target.byteOffset % 4 === 0 && other.byteOffset % 4 === 0) {
    const a = new Uint32Array(target.buffer, target.byteOffset, n >>> 2);
    const b = new Uint32Array(other.buffer, other.byteOffset, n >>> 2);
    for (let w = 0; w < a.length; w++) a[w]! ^= b[w]!;
    i = a.length * 4;
  }
  for (; i < n; i++) target[i]! ^= other[i]!;
}
