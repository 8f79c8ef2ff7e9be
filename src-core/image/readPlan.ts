import { readExact, type ByteSource } from '../io/bytes.ts';
import type { Extent } from './types.ts';

export interface HostRead {
  hostOffset: number;
  length: number;
  /** Where the bytes go in the caller's buffer. */
  outPos: number;
  /** The guest offset, for ciphers that number sectors by it. */
  guestOffset?: number;
  /** For a read widened to whole sectors: bytes to drop at the start, and bytes to keep. */
  skip?: number;
  keep?: number;
}

const SECTOR = 512;

/**
 * A read widened to whole 512-byte sectors, for ciphers that work sector by sector (AES-CBC
 * and XTS chain within a sector): decrypt the sectors, keep only the bytes asked for.
 */
export function sectorRead(hostOffset: number, guestOffset: number, length: number, outPos: number): HostRead {
  const skip = guestOffset % SECTOR;
  return {
    hostOffset: hostOffset - skip,
    guestOffset: guestOffset - skip,
    length: Math.ceil((skip + length) / SECTOR) * SECTOR,
    outPos,
    skip,
    keep: length,
  };
}

/** Copies a read's bytes (only the kept part of a widened read) to their place in `out`. */
export function placeRead(out: Uint8Array, r: HostRead, bytes: Uint8Array): void {
  const skip = r.skip ?? 0;
  out.set(skip || r.keep !== undefined ? bytes.subarray(skip, skip + (r.keep ?? bytes.length)) : bytes, r.outPos);
}

/** Gaps up to this size are read through rather than split: one 1–2 ms Blob read costs more. */
const MERGE_GAP = 64 * 1024;
const MAX_SPAN = 8 * 1024 * 1024;

/**
 * Serves many small host reads with few large ones: requests are sorted by host offset and
 * merged when they are close, then each request gets its own view of the merged buffer.
 */
export async function planReads(
  src: ByteSource,
  reads: HostRead[],
  deliver: (r: HostRead, bytes: Uint8Array) => void | Promise<void>,
): Promise<void> {
  if (!reads.length) return;
  const sorted = [...reads].sort((a, b) => a.hostOffset - b.hostOffset);
  let i = 0;
  while (i < sorted.length) {
    const first = sorted[i]!;
    let spanEnd = first.hostOffset + first.length;
    let j = i + 1;
    while (j < sorted.length) {
      const r = sorted[j]!;
      const end = Math.max(spanEnd, r.hostOffset + r.length);
      if (r.hostOffset > spanEnd + MERGE_GAP || end - first.hostOffset > MAX_SPAN) break;
      spanEnd = end;
      j++;
    }
    const buf = await readExact(src, first.hostOffset, spanEnd - first.hostOffset);
    let prevEnd = -1;
    for (let k = i; k < j; k++) {
      const r = sorted[k]!;
      const start = r.hostOffset - first.hostOffset;
      const end = r.hostOffset + r.length;
      // Each request must own its bytes (ciphers decrypt in place): a view of the merged
      // buffer does, unless the request overlaps another one, which then gets a copy.
      const overlaps = prevEnd > r.hostOffset || (k + 1 < j && end > sorted[k + 1]!.hostOffset);
      await deliver(r, overlaps ? buf.slice(start, start + r.length) : buf.subarray(start, start + r.length));
      prevEnd = Math.max(prevEnd, end);
    }
    i = j;
  }
}

/** Serves `reads` into `out`; a cipher, when given, decrypts each (sector-widened) read first. */
export async function readInto(
  src: ByteSource,
  reads: HostRead[],
  out: Uint8Array,
  cipher?: { decrypt(data: Uint8Array, guestOffset: number, hostOffset: number): void | Promise<void> },
): Promise<void> {
  await planReads(src, reads, async (r, bytes) => {
    if (cipher) await cipher.decrypt(bytes, r.guestOffset!, r.hostOffset);
    placeRead(out, r, bytes);
  });
}

/** One host read per data extent, placed relative to `offset` (the guest offset of the caller's buffer). */
export async function dataExtentReads(extents: AsyncIterable<Extent>, offset: number): Promise<HostRead[]> {
  const reads: HostRead[] = [];
  for await (const e of extents) {
    if (e.kind === 'data') reads.push({ hostOffset: e.hostOffset!, length: e.length, outPos: e.offset - offset });
  }
  return reads;
}

/**
 * A device read for a driver whose data extents all sit uncompressed in `src`: reads the data
 * extents of [offset, offset + length), every other byte stays zero.
 */
export async function readDataExtents(
  src: ByteSource,
  extents: AsyncIterable<Extent>,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await planReads(src, await dataExtentReads(extents, offset), (r, bytes) => out.set(bytes, r.outPos));
  return out;
}
