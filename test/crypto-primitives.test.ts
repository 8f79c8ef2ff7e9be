import { createCipheriv, createDecipheriv, createHash, pbkdf2Sync, randomBytes as nodeRandom } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { afMerge, afSplit } from '../src-core/codecs/crypto/afsplit.ts';
import { makeIvGenerator } from '../src-core/codecs/crypto/ivgen.ts';
import { createLuks, unlockLuks } from '../src-core/codecs/crypto/luks.ts';
import { parseLuksHeader } from '../src-core/codecs/crypto/luksHeader.ts';
import { noblePbkdf2 } from '../src-core/codecs/crypto/pbkdf2.ts';
import { webCryptoPbkdf2 } from '../src-core/codecs/crypto/webPbkdf2.ts';
import { SectorCipher } from '../src-core/codecs/crypto/sectorCipher.ts';
import type { HashName } from '../src-core/codecs/types.ts';
import { nodeCodecs } from '../cli/nodeCodecs.ts';
import { CorruptImageError } from '../src-core/io/errors.ts';

// The JavaScript crypto against OpenSSL (node:crypto), an independent implementation: every
// mode/IV generator qemu-img offers for LUKS, PBKDF2 for every hash, and the AF splitter.

const SECTOR = 512;
const le64 = (n: bigint) => {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(n);
  return b;
};

/** Encrypts `data` sector by sector with OpenSSL, IV per sector from `iv(sector)`. */
function opensslSectors(
  alg: string,
  key: Uint8Array,
  data: Uint8Array,
  first: bigint,
  iv: (s: bigint) => Buffer | null,
  decrypt = false,
): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length / SECTOR; i++) {
    const c = (decrypt ? createDecipheriv : createCipheriv)(alg, key, iv(first + BigInt(i)));
    c.setAutoPadding(false);
    out.push(Buffer.concat([c.update(data.subarray(i * SECTOR, (i + 1) * SECTOR)), c.final()]));
  }
  return Buffer.concat(out);
}

const essivIv = (key: Uint8Array, hash: string, ecbAlg: string) => (s: bigint) => {
  const salt = createHash(hash).update(key).digest();
  const c = createCipheriv(ecbAlg, salt, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(le64(s)), c.final()]);
};

const CASES: {
  name: string;
  mode: 'xts' | 'cbc' | 'ecb' | 'ctr';
  ivgen: 'plain' | 'plain64' | 'essiv';
  keyLen: number;
  openssl: string;
  iv: (key: Uint8Array) => (s: bigint) => Buffer | null;
  essivHash?: HashName;
}[] = [
  { name: 'aes-256-xts-plain64', mode: 'xts', ivgen: 'plain64', keyLen: 64, openssl: 'aes-256-xts', iv: () => le64 },
  { name: 'aes-128-xts-plain64', mode: 'xts', ivgen: 'plain64', keyLen: 32, openssl: 'aes-128-xts', iv: () => le64 },
  {
    name: 'aes-256-xts-plain (32-bit sector)',
    mode: 'xts',
    ivgen: 'plain',
    keyLen: 64,
    openssl: 'aes-256-xts',
    iv: () => (s) => le64(s & 0xffffffffn),
  },
  { name: 'aes-128-cbc-plain64 (legacy qcow AES)', mode: 'cbc', ivgen: 'plain64', keyLen: 16, openssl: 'aes-128-cbc', iv: () => le64 },
  { name: 'aes-192-cbc-plain64', mode: 'cbc', ivgen: 'plain64', keyLen: 24, openssl: 'aes-192-cbc', iv: () => le64 },
  {
    name: 'aes-128-cbc-essiv:sha256 (AES-256 ESSIV)',
    mode: 'cbc',
    ivgen: 'essiv',
    essivHash: 'sha256',
    keyLen: 16,
    openssl: 'aes-128-cbc',
    iv: (k) => essivIv(k, 'sha256', 'aes-256-ecb'),
  },
  {
    name: 'aes-256-cbc-essiv:md5 (AES-128 ESSIV)',
    mode: 'cbc',
    ivgen: 'essiv',
    essivHash: 'md5',
    keyLen: 32,
    openssl: 'aes-256-cbc',
    iv: (k) => essivIv(k, 'md5', 'aes-128-ecb'),
  },
  {
    name: 'aes-256-xts-essiv:sha256',
    mode: 'xts',
    ivgen: 'essiv',
    essivHash: 'sha256',
    keyLen: 64,
    openssl: 'aes-256-xts',
    iv: (k) => essivIv(k, 'sha256', 'aes-256-ecb'),
  },
  { name: 'aes-256-ecb', mode: 'ecb', ivgen: 'plain64', keyLen: 32, openssl: 'aes-256-ecb', iv: () => () => null },
  { name: 'aes-256-ctr-plain64', mode: 'ctr', ivgen: 'plain64', keyLen: 32, openssl: 'aes-256-ctr', iv: () => le64 },
];

const ENGINES = [
  ['noble', undefined],
  ['Node codec', nodeCodecs.aesEcb],
] as const;
const ENGINE_CASES = ENGINES.flatMap(([engine, impl]) => CASES.map((c) => ({ ...c, engine, impl })));

describe('sector ciphers match OpenSSL', () => {
  it.each(ENGINE_CASES)('$name ($engine ECB)', (c) => {
    const key = new Uint8Array(nodeRandom(c.keyLen));
    const plain = new Uint8Array(nodeRandom(5 * SECTOR));
    // A first sector past 2^32 checks the high word of plain64 (and its absence in plain).
    const first = 2 ** 32 + 3;
    // ESSIV hashes the whole key (both XTS halves), as QEMU's ivgen gets the master key.
    const cipher = new SectorCipher(c.mode, key, makeIvGenerator(c.ivgen, key, c.essivHash, c.impl), c.impl);
    const data = plain.slice();
    cipher.encrypt(data, first);
    const ref = opensslSectors(c.openssl, key, plain, BigInt(first), c.iv(key));
    expect(Buffer.from(data).equals(ref)).toBe(true);
    cipher.decrypt(data, first);
    expect(Buffer.from(data).equals(Buffer.from(plain))).toBe(true);
  });

  it('refuses data that is not whole sectors', () => {
    const cipher = new SectorCipher('xts', new Uint8Array(64), makeIvGenerator('plain64', new Uint8Array(64)));
    expect(() => cipher.decrypt(new Uint8Array(1000), 0)).toThrow(RangeError);
  });
});

describe('PBKDF2', () => {
  const HASHES: HashName[] = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'ripemd160'];
  it.each(HASHES)('noble, WebCrypto (or its fallback) and the Node codec agree with OpenSSL for %s', async (h) => {
    const pw = new TextEncoder().encode('correct horse');
    const salt = new Uint8Array(32).fill(7);
    const ref = pbkdf2Sync(pw, salt, 1234, 70, h);
    expect(Buffer.from(await noblePbkdf2(h, pw, salt, 1234, 70)).equals(ref)).toBe(true);
    expect(Buffer.from(await nodeCodecs.pbkdf2!(h, pw, salt, 1234, 70)).equals(ref)).toBe(true);
    expect(Buffer.from(await webCryptoPbkdf2(h, pw, salt, 1234, 70)).equals(ref)).toBe(true);
  });

  it('an empty password works everywhere (WebCrypto may refuse it; the fallback must not)', async () => {
    const ref = pbkdf2Sync(new Uint8Array(0), new Uint8Array(32), 1000, 32, 'sha256');
    expect(Buffer.from(await webCryptoPbkdf2('sha256', new Uint8Array(0), new Uint8Array(32), 1000, 32)).equals(ref)).toBe(true);
  });
});

/** The LUKS1 spec's AF merge, written again here with OpenSSL hashes. */
function referenceMerge(hash: string, keyLen: number, stripes: number, material: Uint8Array): Buffer {
  const dl = createHash(hash).digest().length;
  let d = Buffer.alloc(keyLen);
  for (let i = 0; i < stripes; i++) {
    const s = material.subarray(i * keyLen, (i + 1) * keyLen);
    d = Buffer.from(d.map((b, k) => b ^ s[k]!));
    if (i === stripes - 1) break;
    const next = Buffer.alloc(keyLen);
    for (let j = 0; j * dl < keyLen; j++) {
      const piece = d.subarray(j * dl, Math.min(keyLen, (j + 1) * dl));
      const iv = Buffer.alloc(4);
      iv.writeUInt32BE(j);
      createHash(hash)
        .update(iv)
        .update(piece)
        .digest()
        .copy(next, j * dl, 0, piece.length);
    }
    d = next;
  }
  return d;
}

describe('anti-forensic split and merge', () => {
  it.each([
    ['sha1', 64],
    ['sha256', 64],
    ['sha512', 48],
    ['md5', 32],
  ] as [HashName, number][])('%s, %d-byte key', (h, keyLen) => {
    const key = new Uint8Array(nodeRandom(keyLen));
    const split = afSplit(h, key, 40, (n) => new Uint8Array(nodeRandom(n)));
    expect(split.length).toBe(keyLen * 40);
    expect(Buffer.from(afMerge(h, keyLen, 40, split)).equals(Buffer.from(key))).toBe(true);
    expect(referenceMerge(h, keyLen, 40, split).equals(Buffer.from(key))).toBe(true);
  });
});

describe('LUKS header checks', () => {
  const make = async () =>
    (
      await createLuks(
        new TextEncoder().encode('pw'),
        { cipherAlg: 'aes-256', mode: 'xts', ivgen: 'plain64', hash: 'sha256', iterTimeMs: 1 },
        nodeCodecs.pbkdf2!,
      )
    ).bytes;

  it('a header we create parses to the qemu-img default layout', async () => {
    const h = parseLuksHeader('x', await make());
    expect(h.cipherModeSpec).toBe('xts-plain64');
    expect(h.keyBytes).toBe(64);
    expect(h.payloadOffset).toBe(4040); // 8 + 8 × 504 sectors (docs/formats/qcow2.md, LUKS)
    expect(h.slots.map((s) => s.keyOffset)).toEqual([8, 512, 1016, 1520, 2024, 2528, 3032, 3536]);
    expect(h.slots.filter((s) => s.active)).toHaveLength(1);
    expect(h.slots[0]!.iterations).toBeGreaterThanOrEqual(1000);
    expect(h.digestIterations).toBeGreaterThanOrEqual(1000);
  });

  const mutations: [string, (v: DataView) => void, RegExp][] = [
    ['bad magic', (v) => v.setUint8(0, 0), /magic/],
    ['stripes 0', (v) => v.setUint32(208 + 44, 0), /stripes 0 != 4000/],
    ['slot state', (v) => v.setUint32(208 + 48, 0x12345678), /state/],
    ['slot overlapping payload', (v) => v.setUint32(104, 100), /overlapping with the encrypted payload/],
    ['slots overlapping', (v) => v.setUint32(208 + 48 + 40, 9), /overlapping/],
    ['zero digest iterations', (v) => v.setUint32(164, 0), /iteration count is zero/],
    ['2^32-1 slot iterations (a hang)', (v) => v.setUint32(208 + 4, 0xffffffff), /implausibly high/],
    ['unterminated cipher name', (v) => new Uint8Array(v.buffer, 8, 32).fill(0x61), /NUL terminated/],
    ['absurd key length', (v) => v.setUint32(108, 1 << 30), /implausible/],
  ];
  it.each(mutations)('%s is refused with a typed error', async (_n, mutate, msg) => {
    const bytes = (await make()).slice(0, 4096);
    mutate(new DataView(bytes.buffer));
    let err: unknown;
    try {
      parseLuksHeader('vol.qcow2', bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CorruptImageError);
    expect((err as Error).message).toMatch(msg);
    expect((err as Error).message).toMatch(/^vol\.qcow2: /);
  });

  it('serpent parses (info works, as in qemu-img) but unlocking says it is unsupported', async () => {
    const bytes = (await make()).slice();
    bytes.set(new TextEncoder().encode('serpent\0'), 8);
    const h = parseLuksHeader('v', bytes);
    expect(h.cipherAlg).toBe('serpent-256');
    const read = async (o: number, l: number) => bytes.slice(o, o + l);
    await expect(unlockLuks('v', h, read, new TextEncoder().encode('pw'), nodeCodecs.pbkdf2!)).rejects.toThrow(
      /serpent-256 is not supported/,
    );
  });

  it('unlocks with the right password and refuses a wrong one', async () => {
    const bytes = await make();
    const h = parseLuksHeader('v', bytes);
    const read = async (o: number, l: number) => bytes.slice(o, o + l);
    expect((await unlockLuks('v', h, read, new TextEncoder().encode('pw'), nodeCodecs.pbkdf2!)).length).toBe(64);
    await expect(unlockLuks('v', h, read, new TextEncoder().encode('pW'), nodeCodecs.pbkdf2!)).rejects.toThrow(/wrong password/);
  });
});
