import { InvalidArgumentError } from '../../io/errors.ts';
import { parseBool } from '../../image/options.ts';
import { luksKeySecret, luksOptionSpecs, parseLuksCreateOptions } from '../../image/luksOptions.ts';
import type { CreateOptions, CreateOptionSpec } from '../../image/types.ts';
import {
  createLuks,
  legacyAesCipher,
  luksSectorCipher,
  pbkdf2Of,
  LEGACY_AES_WARNING,
  SECTOR,
  type LuksCreateOptions,
  type SectorCipher,
} from '../../codecs/crypto/index.ts';
import { CRYPT_AES, CRYPT_LUKS } from './header.ts';
import { refuseReproducibleSecrets } from '../../image/identity.ts';

// `-o encrypt.*` for qcow2 output, as qemu-img 7.2 spells them (QCryptoBlockCreateOptionsLUKS).
export const QCOW2_ENCRYPT_OPTIONS: readonly CreateOptionSpec[] = [
  {
    name: 'encrypt.format',
    type: 'enum',
    values: ['aes', 'luks'],
    help: 'encrypt the data clusters: luks (what QEMU boots) or legacy aes',
  },
  ...luksOptionSpecs('encrypt.', true),
  { name: 'encryption', type: 'bool', default: 'off', help: 'deprecated: same as encrypt.format=aes' },
];

export interface Qcow2EncryptionConfig {
  format: 'aes' | 'luks';
  keySecret: string;
  luks: LuksCreateOptions;
}

/** Reads and checks the encrypt.* options; undefined when the image is not to be encrypted. */
export function parseEncryptionOptions(opts: CreateOptions): Qcow2EncryptionConfig | undefined {
  const o = opts.options;
  const file = opts.filename;
  let format = o['encrypt.format'] as 'aes' | 'luks' | undefined;
  if (parseBool(o.encryption, 'encryption')) {
    if (format && format !== 'aes') throw new InvalidArgumentError("'encryption' and 'encrypt.format' are incompatible", file);
    format = 'aes';
  }
  const given = Object.keys(o).filter((k) => k.startsWith('encrypt.') && k !== 'encrypt.format');
  if (!format) {
    if (given.length) throw new InvalidArgumentError("Parameter 'encrypt.format' is missing", file);
    return undefined;
  }
  const keySecret = luksKeySecret(o, 'encrypt.', file);
  if (format === 'aes') {
    const extra = given.find((k) => k !== 'encrypt.key-secret');
    if (extra) throw new InvalidArgumentError(`Invalid parameter '${extra.slice('encrypt.'.length)}' for encrypt.format=aes`, file);
  }
  // qemu-img convert refuses the pair outright; a compressed cluster could not be encrypted.
  if (opts.compress) throw new InvalidArgumentError('Compression and encryption not supported at the same time', file);
  return { format, keySecret, luks: parseLuksCreateOptions(o, 'encrypt.', file) };
}

/** What the writer needs: the header values, the LUKS area to reserve, and a cluster encryptor. */
export interface Qcow2WriteEncryption {
  cryptMethod: number;
  /** LUKS header + key material, to be written at the start of a reserved area of `length` bytes. */
  luks?: { bytes: Uint8Array; length: number };
  /** Encrypts a cluster in place (legacy AES: guest sectors; LUKS: host sectors). */
  encrypt(data: Uint8Array, guestOffset: number, hostOffset: number): void;
  warning?: string;
}

export async function setupEncryption(opts: CreateOptions, cfg: Qcow2EncryptionConfig): Promise<Qcow2WriteEncryption> {
  const secret = opts.secrets?.get(cfg.keySecret);
  if (!secret) throw new InvalidArgumentError(`No secret with id '${cfg.keySecret}'`, opts.filename);
  const bySector = (cipher: SectorCipher, useHost: boolean) => (data: Uint8Array, guest: number, host: number) =>
    cipher.encrypt(data, (useHost ? host : guest) / SECTOR);
  if (cfg.format === 'aes') {
    return { cryptMethod: CRYPT_AES, encrypt: bySector(legacyAesCipher(secret, opts.codecs.aesEcb), false), warning: LEGACY_AES_WARNING };
  }
  refuseReproducibleSecrets(opts, 'a LUKS-encrypted qcow2');
  const created = await createLuks(secret, cfg.luks, pbkdf2Of(opts.codecs), opts.codecs.aesEcb);
  return {
    cryptMethod: CRYPT_LUKS,
    luks: { bytes: created.bytes, length: created.length },
    encrypt: bySector(luksSectorCipher(created.header, created.masterKey, opts.codecs.aesEcb), true),
  };
}
