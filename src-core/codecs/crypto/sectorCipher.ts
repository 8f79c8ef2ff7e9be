import type { AesEcb } from '../types.ts';
import { AES_BLOCK, AesKey, xorInto } from './aes.ts';
import type { IvGenerator } from './ivgen.ts';

export const SECTOR = 512;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
export type CipherMode = 'xts' | 'cbc' | 'ecb' | 'ctr';

/**
 * Encrypts and decrypts whole 512-byte sectors in place, each sector with its own IV, as
 * QEMU's qcrypto_block_cipher_*_helper does for LUKS payloads, LUKS key material and legacy
 * qcow AES. `firstSector` numbers the first sector of `data`.
 */
export class SectorCipher {
  private readonly data: AesKey;
  private readonly tweak: AesKey | undefined;

  constructor(
    readonly mode: CipherMode,
    key: Uint8Array,
    private readonly ivgen: IvGenerator,
    engine?: AesEcb,
  ) {
    if (mode === 'xts') {
      // XTS keys are two AES keys back to back: data key, then tweak key.
      const half = key.length / 2;
      this.data = new AesKey(key.slice(0, half), engine);
      this.tweak = new AesKey(key.slice(half), engine);
    } else this.data = new AesKey(key, engine);
  }

  private sectors(data: Uint8Array): number {
    if (data.length % SECTOR !== 0) throw new RangeError(`sector cipher: ${data.length} bytes is not a whole number of sectors`);
    return data.length / SECTOR;
  }

  encrypt(data: Uint8Array, firstSector: number): void {
    const n = this.sectors(data);
    if (!n) return;
    switch (this.mode) {
      case 'xts':
        return this.xts(data, firstSector, n, true);
      case 'ecb':
        data.set(this.data.encryptBlocks(data));
        return;
      case 'ctr':
        return this.ctr(data, firstSector, n);
      case 'cbc': {
        const ivs = this.ivgen.ivs(firstSector, n);
        for (let s = 0; s < n; s++) {
          const sector = data.subarray(s * SECTOR, (s + 1) * SECTOR);
          sector.set(this.data.cbcEncrypt(sector, ivs.subarray(s * AES_BLOCK, (s + 1) * AES_BLOCK)));
        }
        return;
      }
    }
  }

  decrypt(data: Uint8Array, firstSector: number): void {
    const n = this.sectors(data);
    if (!n) return;
    switch (this.mode) {
      case 'xts':
        return this.xts(data, firstSector, n, false);
      case 'ecb':
        data.set(this.data.decryptBlocks(data));
        return;
      case 'ctr':
        return this.ctr(data, firstSector, n);
      case 'cbc': {
        // CBC decryption is parallel: decrypt every block, then XOR with the previous
        // ciphertext block (the sector's IV for its first block).
        const ivs = this.ivgen.ivs(firstSector, n);
        const plain = this.data.decryptBlocks(data);
        for (let s = 0; s < n; s++) {
          const base = s * SECTOR;
          for (let i = 0; i < AES_BLOCK; i++) plain[base + i]! ^= ivs[s * AES_BLOCK + i]!;
          for (let i = base + AES_BLOCK; i < base + SECTOR; i++) plain[i]! ^= data[i - AES_BLOCK]!;
        }
        data.set(plain);
        return;
      }
    }
  }

  /**
   * XTS (IEEE 1619) per sector: T0 = E_K2(IV), T_{j+1} = T_j·α in GF(2^128) (little-endian,
   * reduction 0x87); C = E_K1(P ⊕ T) ⊕ T. Sectors are whole blocks, so no ciphertext stealing.
   * Tweaks are built as 32-bit words (the 128-bit value is little-endian; so are the platforms
   * this runs on, checked below), which keeps the per-block cost to a few word operations.
   */
  private xts(data: Uint8Array, firstSector: number, n: number, encrypt: boolean): void {
    let t0 = this.tweak!.encryptBlocks(this.ivgen.ivs(firstSector, n));
    if (t0.byteOffset % 4) t0 = t0.slice(); // an engine may return a view at any offset
    const tweaks = new Uint8Array(data.length);
    const blocksPerSector = SECTOR / AES_BLOCK;
    if (LITTLE_ENDIAN) {
      const t0w = new Uint32Array(t0.buffer, t0.byteOffset, t0.length / 4);
      const tw = new Uint32Array(tweaks.buffer);
      for (let s = 0, o = 0; s < n; s++) {
        let w0 = t0w[4 * s]!,
          w1 = t0w[4 * s + 1]!,
          w2 = t0w[4 * s + 2]!,
          w3 = t0w[4 * s + 3]!;
        for (let j = 0; j < blocksPerSector; j++, o += 4) {
          tw[o] = w0;
          tw[o + 1] = w1;
          tw[o + 2] = w2;
          tw[o + 3] = w3;
          const carry = w3 >>> 31;
          w3 = (w3 << 1) | (w2 >>> 31);
          w2 = (w2 << 1) | (w1 >>> 31);
          w1 = (w1 << 1) | (w0 >>> 31);
          w0 = (w0 << 1) ^ (carry * 0x87);
        }
      }
    } else {
      for (let s = 0; s < n; s++) {
        let at = s * SECTOR;
        tweaks.set(t0.subarray(s * AES_BLOCK, (s + 1) * AES_BLOCK), at);
        for (let j = 1; j < blocksPerSector; j++, at += AES_BLOCK) {
          let carry = 0;
          for (let i = 0; i < AES_BLOCK; i++) {
            const b = tweaks[at + i]!;
            tweaks[at + AES_BLOCK + i] = ((b << 1) | carry) & 0xff;
            carry = b >> 7;
          }
          if (carry) tweaks[at + AES_BLOCK]! ^= 0x87;
        }
      }
    }
    xorInto(data, tweaks);
    const out = encrypt ? this.data.encryptBlocks(data) : this.data.decryptBlocks(data);
    xorInto(out, tweaks);
    data.set(out);
  }

  /** CTR (nettle ctr_crypt): the IV is a 128-bit big-endian counter, one step per block. */
  private ctr(data: Uint8Array, firstSector: number, n: number): void {
    const ivs = this.ivgen.ivs(firstSector, n);
    const counters = new Uint8Array(data.length);
    for (let s = 0; s < n; s++) {
      const ctr = ivs.slice(s * AES_BLOCK, (s + 1) * AES_BLOCK);
      for (let j = 0; j < SECTOR / AES_BLOCK; j++) {
        counters.set(ctr, s * SECTOR + j * AES_BLOCK);
        for (let i = AES_BLOCK - 1; i >= 0; i--) {
          ctr[i] = (ctr[i]! + 1) & 0xff;
          if (ctr[i] !== 0) break;
        }
      }
    }
    xorInto(data, this.data.encryptBlocks(counters));
  }
}
