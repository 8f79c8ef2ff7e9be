import { CorruptImageError, UnsupportedError, WrongPasswordError } from '../../io/errors.ts';
import { bytesEqual } from '../../io/struct.ts';
import type { AesEcb, HashName, Pbkdf2 } from '../types.ts';
import { afMerge, afSplit, randomBytes } from './afsplit.ts';
import { HASHES } from './hashes.ts';
import { makeIvGenerator } from './ivgen.ts';
import {
  KEY_SLOT_OFFSET_SECTORS,
  LUKS_DIGEST_LEN,
  LUKS_SALT_LEN,
  LUKS_SLOTS,
  LUKS_STRIPES,
  serializeLuksHeader,
  splitKeySectors,
  type LuksHeader,
  type LuksParams,
  type LuksSlot,
} from './luksHeader.ts';
import { passwordBytes } from './password.ts';
import { SECTOR, SectorCipher } from './sectorCipher.ts';

/** The payload (or key-material) cipher for a key: mode + IV generator from the header. */
export function luksSectorCipher(p: LuksParams, key: Uint8Array, engine?: AesEcb): SectorCipher {
  return new SectorCipher(p.mode, key, makeIvGenerator(p.ivgen, key, p.ivgenHash, engine), engine);
}

/** Key material is decrypted in whole sectors; a partial last sector decrypts the same either way. */
function materialBytes(keyBytes: number, stripes: number): number {
  return Math.ceil((keyBytes * stripes) / SECTOR) * SECTOR;
}

/** Most key material QEMU could ever write (64-byte key × 4000 stripes is 250 KiB); bounds hostile headers. */
const MAX_MATERIAL = 64 * 1024 * 1024;

/**
 * Finds the master key (qcrypto_block_luks_find_key): for each active slot, PBKDF2 the password
 * into a slot key, decrypt the slot's key material (sectors numbered from 0), AF-merge it and
 * accept it when PBKDF2 of the result matches the header digest.
 * `read(offset, length)` reads from the start of the LUKS header.
 */
export async function unlockLuks(
  file: string,
  h: LuksHeader,
  read: (offset: number, length: number) => Promise<Uint8Array>,
  secret: Uint8Array,
  pbkdf2: Pbkdf2,
  engine?: AesEcb,
): Promise<Uint8Array> {
  if (h.cipherName !== 'aes') throw new UnsupportedError(file, `LUKS cipher ${h.cipherAlg} is not supported by DiskFerry (only aes)`);
  const password = passwordBytes(secret);
  for (const slot of h.slots) {
    if (!slot.active) continue;
    const len = materialBytes(h.keyBytes, slot.stripes);
    if (len > MAX_MATERIAL) throw new CorruptImageError(file, `LUKS key slot has ${slot.stripes} stripes, too many`);
    const slotKey = await pbkdf2(h.hash, password, slot.salt, slot.iterations, h.keyBytes);
    const material = await read(slot.keyOffset * SECTOR, len);
    luksSectorCipher(h, slotKey, engine).decrypt(material, 0);
    const candidate = afMerge(h.hash, h.keyBytes, slot.stripes, material);
    const digest = await pbkdf2(h.hash, candidate, h.digestSalt, h.digestIterations, LUKS_DIGEST_LEN);
    if (bytesEqual(digest, h.digest)) return candidate;
  }
  throw new WrongPasswordError(file, 'wrong password: no LUKS key slot could be unlocked');
}

const MIN_SLOT_ITERS = 1000;
const MIN_DIGEST_ITERS = 1000;
const UINT32_MAX = 2 ** 32 - 1;

/**
 * PBKDF2 iterations per second for one output block of `hash`, measured on this platform
 * (qcrypto_pbkdf2_count_iters times thread CPU; wall time is what we have). The probe stops
 * once a run takes 50 ms, so calibration costs a fraction of a second.
 */
export async function pbkdf2Rate(pbkdf2: Pbkdf2, hash: HashName): Promise<number> {
  const pw = new Uint8Array(16);
  const salt = new Uint8Array(LUKS_SALT_LEN);
  const len = HASHES[hash].digestLength;
  let iterations = 1000;
  for (;;) {
    const t0 = performance.now();
    await pbkdf2(hash, pw, salt, iterations, len);
    const ms = performance.now() - t0;
    if (ms >= 50 || iterations >= 2 ** 26) return (iterations * 1000) / Math.max(ms, 0.01);
    iterations = Math.min(2 ** 26, Math.ceil(ms < 5 ? iterations * 10 : (iterations * 60) / ms));
  }
}

export interface LuksCreateOptions extends LuksParams {
  /** Milliseconds PBKDF2 should take to unlock the slot (qemu's encrypt.iter-time, default 2000). */
  iterTimeMs: number;
}

export interface CreatedLuks {
  header: LuksHeader;
  masterKey: Uint8Array;
  /** Header and slot 0's key material, from the start of the LUKS area. */
  bytes: Uint8Array;
  /** Size of the whole LUKS area (payload offset), which the container reserves. */
  length: number;
}

function uuidV4(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Key bytes for QEMU's cipher-alg names; XTS doubles them. */
export function luksKeyBytes(cipherAlg: string, mode: string): number {
  const bits = Number(/^aes-(128|192|256)$/.exec(cipherAlg)?.[1]);
  if (!bits) throw new RangeError(`unsupported cipher ${cipherAlg}`);
  return (bits / 8) * (mode === 'xts' ? 2 : 1);
}

/** Bytes a new LUKS area takes (header and all 8 key-material slots): what a container reserves. */
export function luksAreaBytes(cipherAlg: string, mode: string): number {
  return (KEY_SLOT_OFFSET_SECTORS + splitKeySectors(luksKeyBytes(cipherAlg, mode), LUKS_STRIPES) * LUKS_SLOTS) * SECTOR;
}

/**
 * A new LUKS1 volume header with slot 0 holding a random master key (qcrypto_block_luks_create):
 * all 8 slots laid out 4000 stripes apart, iterations calibrated to `iterTimeMs`.
 */
export async function createLuks(secret: Uint8Array, o: LuksCreateOptions, pbkdf2: Pbkdf2, engine?: AesEcb): Promise<CreatedLuks> {
  const password = passwordBytes(secret);
  const keyBytes = luksKeyBytes(o.cipherAlg, o.mode);
  const dl = HASHES[o.hash].digestLength;
  const rate = await pbkdf2Rate(pbkdf2, o.hash);
  const scaled = (blocks: number) => (rate / blocks) * (o.iterTimeMs / 1000);
  const slotIters = Math.min(UINT32_MAX, Math.max(MIN_SLOT_ITERS, Math.floor(scaled(Math.ceil(keyBytes / dl)))));
  // /8 as cryptsetup and QEMU do, so that checking all 8 slots costs about one iter-time.
  const digestIters = Math.min(UINT32_MAX, Math.max(MIN_DIGEST_ITERS, Math.floor(scaled(Math.ceil(LUKS_DIGEST_LEN / dl)) / 8)));

  const masterKey = randomBytes(keyBytes);
  const digestSalt = randomBytes(LUKS_SALT_LEN);
  const digest = await pbkdf2(o.hash, masterKey, digestSalt, digestIters, LUKS_DIGEST_LEN);
  const slotSectors = splitKeySectors(keyBytes, LUKS_STRIPES);
  const slots: LuksSlot[] = [];
  for (let i = 0; i < LUKS_SLOTS; i++) {
    slots.push({
      active: i === 0,
      iterations: 0,
      salt: new Uint8Array(LUKS_SALT_LEN),
      keyOffset: KEY_SLOT_OFFSET_SECTORS + slotSectors * i,
      stripes: LUKS_STRIPES,
    });
  }
  const slot = slots[0]!;
  slot.salt = randomBytes(LUKS_SALT_LEN);
  slot.iterations = slotIters;
  const slotKey = await pbkdf2(o.hash, password, slot.salt, slotIters, keyBytes);
  const material = new Uint8Array(materialBytes(keyBytes, LUKS_STRIPES));
  material.set(afSplit(o.hash, masterKey, LUKS_STRIPES, randomBytes));
  luksSectorCipher(o, slotKey, engine).encrypt(material, 0);

  const modeSpec = o.ivgenHash ? `${o.mode}-${o.ivgen}:${o.ivgenHash}` : `${o.mode}-${o.ivgen}`;
  const header: LuksHeader = {
    ...o,
    cipherName: 'aes',
    cipherModeSpec: modeSpec,
    hashSpec: o.hash,
    payloadOffset: KEY_SLOT_OFFSET_SECTORS + slotSectors * LUKS_SLOTS,
    keyBytes,
    digest,
    digestSalt,
    digestIterations: digestIters,
    uuid: uuidV4(),
    slots,
  };
  const bytes = new Uint8Array(slot.keyOffset * SECTOR + material.length);
  bytes.set(serializeLuksHeader(header), 0);
  bytes.set(material, slot.keyOffset * SECTOR);
  return { header, masterKey, bytes, length: header.payloadOffset * SECTOR };
}
