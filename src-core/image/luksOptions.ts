import { InvalidArgumentError, UnsupportedError } from '../io/errors.ts';
import type { HashName } from '../codecs/types.ts';
import {
  essivSupported,
  isHashName,
  luksKeyBytes,
  LUKS_STRIPES,
  SECTOR,
  type CipherMode,
  type IvGenName,
  type LuksCreateOptions,
} from '../codecs/crypto/index.ts';
import type { CreateOptionSpec } from './types.ts';

const HASH_VALUES = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'ripemd160'];

/**
 * The options that make a LUKS1 volume, as qemu-img 7.2 spells them (QCryptoBlockCreateOptionsLUKS):
 * the luks format takes them bare, qcow2 behind `encrypt.`. Where they sit beside another kind
 * of encryption (qcow2's legacy aes), the cipher settings' help says they are LUKS's.
 */
const LUKS_OPTIONS: readonly (CreateOptionSpec & { cipherSetting?: true })[] = [
  { name: 'key-secret', type: 'string', help: 'id of the --object secret holding the password' },
  { name: 'cipher-alg', type: 'enum', values: ['aes-128', 'aes-192', 'aes-256'], default: 'aes-256', help: 'cipher', cipherSetting: true },
  { name: 'cipher-mode', type: 'enum', values: ['xts', 'cbc', 'ecb', 'ctr'], default: 'xts', help: 'cipher mode', cipherSetting: true },
  { name: 'ivgen-alg', type: 'enum', values: ['plain64', 'plain', 'essiv'], default: 'plain64', help: 'IV generator', cipherSetting: true },
  { name: 'ivgen-hash-alg', type: 'enum', values: HASH_VALUES, help: 'hash for the essiv IV generator (default sha256)' },
  { name: 'hash-alg', type: 'enum', values: HASH_VALUES, default: 'sha256', help: 'PBKDF2 and anti-forensic hash', cipherSetting: true },
  { name: 'iter-time', type: 'number', default: '2000', help: 'milliseconds of PBKDF2 to unlock the key slot' },
];

/** The LUKS option specs with `prefix` before each name; `besideOtherEncryption` marks the cipher settings' help as LUKS's. */
export function luksOptionSpecs(prefix: string, besideOtherEncryption: boolean): CreateOptionSpec[] {
  return LUKS_OPTIONS.map(({ cipherSetting, ...spec }) => ({
    ...spec,
    name: prefix + spec.name,
    help: besideOtherEncryption && cipherSetting ? `LUKS ${spec.help}` : spec.help,
  }));
}

/** The id of the secret holding the password: `<prefix>key-secret`, which qemu-img requires. */
export function luksKeySecret(options: Record<string, string>, prefix: string, file: string): string {
  const keySecret = options[`${prefix}key-secret`];
  if (!keySecret) throw new InvalidArgumentError(`Parameter '${prefix}key-secret' is required for cipher`, file);
  return keySecret;
}

/** The LUKS parameters from the `<prefix>*` options, checked as qemu-img 7.2 checks them. */
export function parseLuksCreateOptions(options: Record<string, string>, prefix: string, file: string): LuksCreateOptions {
  const o = (name: string): string | undefined => options[prefix + name];
  const hash = (o('hash-alg') ?? 'sha256') as HashName;
  const mode = (o('cipher-mode') ?? 'xts') as CipherMode;
  const ivgen = (o('ivgen-alg') ?? 'plain64') as IvGenName;
  let ivgenHash = o('ivgen-hash-alg') as HashName | undefined;
  if (ivgen === 'essiv') ivgenHash ??= 'sha256';
  if (!isHashName(hash) || (ivgenHash && !isHashName(ivgenHash))) throw new InvalidArgumentError('unknown hash algorithm', file);
  if (ivgen === 'essiv' && !essivSupported(ivgenHash!))
    throw new UnsupportedError(file, `No AES cipher with key size matching ${ivgenHash} for essiv`);
  const iterText = o('iter-time') ?? '2000';
  const iterTimeMs = Number(iterText);
  if (!/^\d+$/.test(iterText) || iterTimeMs < 1)
    throw new InvalidArgumentError(`invalid ${prefix}iter-time "${iterText}" (milliseconds, at least 1)`, file);
  const cipherAlg = o('cipher-alg') ?? 'aes-256';
  // QEMU 7.2 asserts (crypto/block.c "QEMU_IS_ALIGNED(len, sectorsize)") on key material that is
  // not whole sectors: 24-byte keys × 4000 stripes. Such an image would crash qemu-img.
  if ((luksKeyBytes(cipherAlg, mode) * LUKS_STRIPES) % SECTOR !== 0) {
    throw new UnsupportedError(
      file,
      `LUKS ${cipherAlg} in ${mode} mode is refused: QEMU cannot open it (key material is not whole sectors)`,
    );
  }
  return { cipherAlg, mode, ivgen, ivgenHash, hash, iterTimeMs };
}
