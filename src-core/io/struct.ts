import { toSafeNumber } from './int64.ts';
import { wasmZeroPrefix } from './zeroTest.ts';

/**
 * Typed reads and writes over a byte buffer, big- or little-endian. 64-bit getters go through
 * `toSafeNumber`, so every on-disk offset is checked once, at the point it enters the program.
 */
export class Struct {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly littleEndian = false,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  static alloc(size: number, littleEndian = false): Struct {
    return new Struct(new Uint8Array(size), littleEndian);
  }
  get length(): number {
    return this.bytes.length;
  }
  u8(off: number): number {
    return this.view.getUint8(off);
  }
  u16(off: number): number {
    return this.view.getUint16(off, this.littleEndian);
  }
  u32(off: number): number {
    return this.view.getUint32(off, this.littleEndian);
  }
  i32(off: number): number {
    return this.view.getInt32(off, this.littleEndian);
  }
  /** Raw 64-bit value, for fields with flag bits. */
  big64(off: number): bigint {
    return this.view.getBigUint64(off, this.littleEndian);
  }
  /** 64-bit value as a checked number. */
  u64(off: number, field?: string): number {
    return toSafeNumber(this.big64(off), field);
  }
  setU8(off: number, v: number): this {
    this.view.setUint8(off, v);
    return this;
  }
  setU16(off: number, v: number): this {
    this.view.setUint16(off, v, this.littleEndian);
    return this;
  }
  setU32(off: number, v: number): this {
    this.view.setUint32(off, v >>> 0, this.littleEndian);
    return this;
  }
  setBig64(off: number, v: bigint): this {
    this.view.setBigUint64(off, v, this.littleEndian);
    return this;
  }
  setU64(off: number, v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a 64-bit offset: ${v}`);
    this.view.setBigUint64(off, BigInt(v), this.littleEndian);
    return this;
  }
  bytesAt(off: number, len: number): Uint8Array {
    return this.bytes.subarray(off, off + len);
  }
  setBytes(off: number, data: Uint8Array): this {
    this.bytes.set(data, off);
    return this;
  }
  /** ASCII/UTF-8 text up to the first NUL (or the end of the field). */
  cstring(off: number, len: number): string {
    const field = this.bytes.subarray(off, off + len);
    const nul = field.indexOf(0);
    return utf8Decode(nul < 0 ? field : field.subarray(0, nul));
  }
  setString(off: number, s: string, maxLen?: number): this {
    const enc = utf8Encode(s);
    if (maxLen !== undefined && enc.length > maxLen) throw new RangeError(`string too long: ${s}`);
    this.bytes.set(enc, off);
    return this;
  }
}

const decoder = new TextDecoder('utf-8');
const encoder = new TextEncoder();
export const utf8Decode = (b: Uint8Array): string => decoder.decode(b);
export const utf8Encode = (s: string): Uint8Array => encoder.encode(s);

/** Big-endian 64-bit table → array of bigints (L1/L2 tables, offset tables). */
export function readBig64Table(bytes: Uint8Array, count: number, littleEndian = false): BigUint64Array {
  const out = new BigUint64Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getBigUint64(i * 8, littleEndian);
  return out;
}

/** Array of 64-bit values → big-endian bytes (L1/L2 tables, refcount tables); the inverse of readBig64Table. */
export function writeBig64Table(words: BigUint64Array, littleEndian = false): Uint8Array {
  const out = new Uint8Array(words.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) if (words[i]) view.setBigUint64(i * 8, words[i]!, littleEndian);
  return out;
}

export function readU32Table(bytes: Uint8Array, count: number, littleEndian = false): Uint32Array {
  const out = new Uint32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, littleEndian);
  return out;
}

/** `bytes` as a whole unit of `size` bytes: itself when it is one, else a zero-padded copy (a disk's short last unit). */
export function padTo(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length >= size) return bytes;
  const padded = new Uint8Array(size);
  padded.set(bytes);
  return padded;
}

/** Bytes of a unit the JS loop tests first (data usually shows there); units up to 4× this are tested in JS whole. */
const JS_PREFIX = 512;

/**
 * True when every byte is zero. Runs on every unit of every window a conversion reads: data
 * usually shows in its first bytes, which JS tests; the rest of a unit that starts with zeros
 * goes to wasm SIMD (zeroTest.ts), ~3× the JS loop, so holes are found at read speed.
 */
export function isAllZero(b: Uint8Array): boolean {
  if (b.length <= 4 * JS_PREFIX) return isAllZeroJs(b);
  if (!isAllZeroJs(b.subarray(0, JS_PREFIX))) return false;
  const rest = b.subarray(JS_PREFIX);
  const zeros = wasmZeroPrefix(rest);
  if (zeros === undefined) return isAllZeroJs(rest);
  return zeros === rest.length - (rest.length % 64) && isAllZeroJs(rest.subarray(zeros));
}

/**
 * The zero test in JS: ORs sixteen 32-bit words per step (one branch per 64 bytes), about 3×
 * the speed of testing word by word in V8.
 */
function isAllZeroJs(b: Uint8Array): boolean {
  let i = 0;
  const n = b.length;
  if (b.byteOffset % 4 === 0) {
    const w = new Int32Array(b.buffer, b.byteOffset, n >>> 2);
    const words = w.length;
    let k = 0;
    for (; k + 16 <= words; k += 16) {
      const any =
        w[k]! |
        w[k + 1]! |
        w[k + 2]! |
        w[k + 3]! |
        w[k + 4]! |
        w[k + 5]! |
        w[k + 6]! |
        w[k + 7]! |
        w[k + 8]! |
        w[k + 9]! |
        w[k + 10]! |
        w[k + 11]! |
        w[k + 12]! |
        w[k + 13]! |
        w[k + 14]! |
        w[k + 15]!;
      if (any !== 0) return false;
    }
    for (; k < words; k++) if (w[k] !== 0) return false;
    i = words * 4;
  }
  for (; i < n; i++) if (b[i] !== 0) return false;
  return true;
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
