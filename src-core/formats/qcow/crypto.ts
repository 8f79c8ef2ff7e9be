import { UnsupportedError } from '../../io/errors.ts';
import type { CreateOptionSpec, CreateOptions } from '../../image/types.ts';
import type { Qcow2Cipher } from '../qcow2/crypto.ts';
import { QCOW_CRYPT_NONE, type QcowHeader } from './header.ts';

/**
 * The seam between the qcow (v1) driver and legacy AES (qcow-family.md §3.1). The reader and
 * writer only call the two functions below; the encryption module fills in their bodies.
 * The cipher has qcow2's shape: legacy AES numbers sectors by guest offset, so the reader passes
 * both offsets and the cipher picks.
 */
export type QcowCipher = Qcow2Cipher;

/** Options qemu-img's qcow driver accepts for encryption (qemu-img create -f qcow -o help). */
export const QCOW_ENCRYPT_OPTIONS: readonly CreateOptionSpec[] = [
  { name: 'encrypt.format', type: 'enum', values: ['aes'], help: "encrypt the data clusters with legacy AES (qemu-img only; system emulators refuse it)" },
  { name: 'encrypt.key-secret', type: 'string', help: 'id of the --object secret holding the password' },
  { name: 'encryption', type: 'bool', default: 'off', help: 'deprecated spelling of encrypt.format=aes' },
];

/**
 * The cipher for an opened image, or undefined when the image is not encrypted or no password
 * was given (info still works then; data reads ask for the password).
 */
export async function openQcowCipher(file: string, h: QcowHeader, password: Uint8Array | undefined): Promise<QcowCipher | undefined> {
  if (h.cryptMethod === QCOW_CRYPT_NONE || !password) return undefined;
  throw new UnsupportedError(file, 'qcow v1 AES decryption is not available yet');
}

export interface QcowOutputCipher {
  cipher: QcowCipher;
  /** Shown to the user after writing (legacy AES is refused by current system emulators). */
  warnings: string[];
}

/** The cipher for a new image when `-o encrypt.format=aes` (or `encryption=on`) asks for one. */
export async function createQcowCipher(opts: CreateOptions): Promise<QcowOutputCipher | undefined> {
  const o = opts.options;
  const wanted = o['encrypt.format'] !== undefined || (o.encryption !== undefined && o.encryption !== 'off');
  if (!wanted) return undefined;
  throw new UnsupportedError(opts.filename, 'writing AES-encrypted qcow v1 images is not available yet');
}
