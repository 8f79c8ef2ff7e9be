import type { ByteSource } from '../../io/bytes.ts';
import { UnsupportedError } from '../../io/errors.ts';
import { CRYPT_AES, CRYPT_LUKS, CRYPT_NONE, type Qcow2Header } from './header.ts';

/**
 * Sector encryption of qcow2 data clusters. Legacy AES numbers sectors by guest offset, LUKS by
 * host offset (qcow-family.md §3), so both offsets are passed and each cipher picks its own.
 */
export interface Qcow2Cipher {
  decrypt(data: Uint8Array, guestOffset: number, hostOffset: number): void | Promise<void>;
  encrypt(data: Uint8Array, guestOffset: number, hostOffset: number): void | Promise<void>;
  /** The `encrypt` object of qemu-img info's format-specific data. */
  info(): Record<string, unknown>;
}

export interface CipherFactory {
  open(file: string, h: Qcow2Header, src: ByteSource, password: Uint8Array | undefined): Promise<Qcow2Cipher | undefined>;
}

/** Replaced by the encryption module when it registers; until then encrypted data is refused. */
export const cipherFactories: Partial<Record<number, CipherFactory>> = {};

export function encryptionName(method: number): string {
  return method === CRYPT_AES ? 'aes' : method === CRYPT_LUKS ? 'luks' : 'none';
}

export async function openCipher(
  file: string,
  h: Qcow2Header,
  src: ByteSource,
  password: Uint8Array | undefined,
): Promise<Qcow2Cipher | undefined> {
  if (h.cryptMethod === CRYPT_NONE) return undefined;
  const factory = cipherFactories[h.cryptMethod];
  if (!factory) {
    if (!password) return undefined; // info still works; reads will ask for the password
    throw new UnsupportedError(file, `qcow2 ${encryptionName(h.cryptMethod)} decryption is not available`);
  }
  return factory.open(file, h, src, password);
}
