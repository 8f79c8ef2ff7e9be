import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError } from '../../io/errors.ts';
import type { Codecs } from '../../codecs/types.ts';
import {
  legacyAesCipher,
  luksInfo,
  luksSectorCipher,
  parseLuksHeader,
  pbkdf2Of,
  unlockLuks,
  LUKS_HEADER_SIZE,
  type SectorCipher,
} from '../../codecs/crypto/index.ts';
import { offsetCipher, type OffsetCipher } from '../../codecs/crypto/offsetCipher.ts';
import { CRYPT_AES, CRYPT_LUKS, CRYPT_NONE, type Qcow2Header } from './header.ts';

export type Qcow2Cipher = OffsetCipher;

export function encryptionName(method: number): string {
  return method === CRYPT_AES ? 'aes' : method === CRYPT_LUKS ? 'luks' : 'none';
}

/**
 * Opens the image's cipher. Without a password an encrypted image still gets a (locked) cipher
 * so that info works; reads then fail with NeedsPasswordError. A LUKS password that opens no
 * key slot fails here with WrongPasswordError, before anything is read or written.
 */
export async function openCipher(
  file: string,
  h: Qcow2Header,
  src: ByteSource,
  password: Uint8Array | undefined,
  codecs?: Pick<Codecs, 'pbkdf2' | 'aesEcb'>,
): Promise<Qcow2Cipher | undefined> {
  if (h.cryptMethod === CRYPT_NONE) return undefined;
  if (h.cryptMethod === CRYPT_AES)
    return offsetCipher(file, { format: 'aes' }, password ? legacyAesCipher(password, codecs?.aesEcb) : undefined, false);
  const region = h.crypto!;
  // Reads inside the LUKS area only (qcow2_crypto_hdr_read_func refuses anything beyond it).
  const read = (offset: number, length: number) => {
    if (offset + length > region.length) throw new CorruptImageError(file, 'LUKS header refers to data outside its header extension');
    return readExact(src, region.offset + offset, length);
  };
  const header = parseLuksHeader(file, await read(0, LUKS_HEADER_SIZE));
  let cipher: SectorCipher | undefined;
  if (password) {
    const masterKey = await unlockLuks(file, header, read, password, pbkdf2Of(codecs), codecs?.aesEcb);
    cipher = luksSectorCipher(header, masterKey, codecs?.aesEcb);
  }
  return offsetCipher(file, luksInfo(header), cipher, true);
}
