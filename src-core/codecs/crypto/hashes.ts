import { md5, ripemd160, sha1 } from '@noble/hashes/legacy.js';
import { sha224, sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import type { HashName } from '../types.ts';

/**
 * The hashes QEMU's LUKS driver accepts for PBKDF2, the anti-forensic diffuser and ESSIV
 * (QCryptoHashAlgorithm, crypto/hash.c), with their digest sizes.
 */
export const HASHES: Record<HashName, { digestLength: number; fn: (data: Uint8Array) => Uint8Array }> = {
  md5: { digestLength: 16, fn: (d) => md5(d) },
  sha1: { digestLength: 20, fn: (d) => sha1(d) },
  sha224: { digestLength: 28, fn: (d) => sha224(d) },
  sha256: { digestLength: 32, fn: (d) => sha256(d) },
  sha384: { digestLength: 48, fn: (d) => sha384(d) },
  sha512: { digestLength: 64, fn: (d) => sha512(d) },
  ripemd160: { digestLength: 20, fn: (d) => ripemd160(d) },
};

export function isHashName(name: string): name is HashName {
  return Object.prototype.hasOwnProperty.call(HASHES, name);
}

/** The noble hash object, for PBKDF2. */
export function nobleHash(name: HashName) {
  return { md5, sha1, sha224, sha256, sha384, sha512, ripemd160 }[name];
}
