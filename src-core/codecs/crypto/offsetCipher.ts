import { NeedsPasswordError, UnsupportedError } from '../../io/errors.ts';
import { SECTOR, type SectorCipher } from './index.ts';

/**
 * Sector encryption of a qcow-family image's data clusters (qcow and qcow2). Legacy AES numbers
 * sectors by guest offset, LUKS by host offset (verified against qemu-img; docs/formats/qcow2.md),
 * so both offsets are passed and each cipher picks its own. Data must start and end on 512-byte
 * sector boundaries.
 */
export interface OffsetCipher {
  decrypt(data: Uint8Array, guestOffset: number, hostOffset: number): void | Promise<void>;
  encrypt(data: Uint8Array, guestOffset: number, hostOffset: number): void | Promise<void>;
  /** The `encrypt` object of qemu-img info's format-specific data. */
  info(): Record<string, unknown>;
}

function sector(offset: number, file: string): number {
  // Readers widen requests to whole sectors before decrypting; anything else is a caller bug.
  if (offset % SECTOR !== 0)
    throw new UnsupportedError(file, `encrypted data can only be read in whole 512-byte sectors (offset ${offset})`);
  return offset / SECTOR;
}

/**
 * Adapts a sector cipher to the (data, guestOffset, hostOffset) shape the qcow drivers call;
 * `byHost` picks the numbering. Without a cipher it still answers info() (the LUKS header is
 * plain text) and refuses data with NeedsPasswordError.
 */
export function offsetCipher(file: string, info: Record<string, unknown>, cipher: SectorCipher | undefined, byHost: boolean): OffsetCipher {
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
