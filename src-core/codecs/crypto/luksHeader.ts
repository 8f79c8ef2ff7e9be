import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { Struct } from '../../io/struct.ts';
import type { HashName } from '../types.ts';
import { isHashName } from './hashes.ts';
import { essivSupported, type IvGenName } from './ivgen.ts';
import { SECTOR, type CipherMode } from './sectorCipher.ts';

// LUKS1 on-disk header (cryptsetup docs/on-disk-format.pdf 1.2.1; QEMU crypto/block-luks.c).
// All integers big-endian; 592 bytes; key material follows in 512-byte sectors.
export const LUKS_MAGIC = [0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe];
export const LUKS_HEADER_SIZE = 592;
export const LUKS_SLOTS = 8;
export const LUKS_DIGEST_LEN = 20;
export const LUKS_SALT_LEN = 32;
export const LUKS_STRIPES = 4000;
export const SLOT_ENABLED = 0x00ac71f3;
export const SLOT_DISABLED = 0x0000dead;
/** Key material starts after the first 4096 bytes and each slot is aligned to 8 sectors. */
export const KEY_SLOT_OFFSET_SECTORS = 4096 / SECTOR;
/**
 * A hostile header could ask for 2^32 PBKDF2 rounds (hours). Real ones stay far below: a 2 s
 * iter-time on a fast machine gives a few million. Beyond this we refuse rather than hang.
 */
const MAX_ITERATIONS = 2 ** 27;
/** No real key is longer (AES-256-XTS = 64); bounds allocations from hostile headers. */
const MAX_KEY_BYTES = 256;

export interface LuksSlot {
  active: boolean;
  iterations: number;
  salt: Uint8Array;
  /** In 512-byte sectors from the start of the LUKS header. */
  keyOffset: number;
  stripes: number;
}

export interface LuksParams {
  /** 'aes-128' | 'aes-192' | 'aes-256' (the per-half size for XTS, as QEMU names it). */
  cipherAlg: string;
  mode: CipherMode;
  ivgen: IvGenName;
  ivgenHash?: HashName;
  hash: HashName;
}

export interface LuksHeader extends LuksParams {
  cipherName: string;
  cipherModeSpec: string;
  hashSpec: string;
  payloadOffset: number;
  keyBytes: number;
  digest: Uint8Array;
  digestSalt: Uint8Array;
  digestIterations: number;
  uuid: string;
  slots: LuksSlot[];
}

/** Key sizes (bytes, per XTS half) of the ciphers QEMU's LUKS driver knows. */
const LUKS_CIPHER_SIZES: Record<string, number[]> = { aes: [16, 24, 32], cast5: [16], serpent: [16, 24, 32], twofish: [16, 24, 32] };

const MODES: readonly CipherMode[] = ['ecb', 'cbc', 'xts', 'ctr'];
const IVGENS: readonly IvGenName[] = ['plain', 'plain64', 'essiv'];

/** Sectors one slot's key material occupies, rounded to the 8-sector alignment (cryptsetup's rule). */
export function splitKeySectors(keyBytes: number, stripes: number): number {
  const sectors = Math.ceil((keyBytes * stripes) / SECTOR);
  return Math.ceil(sectors / KEY_SLOT_OFFSET_SECTORS) * KEY_SLOT_OFFSET_SECTORS;
}

function cstring(file: string, s: Struct, off: number, len: number, what: string): string {
  const bytes = s.bytesAt(off, len);
  const end = bytes.indexOf(0);
  if (end < 0) throw new CorruptImageError(file, `LUKS header ${what} is not NUL terminated`);
  return String.fromCharCode(...bytes.subarray(0, end));
}

/** Parses and checks a LUKS1 header as qcrypto_block_luks_{load,check,parse}_header do. */
export function parseLuksHeader(file: string, bytes: Uint8Array): LuksHeader {
  const bad = (m: string) => new CorruptImageError(file, `LUKS header: ${m}`);
  if (bytes.length < LUKS_HEADER_SIZE) throw bad('too short');
  const s = new Struct(bytes);
  if (!LUKS_MAGIC.every((b, i) => bytes[i] === b)) throw bad('bad magic (not a LUKS volume)');
  const version = s.u16(6);
  if (version !== 1) throw new UnsupportedError(file, `LUKS version ${version} is not supported`);
  const cipherName = cstring(file, s, 8, 32, 'cipher name');
  const cipherModeSpec = cstring(file, s, 40, 32, 'cipher mode');
  const hashSpec = cstring(file, s, 72, 32, 'hash spec');
  const payloadOffset = s.u32(104);
  const keyBytes = s.u32(108);
  const digestIterations = s.u32(164);
  const uuidEnd = s.bytesAt(168, 40).indexOf(0);
  const uuid = String.fromCharCode(...s.bytesAt(168, uuidEnd < 0 ? 40 : uuidEnd));
  if (keyBytes === 0 || keyBytes > MAX_KEY_BYTES) throw bad(`master key length ${keyBytes} is implausible`);
  if (payloadOffset < KEY_SLOT_OFFSET_SECTORS) throw bad('payload is overlapping with the header');
  if (digestIterations === 0) throw bad('key iteration count is zero');
  if (digestIterations > MAX_ITERATIONS) throw bad(`key iteration count ${digestIterations} is implausibly high`);
  const slots: LuksSlot[] = [];
  for (let i = 0; i < LUKS_SLOTS; i++) {
    const o = 208 + 48 * i;
    const state = s.u32(o);
    const slot: LuksSlot = {
      active: state === SLOT_ENABLED,
      iterations: s.u32(o + 4),
      salt: s.bytesAt(o + 8, LUKS_SALT_LEN).slice(),
      keyOffset: s.u32(o + 40),
      stripes: s.u32(o + 44),
    };
    // QEMU 7.2 insists on exactly 4000 stripes (what cryptsetup and QEMU always write).
    if (slot.stripes !== LUKS_STRIPES) throw bad(`keyslot ${i} is corrupted (stripes ${slot.stripes} != ${LUKS_STRIPES})`);
    if (state !== SLOT_ENABLED && state !== SLOT_DISABLED) throw bad(`keyslot ${i} state (active/disable) is corrupted`);
    if (slot.active && slot.iterations === 0) throw bad(`keyslot ${i} iteration count is zero`);
    if (slot.active && slot.iterations > MAX_ITERATIONS) throw bad(`keyslot ${i} iteration count ${slot.iterations} is implausibly high`);
    if (slot.keyOffset < KEY_SLOT_OFFSET_SECTORS) throw bad(`keyslot ${i} is overlapping with the header`);
    if (slot.keyOffset + splitKeySectors(keyBytes, slot.stripes) > payloadOffset)
      throw bad(`keyslot ${i} is overlapping with the encrypted payload`);
    slots.push(slot);
  }
  for (let i = 0; i < LUKS_SLOTS; i++) {
    for (let j = i + 1; j < LUKS_SLOTS; j++) {
      const a = slots[i]!;
      const b = slots[j]!;
      const aEnd = a.keyOffset + splitKeySectors(keyBytes, a.stripes);
      const bEnd = b.keyOffset + splitKeySectors(keyBytes, b.stripes);
      if (aEnd > b.keyOffset && bEnd > a.keyOffset) throw bad(`keyslots ${i} and ${j} are overlapping in the header`);
    }
  }
  const params = parseParams(file, cipherName, cipherModeSpec, hashSpec, keyBytes);
  return {
    ...params,
    cipherName,
    cipherModeSpec,
    hashSpec,
    payloadOffset,
    keyBytes,
    digest: s.bytesAt(112, LUKS_DIGEST_LEN).slice(),
    digestSalt: s.bytesAt(132, LUKS_SALT_LEN).slice(),
    digestIterations,
    uuid,
    slots,
  };
}

/** "<mode>-<ivgen>[:<ivhash>]" and the cipher/hash names, as qcrypto_block_luks_parse_header reads them. */
function parseParams(file: string, cipherName: string, modeSpec: string, hashSpec: string, keyBytes: number): LuksParams {
  const dash = modeSpec.indexOf('-');
  if (dash < 0) throw new CorruptImageError(file, `LUKS header: unexpected cipher mode string format ${modeSpec}`);
  const modeName = modeSpec.slice(0, dash);
  let ivgenName = modeSpec.slice(dash + 1);
  let ivgenHash: HashName | undefined;
  const colon = ivgenName.indexOf(':');
  if (colon >= 0) {
    const h = ivgenName.slice(colon + 1);
    if (!isHashName(h)) throw new UnsupportedError(file, `LUKS hash algorithm ${h} is not supported`);
    ivgenHash = h;
    ivgenName = ivgenName.slice(0, colon);
  }
  if (!MODES.includes(modeName as CipherMode)) throw new UnsupportedError(file, `LUKS cipher mode ${modeName} is not supported`);
  const mode = modeName as CipherMode;
  const perKey = mode === 'xts' ? keyBytes / 2 : keyBytes;
  // QEMU's table (qcrypto_block_luks_cipher_size_map_*). Every one of them opens for info;
  // only AES can be unlocked here (unlockLuks says so).
  const sizes = LUKS_CIPHER_SIZES[cipherName];
  if (!sizes?.includes(perKey))
    throw new UnsupportedError(file, `LUKS cipher ${cipherName} with key size ${perKey} bytes is not supported`);
  if (!isHashName(hashSpec)) throw new UnsupportedError(file, `LUKS hash algorithm ${hashSpec} is not supported`);
  if (!IVGENS.includes(ivgenName as IvGenName)) throw new UnsupportedError(file, `LUKS IV generator ${ivgenName} is not supported`);
  const ivgen = ivgenName as IvGenName;
  if (ivgen === 'essiv') {
    if (!ivgenHash) throw new CorruptImageError(file, 'LUKS header: missing IV generator hash specification');
    if (!essivSupported(ivgenHash))
      throw new UnsupportedError(file, `LUKS ESSIV with ${ivgenHash}: no ${cipherName} cipher with that key size`);
  } else ivgenHash = undefined; // dm-crypt ignores a hash on plain/plain64, and so does QEMU
  return { cipherAlg: `${cipherName}-${perKey * 8}`, mode, ivgen, ivgenHash, hash: hashSpec };
}

/** The `encrypt` object of qemu-img info (qcrypto_block_luks_get_info), in qemu-img's key order. */
export function luksInfo(h: LuksHeader): Record<string, unknown> {
  const info: Record<string, unknown> = { 'ivgen-alg': h.ivgen, 'hash-alg': h.hash, 'cipher-alg': h.cipherAlg, uuid: h.uuid };
  if (h.ivgen === 'essiv') info['ivgen-hash-alg'] = h.ivgenHash;
  info.format = 'luks';
  info['cipher-mode'] = h.mode;
  info.slots = h.slots.map((s) =>
    s.active
      ? { active: true, iters: s.iterations, 'key-offset': s.keyOffset * SECTOR, stripes: s.stripes }
      : { active: false, 'key-offset': s.keyOffset * SECTOR },
  );
  info['payload-offset'] = h.payloadOffset * SECTOR;
  info['master-key-iters'] = h.digestIterations;
  return info;
}

/** The 592-byte header as written to disk. */
export function serializeLuksHeader(h: LuksHeader): Uint8Array {
  const s = Struct.alloc(LUKS_HEADER_SIZE);
  s.setBytes(0, Uint8Array.from(LUKS_MAGIC)).setU16(6, 1);
  // Each string field keeps a terminating NUL (the reader insists on one).
  s.setString(8, h.cipherName, 31).setString(40, h.cipherModeSpec, 31).setString(72, h.hashSpec, 31);
  s.setU32(104, h.payloadOffset).setU32(108, h.keyBytes);
  s.setBytes(112, h.digest).setBytes(132, h.digestSalt).setU32(164, h.digestIterations);
  s.setString(168, h.uuid, 39);
  h.slots.forEach((slot, i) => {
    const o = 208 + 48 * i;
    s.setU32(o, slot.active ? SLOT_ENABLED : SLOT_DISABLED).setU32(o + 4, slot.iterations);
    s.setBytes(o + 8, slot.salt)
      .setU32(o + 40, slot.keyOffset)
      .setU32(o + 44, slot.stripes);
  });
  return s.bytes;
}
