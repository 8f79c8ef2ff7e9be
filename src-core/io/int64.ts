import { CorruptImageError } from './errors.ts';

// The one place where 64-bit fields from disk become JavaScript numbers.
// Numbers are exact up to 2^53 (8 PiB), far beyond any disk we will meet; anything larger in a
// header is either corruption or an attack, so it is refused instead of silently rounded.

export const MAX_SAFE_OFFSET = Number.MAX_SAFE_INTEGER;

/** A corrupt (or hostile) 64-bit field; the file name is attached by whoever knows it (image/guard.ts). */
export class Int64RangeError extends CorruptImageError {
  constructor(
    readonly field: string,
    readonly value: bigint,
  ) {
    super('', `${field} is ${value}, beyond the 2^53 limit this program can address`);
  }
}

const MAX_SAFE_BIG = BigInt(MAX_SAFE_OFFSET);
const MIN_SAFE_BIG = -MAX_SAFE_BIG;

/** bigint → number, throwing when the value cannot be represented exactly. */
export function toSafeNumber(value: bigint, field = '64-bit field'): number {
  // The bounds are built once: this runs for every L2 entry of a table walk.
  if (value > MAX_SAFE_BIG || value < MIN_SAFE_BIG) {
    throw new Int64RangeError(field, value);
  }
  return Number(value);
}

/** Division and remainder for offsets: never `>>` or `&` on values that can pass 2^31. */
export function floorDiv(a: number, b: number): number {
  return Math.floor(a / b);
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}

export function isAligned(value: number, alignment: number): boolean {
  return value % alignment === 0;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 30;
}

/** Low `bits` bits of a 64-bit value, as a number (bits ≤ 53). */
export function lowBits(value: bigint, bits: number): number {
  return Number(value & ((1n << BigInt(bits)) - 1n));
}
