import { InvalidArgumentError } from '../../io/errors.ts';
import type { CreateOptionSpec, CreateOptions } from '../../image/types.ts';
import type { Codecs } from '../../codecs/types.ts';
import { parseBool } from '../../image/options.ts';
import { legacyAesCipher, LEGACY_AES_WARNING } from '../../codecs/crypto/index.ts';
import { offsetCipher, type OffsetCipher } from '../../codecs/crypto/offsetCipher.ts';
import { QCOW_CRYPT_NONE, type QcowHeader } from './header.ts';

/**
 * The seam between the qcow (v1) driver and legacy AES (docs/formats/qcow.md). The reader and
 * writer only call the two functions below. The cipher is the qcow family's offset cipher:
 * legacy AES numbers sectors by guest offset, so the reader passes both offsets and the cipher
 * picks. Data handed to decrypt/encrypt must be whole 512-byte sectors (AES-CBC chains inside
 * each sector); the reader widens partial reads (image/readPlan.ts sectorRead).
 */
export type QcowCipher = OffsetCipher;

/** Options qemu-img's qcow driver accepts for encryption (qemu-img create -f qcow -o help). */
export const QCOW_ENCRYPT_OPTIONS: readonly CreateOptionSpec[] = [
  {
    name: 'encrypt.format',
    type: 'enum',
    values: ['aes'],
    help: 'encrypt the data clusters with legacy AES (qemu-img only; system emulators refuse it)',
  },
  { name: 'encrypt.key-secret', type: 'string', help: 'id of the --object secret holding the password' },
  { name: 'encryption', type: 'bool', default: 'off', help: 'deprecated spelling of encrypt.format=aes' },
];

/**
 * The cipher for an opened image, or undefined when the image is not encrypted or no password
 * was given (info still works then; data reads ask for the password). Legacy AES has no key
 * check: a wrong password reads as garbage, in QEMU too.
 */
export async function openQcowCipher(
  file: string,
  h: QcowHeader,
  password: Uint8Array | undefined,
  /** The open context's codecs: a platform AES engine makes decryption several times faster. */
  codecs?: Pick<Codecs, 'aesEcb'>,
): Promise<QcowCipher | undefined> {
  if (h.cryptMethod === QCOW_CRYPT_NONE || !password) return undefined;
  return offsetCipher(file, { format: 'aes' }, legacyAesCipher(password, codecs?.aesEcb), false);
}

export interface QcowOutputCipher {
  cipher: QcowCipher;
  /** Shown to the user after writing (legacy AES is refused by current system emulators). */
  warnings: string[];
}

/** The cipher for a new image when `-o encrypt.format=aes` (or `encryption=on`) asks for one. */
export async function createQcowCipher(opts: CreateOptions): Promise<QcowOutputCipher | undefined> {
  const o = opts.options;
  const file = opts.filename;
  const wanted = o['encrypt.format'] !== undefined || parseBool(o.encryption, 'encryption');
  if (!wanted) {
    if (o['encrypt.key-secret'] !== undefined) throw new InvalidArgumentError("Parameter 'encrypt.format' is missing", file);
    return undefined;
  }
  const id = o['encrypt.key-secret'];
  if (!id) throw new InvalidArgumentError("Parameter 'encrypt.key-secret' is required for cipher", file);
  // qemu-img convert refuses -c with an encrypted target.
  if (opts.compress) throw new InvalidArgumentError('Compression and encryption not supported at the same time', file);
  const secret = opts.secrets?.get(id);
  if (!secret) throw new InvalidArgumentError(`No secret with id '${id}'`, file);
  return {
    cipher: offsetCipher(file, { format: 'aes' }, legacyAesCipher(secret, opts.codecs.aesEcb), false),
    warnings: [LEGACY_AES_WARNING],
  };
}
