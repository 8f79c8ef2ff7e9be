/**
 * Adding and erasing LUKS1 key slots (qemu-img amend of a luks image, QEMU's
 * qcrypto_block_luks_amend_options). The caller writes what these return in the order that
 * keeps the image openable at every moment: a new slot's key material first, then its header
 * entry; an erased slot's header entry first, then its key material overwritten.
 */
import { WrongPasswordError } from '../../io/errors.ts';
import type { AesEcb, Pbkdf2 } from '../../codecs/types.ts';
import { afSplit, randomBytes } from '../../codecs/crypto/afsplit.ts';
import { HASHES } from '../../codecs/crypto/hashes.ts';
import { luksSectorCipher, pbkdf2Rate, unlockLuks } from '../../codecs/crypto/luks.ts';
import { LUKS_SALT_LEN, type LuksHeader, type LuksSlot } from '../../codecs/crypto/luksHeader.ts';
import { passwordBytes } from '../../codecs/crypto/password.ts';
import { SECTOR } from '../../codecs/crypto/sectorCipher.ts';

/** Bytes of one slot's key material on disk (whole sectors). */
export function slotMaterialBytes(h: LuksHeader, slot: LuksSlot): number {
  return Math.ceil((h.keyBytes * slot.stripes) / SECTOR) * SECTOR;
}

/** Where slot i's 48-byte entry sits in the header. */
export const slotEntryOffset = (i: number): number => 208 + 48 * i;

/** A new active slot `i` for `secret`: its header entry and its encrypted key material. */
export async function makeKeySlot(
  h: LuksHeader,
  i: number,
  masterKey: Uint8Array,
  secret: Uint8Array,
  iterTimeMs: number,
  pbkdf2: Pbkdf2,
  engine?: AesEcb,
): Promise<{ slot: LuksSlot; material: Uint8Array }> {
  const old = h.slots[i]!;
  const rate = await pbkdf2Rate(pbkdf2, h.hash);
  const blocks = Math.ceil(h.keyBytes / HASHES[h.hash].digestLength);
  // As createLuks counts them: PBKDF2 taking about iter-time to unlock this slot.
  const iterations = Math.min(2 ** 32 - 1, Math.max(1000, Math.floor((rate / blocks) * (iterTimeMs / 1000))));
  const slot: LuksSlot = { active: true, iterations, salt: randomBytes(LUKS_SALT_LEN), keyOffset: old.keyOffset, stripes: old.stripes };
  const slotKey = await pbkdf2(h.hash, passwordBytes(secret), slot.salt, iterations, h.keyBytes);
  const material = new Uint8Array(slotMaterialBytes(h, slot));
  material.set(afSplit(h.hash, masterKey, slot.stripes, randomBytes));
  luksSectorCipher(h, slotKey, engine).encrypt(material, 0);
  return { slot, material };
}

/** The active slots `secret` opens (each tried alone). */
export async function slotsOpenedBy(
  file: string,
  h: LuksHeader,
  read: (offset: number, length: number) => Promise<Uint8Array>,
  secret: Uint8Array,
  pbkdf2: Pbkdf2,
  engine?: AesEcb,
): Promise<number[]> {
  const opened: number[] = [];
  for (let i = 0; i < h.slots.length; i++) {
    if (!h.slots[i]!.active) continue;
    const alone = { ...h, slots: h.slots.map((s, j) => (j === i ? s : { ...s, active: false })) };
    try {
      await unlockLuks(file, alone, read, secret, pbkdf2, engine);
      opened.push(i);
    } catch (e) {
      if (!(e instanceof WrongPasswordError)) throw e;
    }
  }
  return opened;
}
