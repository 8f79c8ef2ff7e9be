import type { AesEcb } from '../types.ts';
import { makeIvGenerator } from './ivgen.ts';
import { passwordBytes } from './password.ts';
import { SectorCipher } from './sectorCipher.ts';

/**
 * The legacy qcow/qcow2 "aes" encryption (crypto/block-qcow.c): AES-128-CBC per 512-byte
 * sector, IV = plain64 of the sector number. The key is the password's first 16 bytes,
 * zero-padded; nothing checks it, so a wrong password reads as garbage rather than failing.
 * (The qcow2 spec's "AES-256" is wrong for QEMU: docs/formats/qcow2.md, Legacy AES; verified.)
 */
export function legacyAesCipher(secret: Uint8Array, engine?: AesEcb): SectorCipher {
  const pw = passwordBytes(secret);
  const key = new Uint8Array(16);
  key.set(pw.subarray(0, 16));
  return new SectorCipher('cbc', key, makeIvGenerator('plain64', key), engine);
}

export const LEGACY_AES_WARNING =
  'legacy qcow AES encryption is weak and current QEMU system emulators refuse to boot such images; use encrypt.format=luks instead';
