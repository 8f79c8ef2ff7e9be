import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, NeedsPasswordError, UnsupportedError } from '../../io/errors.ts';
import type { Codecs } from '../../codecs/types.ts';
import {
  legacyAesCipher,
  luksInfo,
  luksSectorCipher,
  parseLuksHeader,
  pbkdf2Of,
  SECTOR,
  unlockLuks,
  LUKS_HEADER_SIZE,
  type SectorCipher,
} from '../../codecs/crypto/index.ts';
import { CRYPT_AES, CRYPT_LUKS, CRYPT_NONE, type Qcow2Header } from './header.ts';

/**
 * Sector encryption of qcow2 data clusters. Legacy AES numbers sectors by guest offset, LUKS by
 * host offset (qcow-family.md §3, verified against qemu-img), so both offsets are passed and
 * each cipher picks its own. Data must start and end on 512-byte sector boundaries.
 */
export interface Qcow2Cipher {
  decrypt(data: Uint8Array, guestOffset: number, hostOffset: number): void | Promise<void>;
  encrypt(data: Uint8Array, guestOffset: number, hostOffset: number): void | Promise<void>;
  /** The `encrypt` object of qemu-img info's format-specific data. */
  info(): Record<string, unknown>;
}

export function encryptionName(method: number): string {
  return method === CRYPT_AES ? 'aes' : method === CRYPT_LUKS ? 'luks' : 'none';
}

function sector(offset: number, file: string): number {
  // Readers widen requests to whole sectors before decrypting; anything else is a caller bug.
  if (offset % SECTOR !== 0) throw new UnsupportedError(file, `encrypted data can only be read in whole 512-byte sectors (offset ${offset})`);
  return offset / SECTOR;
}

/**
 * Adapts a sector cipher to the (data, guestOffset, hostOffset) shape the qcow drivers call;
 * `byHost` picks the numbering. Without a cipher it still answers info() (the LUKS header is
 * plain text) and refuses data with NeedsPasswordError.
 */
export function qcow2Cipher(file: string, info: Record<string, unknown>, cipher: SectorCipher | undefined, byHost: boolean): Qcow2Cipher {
  const locked = () => new NeedsPasswordError(file);
  return {
    info: () => info,
    decrypt(data, guest, host) {
      if (!cipher) throw locked();
      cipher.decrypt(data, sector(byHost ? host : guest, file));
    },
    encrypt(data, guest, host) {
      if (!cipher) throw locked();
      cipher.encrypt(data, sector(byHost ? host : guest, file));
    },
  };
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
  if (h.cryptMethod === CRYPT_AES) return qcow2Cipher(file, { format: 'aes' }, password ? legacyAesCipher(password, codecs?.aesEcb) : undefined, false);
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
  return qcow2Cipher(file, luksInfo(header), cipher, true);
}
