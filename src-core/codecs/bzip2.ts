/**
 * A bzip2 decoder in plain TypeScript (no platform APIs), written from the format as bzip2 1.0
 * defines it: stream header "BZh1"…"BZh9", blocks (magic 0x314159265359, CRC, BWT origin,
 * symbol map, Huffman groups and selectors, MTF/RLE2 symbols), end of stream (0x177245385090,
 * combined CRC); concatenated streams are read one after another, as `bzip2 -d` does.
 *
 * Two ways in: `bunzip2Sync` for a buffer held whole (DMG chunks), and `bunzip2Stream` that
 * pulls compressed chunks and yields output in bounded pieces (compressed containers): it keeps
 * at most one block of input (≤ 2.3 MB) and one block's BWT table (3.6 MB) in memory.
 */

export class Bzip2Error extends Error {
  constructor(message: string) {
    super(`bzip2: ${message}`);
    this.name = 'Bzip2Error';
  }
}

import { CancelledError } from '../io/errors.ts';

class NeedInput extends Error {}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** MSB-first bit reader over a byte buffer; throws NeedInput at its end. */
class Bits {
  private acc = 0;
  private n = 0;
  byte: number;
  constructor(
    private readonly buf: Uint8Array,
    bitPos: number,
  ) {
    this.byte = Math.floor(bitPos / 8);
    const skip = bitPos % 8;
    if (skip) this.read(skip);
  }
  get bitPos(): number {
    return this.byte * 8 - this.n;
  }
  read(count: number): number {
    while (this.n < count) {
      if (this.byte >= this.buf.length) throw new NeedInput();
      this.acc = ((this.acc << 8) | this.buf[this.byte++]!) >>> 0;
      this.n += 8;
    }
    this.n -= count;
    const v = (this.acc >>> this.n) & ((1 << count) - 1);
    this.acc &= (1 << this.n) - 1;
    return v;
  }
  bit(): number {
    return this.read(1);
  }
  u32(): number {
    return ((this.read(16) << 16) | this.read(16)) >>> 0;
  }
}

const MAX_GROUPS = 6;
const MAX_ALPHA = 258;
const MAX_CODE_LEN = 20;
const MAX_SELECTORS = 18002;

interface Table {
  minLen: number;
  limit: Int32Array;
  base: Int32Array;
  perm: Int32Array;
}

function makeTable(lengths: Uint8Array, alphaSize: number): Table {
  let minLen = 32;
  let maxLen = 0;
  for (let i = 0; i < alphaSize; i++) {
    minLen = Math.min(minLen, lengths[i]!);
    maxLen = Math.max(maxLen, lengths[i]!);
  }
  const perm = new Int32Array(MAX_ALPHA);
  let pp = 0;
  for (let len = minLen; len <= maxLen; len++) for (let s = 0; s < alphaSize; s++) if (lengths[s] === len) perm[pp++] = s;
  const count = new Int32Array(MAX_CODE_LEN + 2);
  for (let s = 0; s < alphaSize; s++) count[lengths[s]! + 1]!++;
  for (let i = 1; i < count.length; i++) count[i]! += count[i - 1]!;
  const limit = new Int32Array(MAX_CODE_LEN + 1).fill(-1);
  const base = new Int32Array(MAX_CODE_LEN + 2);
  let vec = 0;
  for (let len = minLen; len <= maxLen; len++) {
    vec += count[len + 1]! - count[len]!;
    limit[len] = vec - 1;
    vec <<= 1;
  }
  for (let len = minLen + 1; len <= maxLen; len++) base[len] = ((limit[len - 1]! + 1) << 1) - count[len]!;
  base[minLen] = 0;
  return { minLen, limit, base, perm };
}

/** A decoded block, emitted through the inverse BWT and the run-length stage piece by piece. */
class BlockOutput {
  private pos: number;
  private left: number;
  private last = -1;
  private run = 0;
  private repeat = 0;
  crc = 0xffffffff;
  constructor(
    private readonly tt: Uint32Array,
    origPtr: number,
    nblock: number,
    readonly expectedCrc: number,
  ) {
    this.pos = tt[origPtr]! >>> 8;
    this.left = nblock;
  }
  get done(): boolean {
    return this.left === 0 && this.repeat === 0;
  }
  /** Writes up to out.length bytes; returns how many. */
  fill(out: Uint8Array): number {
    const tt = this.tt;
    let o = 0;
    let crc = this.crc;
    while (o < out.length) {
      if (this.repeat > 0) {
        const n = Math.min(this.repeat, out.length - o);
        const b = this.last;
        for (let k = 0; k < n; k++) {
          out[o++] = b;
          crc = ((crc << 8) ^ CRC_TABLE[(crc >>> 24) ^ b]!) >>> 0;
        }
        this.repeat -= n;
        continue;
      }
      if (this.left === 0) break;
      const e = tt[this.pos]!;
      const ch = e & 0xff;
      this.pos = e >>> 8;
      this.left--;
      if (this.run === 4) {
        // The byte after four equal ones counts further repeats of it.
        this.repeat = ch;
        this.run = 0;
        continue;
      }
      if (ch === this.last) this.run++;
      else {
        this.last = ch;
        this.run = 1;
      }
      out[o++] = ch;
      crc = ((crc << 8) ^ CRC_TABLE[(crc >>> 24) ^ ch]!) >>> 0;
    }
    this.crc = crc;
    return o;
  }
  finalCrc(): number {
    return ~this.crc >>> 0;
  }
}

/** Reads one block after its magic; everything up to the inverse BWT. */
function readBlock(br: Bits, maxBlock: number, tt: Uint32Array): BlockOutput {
  const crc = br.u32();
  if (br.bit()) throw new Bzip2Error('randomised blocks (bzip2 0.9.0) are not supported');
  const origPtr = br.read(24);
  const used = br.read(16);
  const seqToUnseq: number[] = [];
  for (let i = 0; i < 16; i++) {
    if (!(used & (0x8000 >>> i))) continue;
    const v = br.read(16);
    for (let j = 0; j < 16; j++) if (v & (0x8000 >>> j)) seqToUnseq.push(i * 16 + j);
  }
  if (!seqToUnseq.length) throw new Bzip2Error('block uses no symbols');
  const alphaSize = seqToUnseq.length + 2;
  const nGroups = br.read(3);
  if (nGroups < 2 || nGroups > MAX_GROUPS) throw new Bzip2Error(`bad Huffman group count ${nGroups}`);
  const nSelectors = br.read(15);
  if (nSelectors < 1) throw new Bzip2Error('no selectors');
  const selectors = new Uint8Array(Math.min(nSelectors, MAX_SELECTORS));
  const mtfGroups = [0, 1, 2, 3, 4, 5];
  for (let i = 0; i < nSelectors; i++) {
    let j = 0;
    while (br.bit()) if (++j >= nGroups) throw new Bzip2Error('bad selector');
    const v = mtfGroups[j]!;
    mtfGroups.splice(j, 1);
    mtfGroups.unshift(v);
    if (i < MAX_SELECTORS) selectors[i] = v;
  }
  const tables: Table[] = [];
  const lengths = new Uint8Array(MAX_ALPHA);
  for (let t = 0; t < nGroups; t++) {
    let curr = br.read(5);
    for (let i = 0; i < alphaSize; i++) {
      for (;;) {
        if (curr < 1 || curr > MAX_CODE_LEN) throw new Bzip2Error('bad Huffman code length');
        if (!br.bit()) break;
        curr += br.bit() ? -1 : 1;
      }
      lengths[i] = curr;
    }
    tables.push(makeTable(lengths, alphaSize));
  }
  // Symbols: RUNA/RUNB runs of the front byte, MTF indices + 1, end of block.
  const eob = alphaSize - 1;
  const counts = new Int32Array(256);
  const mtf = new Uint8Array(256);
  for (let i = 0; i < 256; i++) mtf[i] = i;
  let groupNo = -1;
  let groupLeft = 0;
  let table = tables[0]!;
  const next = (): number => {
    if (groupLeft === 0) {
      if (++groupNo >= selectors.length) throw new Bzip2Error('more symbols than selectors');
      table = tables[selectors[groupNo]!]!;
      groupLeft = 50;
    }
    groupLeft--;
    let len = table.minLen;
    let code = br.read(len);
    while (len <= MAX_CODE_LEN && code > table.limit[len]!) {
      len++;
      code = (code << 1) | br.bit();
    }
    const idx = code - table.base[len]!;
    if (len > MAX_CODE_LEN || idx < 0 || idx >= MAX_ALPHA) throw new Bzip2Error('bad Huffman code');
    return table.perm[idx]!;
  };
  let nblock = 0;
  let sym = next();
  for (;;) {
    if (sym === eob) break;
    if (sym <= 1) {
      let run = 0;
      let weight = 1;
      do {
        run += (sym + 1) * weight;
        weight *= 2;
        if (weight > 2 * 1024 * 1024) throw new Bzip2Error('run too long');
        sym = next();
      } while (sym <= 1);
      const uc = seqToUnseq[mtf[0]!]!;
      if (nblock + run > maxBlock) throw new Bzip2Error('block larger than its stream header allows');
      counts[uc]! += run;
      tt.fill(uc, nblock, nblock + run);
      nblock += run;
      continue;
    }
    const k = sym - 1;
    if (k >= seqToUnseq.length) throw new Bzip2Error('bad MTF index');
    const v = mtf[k]!;
    mtf.copyWithin(1, 0, k);
    mtf[0] = v;
    const uc = seqToUnseq[v]!;
    if (nblock >= maxBlock) throw new Bzip2Error('block larger than its stream header allows');
    counts[uc]!++;
    tt[nblock++] = uc;
    sym = next();
  }
  if (origPtr >= nblock) throw new Bzip2Error(`BWT origin ${origPtr} outside a block of ${nblock} bytes`);
  // Inverse BWT: each entry gets the index of its successor in its upper 24 bits.
  const cftab = new Int32Array(257);
  for (let i = 0; i < 256; i++) cftab[i + 1] = cftab[i]! + counts[i]!;
  for (let i = 0; i < nblock; i++) {
    const uc = tt[i]! & 0xff;
    tt[cftab[uc]!]! |= i << 8;
    cftab[uc]!++;
  }
  return new BlockOutput(tt, origPtr, nblock, crc);
}

type Step = { kind: 'block'; out: BlockOutput } | { kind: 'end'; crc: number } | { kind: 'stream'; level: number };

/**
 * The decoder's state between steps. Each step reads one whole unit (stream header, block or
 * end-of-stream) from the buffered input, or throws NeedInput without changing anything.
 */
class Bzip2State {
  buf = new Uint8Array(0);
  bitPos = 0;
  level = 0;
  streamCrc = 0;
  tt: Uint32Array | undefined;
  streams = 0;

  /** One unit; undefined when the input holds no further stream (trailing bytes are ignored, as bzip2 does). */
  step(final: boolean): Step | undefined {
    const br = new Bits(this.buf, this.bitPos);
    if (this.level === 0) {
      // Stream header, byte aligned.
      if (this.buf.length - br.byte < 4) {
        if (final) {
          if (!this.streams) throw new Bzip2Error('not a bzip2 stream');
          return undefined;
        }
        throw new NeedInput();
      }
      const b = this.buf;
      const i = br.byte;
      const isHeader = b[i] === 0x42 && b[i + 1] === 0x5a && b[i + 2] === 0x68 && b[i + 3]! >= 0x31 && b[i + 3]! <= 0x39;
      if (!isHeader) {
        if (!this.streams) throw new Bzip2Error('not a bzip2 stream (no "BZh" header)');
        return undefined;
      }
      this.level = b[i + 3]! - 0x30;
      this.bitPos = (i + 4) * 8;
      this.streamCrc = 0;
      this.streams++;
      return { kind: 'stream', level: this.level };
    }
    const hi = br.read(24);
    const lo = br.read(24);
    if (hi === 0x314159 && lo === 0x265359) {
      const max = this.level * 100000;
      if (!this.tt || this.tt.length < max) this.tt = new Uint32Array(max);
      const out = readBlock(br, max, this.tt);
      this.bitPos = br.bitPos;
      return { kind: 'block', out };
    }
    if (hi === 0x177245 && lo === 0x385090) {
      const crc = br.u32();
      if (crc !== this.streamCrc) throw new Bzip2Error('stream CRC mismatch');
      this.level = 0;
      this.bitPos = Math.ceil(br.bitPos / 8) * 8;
      return { kind: 'end', crc };
    }
    throw new Bzip2Error('bad block magic');
  }

  blockDone(out: BlockOutput): void {
    const crc = out.finalCrc();
    if (crc !== out.expectedCrc) throw new Bzip2Error('block CRC mismatch');
    this.streamCrc = (((this.streamCrc << 1) | (this.streamCrc >>> 31)) ^ crc) >>> 0;
  }

  buffered(): number {
    return this.buf.length - Math.floor(this.bitPos / 8);
  }

  /** Input bytes that surely hold the next unit: a block compresses to well under 2.5 bytes per byte of its size. */
  wanted(): number {
    return this.level ? this.level * 250000 + 65536 : 4;
  }

  append(chunk: Uint8Array): void {
    const keepFrom = Math.floor(this.bitPos / 8);
    const rest = this.buf.subarray(keepFrom);
    const next = new Uint8Array(rest.length + chunk.length);
    next.set(rest);
    next.set(chunk, rest.length);
    this.buf = next;
    this.bitPos -= keepFrom * 8;
  }
}

const OUT_PIECE = 1024 * 1024;

/** Decodes a bzip2 file from its compressed chunks, yielding output pieces of at most 1 MiB. */
export async function* bunzip2Stream(input: AsyncIterable<Uint8Array>, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const st = new Bzip2State();
  const it = input[Symbol.asyncIterator]();
  let final = false;
  for (;;) {
    if (signal?.aborted) throw new CancelledError();
    // Gather a whole block's worth of input first, so a block is parsed once, not retried per chunk.
    while (!final && st.buffered() < st.wanted()) {
      const r = await it.next();
      if (r.done) final = true;
      else st.append(r.value);
    }
    let step: Step | undefined;
    try {
      step = st.step(final);
    } catch (e) {
      if (!(e instanceof NeedInput)) throw e;
      if (final) throw new Bzip2Error('compressed data ends early (truncated file?)');
      const r = await it.next();
      if (r.done) final = true;
      else st.append(r.value);
      continue;
    }
    if (!step) return;
    if (step.kind !== 'block') continue;
    while (!step.out.done) {
      const piece = new Uint8Array(OUT_PIECE);
      const n = step.out.fill(piece);
      yield n === piece.length ? piece : piece.subarray(0, n);
    }
    st.blockDone(step.out);
  }
}

/** Decodes a whole bzip2 buffer; refuses output larger than `maxOut`. */
export function bunzip2Sync(data: Uint8Array, maxOut: number): Uint8Array {
  const st = new Bzip2State();
  st.append(data);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let step: Step | undefined;
    try {
      step = st.step(true);
    } catch (e) {
      if (e instanceof NeedInput) throw new Bzip2Error('compressed data ends early');
      throw e;
    }
    if (!step) break;
    if (step.kind !== 'block') continue;
    while (!step.out.done) {
      const piece = new Uint8Array(Math.min(OUT_PIECE, maxOut - total + 1));
      const n = step.out.fill(piece);
      total += n;
      if (total > maxOut) throw new Bzip2Error(`output larger than the ${maxOut} bytes expected`);
      parts.push(piece.subarray(0, n));
      if (n === 0) break;
    }
    st.blockDone(step.out);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
