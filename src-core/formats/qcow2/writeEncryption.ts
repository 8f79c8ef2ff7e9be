import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { parseBool } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec } from '../../image/types.ts';
import type { HashName } from '../../codecs/types.ts';
import {
  createLuks,
  essivSupported,
  isHashName,
  legacyAesCipher,
  luksKeyBytes,
  luksSectorCipher,
  LUKS_STRIPES,
  pbkdf2Of,
  LEGACY_AES_WARNING,
  SECTOR,
  type CipherMode,
  type IvGenName,
  type LuksCreateOptions,
  type SectorCipher,
} from '../../codecs/crypto/index.ts';
import { CRYPT_AES, CRYPT_LUKS } from './header.ts';

// `-o encrypt.*` for qcow2 output, as qemu-img 7.2 spells them (QCryptoBlockCreateOptionsLUKS).
const HASH_VALUES = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'ripemd160'];
export const QCOW2_ENCRYPT_OPTIONS: readonly CreateOptionSpec[] = [
  { name: 'encrypt.format', type: 'enum', values: ['aes', 'luks'], help: 'encrypt the data clusters: luks (what QEMU boots) or legacy aes' },
  { name: 'encrypt.key-secret', type: 'string', help: 'id of the --object secret holding the password' },
  { name: 'encrypt.cipher-alg', type: 'enum', values: ['aes-128', 'aes-192', 'aes-256'], default: 'aes-256', help: 'LUKS cipher' },
  { name: 'encrypt.cipher-mode', type: 'enum', values: ['xts', 'cbc', 'ecb', 'ctr'], default: 'xts', help: 'LUKS cipher mode' },
  { name: 'encrypt.ivgen-alg', type: 'enum', values: ['plain64', 'plain', 'essiv'], default: 'plain64', help: 'LUKS IV generator' },
  { name: 'encrypt.ivgen-hash-alg', type: 'enum', values: HASH_VALUES, help: 'hash for the essiv IV generator (default sha256)' },
  { name: 'encrypt.hash-alg', type: 'enum', values: HASH_VALUES, default: 'sha256', help: 'LUKS PBKDF2 and anti-forensic hash' },
  { name: 'encrypt.iter-time', type: 'number', default: '2000', help: 'milliseconds of PBKDF2 to unlock the key slot' },
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
  const keySecret = o['encrypt.key-secret'];
  if (!keySecret) throw new InvalidArgumentError("Parameter 'encrypt.key-secret' is required for cipher", file);
  if (format === 'aes') {
    const extra = given.find((k) => k !== 'encrypt.key-secret');
    if (extra) throw new InvalidArgumentError(`Invalid parameter '${extra.slice('encrypt.'.length)}' for encrypt.format=aes`, file);
  }
  // qemu-img convert refuses the pair outright; a compressed cluster could not be encrypted.
  if (opts.compress) throw new InvalidArgumentError('Compression and encryption not supported at the same time', file);
  const hash = (o['encrypt.hash-alg'] ?? 'sha256') as HashName;
  const mode = (o['encrypt.cipher-mode'] ?? 'xts') as CipherMode;
  const ivgen = (o['encrypt.ivgen-alg'] ?? 'plain64') as IvGenName;
  let ivgenHash = o['encrypt.ivgen-hash-alg'] as HashName | undefined;
  if (ivgen === 'essiv') ivgenHash ??= 'sha256';
  if (!isHashName(hash) || (ivgenHash && !isHashName(ivgenHash))) throw new InvalidArgumentError('unknown hash algorithm', file);
  if (ivgen === 'essiv' && !essivSupported(ivgenHash!)) throw new UnsupportedError(file, `No AES cipher with key size matching ${ivgenHash} for essiv`);
  const iterText = o['encrypt.iter-time'] ?? '2000';
  const iterTimeMs = Number(iterText);
  if (!/^\d+$/.test(iterText) || iterTimeMs < 1) throw new InvalidArgumentError(`invalid encrypt.iter-time "${iterText}" (milliseconds, at least 1)`, file);
  const cipherAlg = o['encrypt.cipher-alg'] ?? 'aes-256';
  // QEMU 7.2 asserts (crypto/block.c "QEMU_IS_ALIGNED(len, sectorsize)") on key material that is
  // not whole sectors: 24-byte keys × 4000 stripes. Such an image would crash qemu-img.
  if ((luksKeyBytes(cipherAlg, mode) * LUKS_STRIPES) % SECTOR !== 0) {
    throw new UnsupportedError(file, `LUKS ${cipherAlg} in ${mode} mode is refused: QEMU cannot open it (key material is not whole sectors)`);
  }
  return { format, keySecret, luks: { cipherAlg, mode, ivgen, ivgenHash, hash, iterTimeMs } };
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
  const created = await createLuks(secret, cfg.luks, pbkdf2Of(opts.codecs), opts.codecs.aesEcb);
  return {
    cryptMethod: CRYPT_LUKS,
    luks: { bytes: created.bytes, length: created.length },
    encrypt: bySector(luksSectorCipher(created.header, created.masterKey, opts.codecs.aesEcb), true),
  };
}
