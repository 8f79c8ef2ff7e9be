/**
 * qemu-img amend of a luks image: key slots added (state=active, new-secret) or erased
 * (state=inactive, keyslot or old-secret), as QEMU's qcrypto_block_luks_amend_options does, in
 * place. A slot is added by writing its key material into the unused area first and its
 * 48-byte header entry last; it is erased entry first, key material after. A kill leaves every
 * other slot working and the payload untouched.
 */
import { promises as fs } from 'node:fs';
import { InvalidArgumentError, UnsupportedError } from '../../src-core/io/errors.ts';
import { pbkdf2Of } from '../../src-core/codecs/crypto/pbkdf2.ts';
import { randomBytes } from '../../src-core/codecs/crypto/afsplit.ts';
import { unlockLuks } from '../../src-core/codecs/crypto/luks.ts';
import {
  LUKS_HEADER_SIZE,
  LUKS_SALT_LEN,
  parseLuksHeader,
  serializeLuksHeader,
  type LuksHeader,
} from '../../src-core/codecs/crypto/luksHeader.ts';
import { makeKeySlot, slotEntryOffset, slotMaterialBytes, slotsOpenedBy } from '../../src-core/formats/luks/keyslots.ts';
import type { Secrets } from '../../src-core/image/types.ts';
import { nodeCodecs } from '../nodeCodecs.ts';

const AMENDABLE = new Set(['state', 'keyslot', 'old-secret', 'new-secret', 'iter-time']);

export interface LuksAmend {
  file: string;
  /** The secret the image was opened with (key-secret). */
  keySecret: Uint8Array | undefined;
  changes: Record<string, string>;
  secrets: Secrets;
  force: boolean;
}

export async function amendLuks(a: LuksAmend): Promise<void> {
  const { file, changes } = a;
  for (const k of Object.keys(changes)) {
    if (!AMENDABLE.has(k))
      throw new InvalidArgumentError(`Invalid parameter '${k}' (this option is only supported for image creation)`, file);
  }
  const state = changes.state;
  if (state === undefined) throw new InvalidArgumentError("Parameter 'state' is missing", file);
  if (state !== 'active' && state !== 'inactive')
    throw new InvalidArgumentError(`Parameter 'state' does not accept value '${state}'`, file);
  const keyslot = changes.keyslot === undefined ? undefined : Number(changes.keyslot);
  if (keyslot !== undefined && !(Number.isInteger(keyslot) && keyslot >= 0 && keyslot <= 7))
    throw new InvalidArgumentError(`Invalid keyslot ${changes.keyslot} specified, must be between 0 and 7`, file);
  const secret = (key: string) => {
    const id = changes[key];
    if (id === undefined) return undefined;
    const s = a.secrets.get(id);
    if (!s) throw new InvalidArgumentError(`No secret with id '${id}'`, file);
    return s;
  };
  const pbkdf2 = pbkdf2Of(nodeCodecs);
  const engine = nodeCodecs.aesEcb;
  const fh = await fs.open(file, 'r+');
  try {
    const read = async (offset: number, length: number) => {
      const buf = new Uint8Array(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    };
    const h = parseLuksHeader(file, await read(0, LUKS_HEADER_SIZE));
    /** One slot's header entry, as the whole header would hold it. */
    const writeEntry = async (hdr: LuksHeader, i: number) => {
      const bytes = serializeLuksHeader(hdr).subarray(slotEntryOffset(i), slotEntryOffset(i) + 48);
      await fh.write(bytes, 0, 48, slotEntryOffset(i));
      await fh.sync();
    };
    if (state === 'active') {
      const newSecret = secret('new-secret');
      if (!newSecret) throw new InvalidArgumentError("'new-secret' is required to activate a keyslot", file);
      if (changes['old-secret'] !== undefined)
        throw new InvalidArgumentError("'old-secret' must not be given when activating keyslots", file);
      if (keyslot !== undefined && h.slots[keyslot]!.active)
        throw new InvalidArgumentError(`Refusing to overwrite active keyslot ${keyslot} - please erase it first`, file);
      const i = keyslot ?? h.slots.findIndex((s) => !s.active);
      if (i < 0) throw new UnsupportedError(file, "Can't add a keyslot - all keyslots are in use");
      if (!a.keySecret) throw new InvalidArgumentError("Parameter 'key-secret' is required for cipher", file);
      const masterKey = await unlockLuks(file, h, read, a.keySecret, pbkdf2, engine);
      const iterTime = changes['iter-time'] === undefined ? 2000 : Number(changes['iter-time']);
      const { slot, material } = await makeKeySlot(h, i, masterKey, newSecret, iterTime, pbkdf2, engine);
      await fh.write(material, 0, material.length, slot.keyOffset * 512);
      await fh.sync();
      h.slots[i] = slot;
      await writeEntry(h, i);
      return;
    }
    let erase: number[];
    if (keyslot !== undefined) {
      if (!h.slots[keyslot]!.active) throw new InvalidArgumentError(`Given keyslot ${keyslot} is already erased (inactive)`, file);
      erase = [keyslot];
      const active = h.slots.filter((s) => s.active).length;
      if (active === 1 && !a.force)
        throw new InvalidArgumentError(
          `Attempt to erase the only active keyslot ${keyslot} which will erase all the data in the image irreversibly - refusing operation`,
          file,
        );
    } else {
      const old = secret('old-secret');
      if (!old) throw new InvalidArgumentError("'keyslot' or 'old-secret' is required to erase keyslots", file);
      erase = await slotsOpenedBy(file, h, read, old, pbkdf2, engine);
      if (!erase.length) throw new InvalidArgumentError('No keyslots match given (old) password for erase operation', file);
      if (erase.length === h.slots.filter((s) => s.active).length && !a.force)
        throw new InvalidArgumentError(
          'All the active keyslots match the (old) password that was given and erasing them will erase all the data in the image irreversibly - refusing operation',
          file,
        );
    }
    for (const i of erase) {
      const s = h.slots[i]!;
      h.slots[i] = { ...s, active: false, iterations: 0, salt: new Uint8Array(LUKS_SALT_LEN) };
      await writeEntry(h, i);
      const len = slotMaterialBytes(h, s);
      await fh.write(randomBytes(len), 0, len, s.keyOffset * 512);
      await fh.sync();
    }
  } finally {
    await fh.close();
  }
}
