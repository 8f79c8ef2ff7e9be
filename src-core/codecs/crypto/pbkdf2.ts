import { pbkdf2Async } from '@noble/hashes/pbkdf2.js';
import type { Codecs, HashName, Pbkdf2 } from '../types.ts';
import { nobleHash } from './hashes.ts';

/**
 * PBKDF2-HMAC in plain JavaScript (@noble/hashes). It runs anywhere but is about ten times
 * slower than native code, so platforms inject their own through `Codecs.pbkdf2` (Node's
 * crypto.pbkdf2 in the CLI, WebCrypto in browsers); LUKS unlock time is dominated by it.
 */
export const noblePbkdf2: Pbkdf2 = (hash: HashName, password, salt, iterations, length) =>
  pbkdf2Async(nobleHash(hash), password, salt, { c: iterations, dkLen: length, asyncTick: 50 });

/** The fastest PBKDF2 the platform injected, else the portable one. */
export function pbkdf2Of(codecs: Pick<Codecs, 'pbkdf2'> | undefined): Pbkdf2 {
  return codecs?.pbkdf2 ?? noblePbkdf2;
}
