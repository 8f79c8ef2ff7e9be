/**
 * A small, slow, strict raw-deflate decoder (RFC 1951) for tests, after the structure of Mark
 * Adler's puff.c. Unlike zlib's inflate it enforces a window limit on every back-reference:
 * with `maxDistance` 4096 it rejects any stream a decoder with a 4 KiB window could not decode
 * (zlib's inflate accepts those whenever its output buffer still holds the bytes; docs/performance.md
 * "Checking the 4 KiB window"). It stops at the final block and ignores what follows, as QEMU
 * does with the sector-rounded bytes of a qcow2 compressed cluster.
 */
export class StrictInflateError extends Error {}

const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385,
  24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

interface Huffman {
  count: Uint16Array;
  symbol: Uint16Array;
}

function buildHuffman(lengths: ArrayLike<number>, n: number): Huffman {
  const count = new Uint16Array(16);
  const symbol = new Uint16Array(n);
  for (let s = 0; s < n; s++) count[lengths[s]!]!++;
  let left = 1;
  for (let len = 1; len < 16; len++) {
    left = left * 2 - count[len]!;
    if (left < 0) throw new StrictInflateError('over-subscribed Huffman code');
  }
  const offs = new Uint16Array(16);
  for (let len = 1; len < 15; len++) offs[len + 1] = offs[len]! + count[len]!;
  for (let s = 0; s < n; s++) if (lengths[s]) symbol[offs[lengths[s]!]!++] = s;
  return { count, symbol };
}

export interface StrictInflateResult {
  out: Uint8Array;
  /** The longest back-reference distance the stream used. */
  maxDistanceUsed: number;
  /** Bytes of input the stream occupied. */
  consumed: number;
}

export function strictInflateRaw(data: Uint8Array, maxDistance: number, maxOutput: number): StrictInflateResult {
  let pos = 0;
  let bitBuf = 0;
  let bitCnt = 0;
  const out = new Uint8Array(maxOutput);
  let o = 0;
  let maxUsed = 0;

  const bits = (need: number): number => {
    let val = bitBuf;
    while (bitCnt < need) {
      if (pos >= data.length) throw new StrictInflateError('stream ends early');
      val |= data[pos++]! << bitCnt;
      bitCnt += 8;
    }
    bitBuf = val >>> need;
    bitCnt -= need;
    return val & ((1 << need) - 1);
  };
  const decode = (h: Huffman): number => {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len < 16; len++) {
      code |= bits(1);
      const count = h.count[len]!;
      if (code - count < first) return h.symbol[index + (code - first)]!;
      index += count;
      first = (first + count) * 2;
      code *= 2;
    }
    throw new StrictInflateError('invalid Huffman code');
  };
  const put = (b: number) => {
    if (o >= maxOutput) throw new StrictInflateError(`output exceeds ${maxOutput} bytes`);
    out[o++] = b;
  };
  const codes = (lit: Huffman, dist: Huffman) => {
    for (;;) {
      const sym = decode(lit);
      if (sym < 256) put(sym);
      else if (sym === 256) return;
      else {
        const li = sym - 257;
        if (li >= 29) throw new StrictInflateError('invalid length symbol');
        const len = LEN_BASE[li]! + bits(LEN_EXTRA[li]!);
        const di = decode(dist);
        if (di >= 30) throw new StrictInflateError('invalid distance symbol');
        const d = DIST_BASE[di]! + bits(DIST_EXTRA[di]!);
        if (d > o) throw new StrictInflateError(`distance ${d} before the start of the output`);
        if (d > maxDistance) throw new StrictInflateError(`distance ${d} exceeds the ${maxDistance}-byte window at output byte ${o}`);
        if (d > maxUsed) maxUsed = d;
        for (let k = 0; k < len; k++) put(out[o - d]!);
      }
    }
  };

  let fixed: { lit: Huffman; dist: Huffman } | undefined;
  let last: number;
  do {
    last = bits(1);
    const type = bits(2);
    if (type === 0) {
      bitBuf = 0;
      bitCnt = 0;
      if (pos + 4 > data.length) throw new StrictInflateError('stream ends early');
      const len = data[pos]! | (data[pos + 1]! << 8);
      const nlen = data[pos + 2]! | (data[pos + 3]! << 8);
      if (len !== (~nlen & 0xffff)) throw new StrictInflateError('stored block length check failed');
      pos += 4;
      if (pos + len > data.length) throw new StrictInflateError('stream ends early');
      for (let k = 0; k < len; k++) put(data[pos + k]!);
      pos += len;
    } else if (type === 1) {
      if (!fixed) {
        const l = new Uint8Array(288);
        l.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
        fixed = { lit: buildHuffman(l, 288), dist: buildHuffman(new Uint8Array(30).fill(5), 30) };
      }
      codes(fixed.lit, fixed.dist);
    } else if (type === 2) {
      const nlen = bits(5) + 257;
      const ndist = bits(5) + 1;
      const ncode = bits(4) + 4;
      if (nlen > 286 || ndist > 30) throw new StrictInflateError('bad dynamic block counts');
      const cl = new Uint8Array(19);
      for (let k = 0; k < ncode; k++) cl[CL_ORDER[k]!] = bits(3);
      const clh = buildHuffman(cl, 19);
      const lengths = new Uint8Array(nlen + ndist);
      for (let k = 0; k < nlen + ndist;) {
        const sym = decode(clh);
        if (sym < 16) lengths[k++] = sym;
        else {
          let rep: number;
          let val = 0;
          if (sym === 16) {
            if (!k) throw new StrictInflateError('repeat with no previous length');
            val = lengths[k - 1]!;
            rep = 3 + bits(2);
          } else rep = sym === 17 ? 3 + bits(3) : 11 + bits(7);
          if (k + rep > nlen + ndist) throw new StrictInflateError('too many code lengths');
          while (rep--) lengths[k++] = val;
        }
      }
      if (!lengths[256]) throw new StrictInflateError('no end-of-block code');
      codes(buildHuffman(lengths.subarray(0, nlen), nlen), buildHuffman(lengths.subarray(nlen), ndist));
    } else throw new StrictInflateError('invalid block type 3');
  } while (!last);
  return { out: out.subarray(0, o), maxDistanceUsed: maxUsed, consumed: pos };
}
