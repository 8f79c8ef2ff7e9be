import type { HashName, Pbkdf2 } from '../types.ts';
import { noblePbkdf2 } from './pbkdf2.ts';

/** The slice of WebCrypto's SubtleCrypto PBKDF2 needs (src-core declares no DOM types). */
interface SubtleLike {
  importKey(format: 'raw', key: Uint8Array, alg: 'PBKDF2', extractable: false, usages: ['deriveBits']): Promise<unknown>;
  deriveBits(alg: { name: 'PBKDF2'; hash: string; salt: Uint8Array; iterations: number }, key: unknown, bits: number): Promise<ArrayBuffer>;
}

/** WebCrypto knows only these digests for PBKDF2 (no MD5, SHA-224 or RIPEMD-160). */
const WEB_HASH: Partial<Record<HashName, string>> = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

function subtle(): SubtleLike | undefined {
  return (globalThis as unknown as { crypto?: { subtle?: SubtleLike } }).crypto?.subtle;
}

/**
 * PBKDF2 through WebCrypto where it can (browsers, workers, Node ≥ 19: native speed, off the
 * main thread's JS), and @noble/hashes for the digests WebCrypto lacks or when it refuses
 * (e.g. an empty password in some engines).
 */
export const webCryptoPbkdf2: Pbkdf2 = async (hash, password, salt, iterations, length) => {
  const s = subtle();
  const name = WEB_HASH[hash];
  if (s && name && password.length) {
    try {
      const key = await s.importKey('raw', password, 'PBKDF2', false, ['deriveBits']);
      return new Uint8Array(await s.deriveBits({ name: 'PBKDF2', hash: name, salt, iterations }, key, length * 8));
    } catch {
      // fall through to the portable implementation
    }
  }
  return noblePbkdf2(hash, password, salt, iterations, length);
};
