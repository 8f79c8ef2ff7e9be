import type { ByteSource } from '../../io/bytes.ts';

interface Patch {
  start: number;
  end: number;
  /** The bytes of [start, end), or undefined for zeros. */
  data?: Uint8Array;
}

/**
 * A read-only view of a file with writes applied in memory: how a dirty VHDX log is replayed
 * without touching the source (MS-VHDX 2.3.3 allows replaying "in memory" for read-only opens).
 * Writes are kept as sorted, non-overlapping patches; later writes replace earlier ones.
 * Reads past the real end of the file return zeros up to `size`, as the extended file would.
 */
export class OverlaySource implements ByteSource {
  private patches: Patch[] = [];
  private extent: number;

  constructor(private readonly inner: ByteSource) {
    this.extent = inner.size;
  }

  get name(): string {
    return this.inner.name;
  }
  get size(): number {
    return this.extent;
  }
  get allocatedSize(): number | undefined {
    return this.inner.allocatedSize;
  }
  get patchCount(): number {
    return this.patches.length;
  }

  /** Grows the visible file (log replay extends it to LastFileOffset). */
  extendTo(size: number): void {
    this.extent = Math.max(this.extent, size);
  }

  write(offset: number, data: Uint8Array): void {
    this.put({ start: offset, end: offset + data.length, data: data.slice() });
  }

  writeZeroes(offset: number, length: number): void {
    if (length > 0) this.put({ start: offset, end: offset + length });
  }

  private put(p: Patch): void {
    this.extendTo(p.end);
    const kept: Patch[] = [];
    for (const q of this.patches) {
      if (q.end <= p.start || q.start >= p.end) {
        kept.push(q);
        continue;
      }
      // Keep the parts of the older patch that the new one does not cover.
      if (q.start < p.start) kept.push(cut(q, q.start, p.start));
      if (q.end > p.end) kept.push(cut(q, p.end, q.end));
    }
    kept.push(p);
    kept.sort((a, b) => a.start - b.start);
    this.patches = kept;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.extent);
    if (end <= offset) return new Uint8Array(0);
    const base = await this.inner.read(offset, end - offset);
    let out = base;
    if (base.length < end - offset) {
      out = new Uint8Array(end - offset);
      out.set(base);
    }
    for (const p of this.overlapping(offset, end)) {
      const s = Math.max(p.start, offset);
      const e = Math.min(p.end, end);
      if (p.data) out.set(p.data.subarray(s - p.start, e - p.start), s - offset);
      else out.fill(0, s - offset, e - offset);
    }
    return out;
  }

  private *overlapping(from: number, to: number): Iterable<Patch> {
    // Binary search for the first patch that ends after `from`.
    let lo = 0;
    let hi = this.patches.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.patches[mid]!.end <= from) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.patches.length && this.patches[i]!.start < to; i++) yield this.patches[i]!;
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

function cut(p: Patch, start: number, end: number): Patch {
  return p.data ? { start, end, data: p.data.subarray(start - p.start, end - p.start) } : { start, end };
}
