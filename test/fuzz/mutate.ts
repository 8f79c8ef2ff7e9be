import { prng } from '../helpers/sys.ts';

/** What a seeded mutation did, so a failing case can be named and replayed. */
export interface Mutation {
  seed: number;
  kind: 'flip-header' | 'flip-anywhere' | 'huge-field' | 'truncate' | 'zero-sector' | 'flip-metadata';
  detail: string;
}

const HUGE = [0xffffffffffffffffn, 0x7fffffffffffffffn, 1n << 53n, 1n << 63n, 0xffffffffn, 0x80000000n, 1n << 40n];

/**
 * Applies one seeded mutation to a copy of an image. `hot` lists byte ranges worth aiming at
 * (headers, tables) beyond the first 4 KiB; most mutations land in metadata, where parsers live.
 */
export function mutate(image: Uint8Array, seed: number, hot: [number, number][] = []): { bytes: PatchedBytes; mutation: Mutation } {
  const rand = prng(seed * 2654435761 + 1);
  // Copy-on-write: most mutations touch a few bytes of a multi-MiB image.
  const out = new PatchedBytes(image);
  const pick = rand() % 100;
  const headerEnd = Math.min(out.length, 4096);
  const region = (): [number, number] => {
    const ranges: [number, number][] = [[0, headerEnd], ...hot.filter(([a, b]) => b > a && a < out.length)];
    const r = ranges[rand() % ranges.length]!;
    return [r[0], Math.min(r[1], out.length)];
  };
  if (pick < 35) {
    const [a, b] = region();
    const n = 1 + (rand() % 4);
    const at: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = a + (rand() % Math.max(1, b - a));
      out.set(p, out.get(p) ^ (1 << (rand() % 8)));
      at.push(p);
    }
    return { bytes: out, mutation: { seed, kind: a === 0 ? 'flip-header' : 'flip-metadata', detail: `bits at ${at.join(',')}` } };
  }
  if (pick < 50) {
    const p = rand() % out.length;
    out.set(p, rand() & 0xff);
    return { bytes: out, mutation: { seed, kind: 'flip-anywhere', detail: `byte at ${p}` } };
  }
  if (pick < 80) {
    const [a, b] = region();
    const p = Math.min(a + (rand() % Math.max(1, b - a)), out.length - 8) & ~3;
    const v = HUGE[rand() % HUGE.length]!;
    const field = new Uint8Array(8);
    const dv = new DataView(field.buffer);
    const le = (rand() & 1) === 1;
    const width = rand() % 3 === 0 ? 4 : 8;
    if (width === 4) dv.setUint32(0, Number(v & 0xffffffffn), le);
    else dv.setBigUint64(0, v, le);
    for (let i = 0; i < width; i++) out.set(p + i, field[i]!);
    return { bytes: out, mutation: { seed, kind: 'huge-field', detail: `0x${v.toString(16)} at ${p} ${le ? 'LE' : 'BE'}` } };
  }
  if (pick < 92) {
    const len = rand() % out.length;
    out.length = len;
    return { bytes: out, mutation: { seed, kind: 'truncate', detail: `to ${len} bytes` } };
  }
  const sector = rand() % Math.ceil(out.length / 512);
  for (let i = sector * 512; i < Math.min(out.length, sector * 512 + 512); i++) out.set(i, 0);
  return { bytes: out, mutation: { seed, kind: 'zero-sector', detail: `sector ${sector}` } };
}

/** An image with a few bytes changed and maybe a shorter length, without copying it. */
export class PatchedBytes {
  readonly patches = new Map<number, number>();
  length: number;
  constructor(readonly base: Uint8Array) {
    this.length = base.length;
  }
  get(i: number): number {
    return this.patches.get(i) ?? this.base[i]!;
  }
  set(i: number, v: number): void {
    if (i >= 0 && i < this.length) this.patches.set(i, v & 0xff);
  }
  /** Bytes [offset, offset+len) as they read after the mutation. */
  slice(offset: number, len: number): Uint8Array {
    const end = Math.min(this.length, offset + len);
    if (offset >= end) return new Uint8Array(0);
    const out = this.base.slice(offset, end);
    for (const [i, v] of this.patches) if (i >= offset && i < end) out[i - offset] = v;
    return out;
  }
}
