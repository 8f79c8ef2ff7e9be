import { readPadded, type ByteSource } from '../../io/bytes.ts';
import { NotThisFormatError } from '../../io/errors.ts';
import { isAllZero } from '../../io/struct.ts';
import { dataExtentReads, planReads } from '../../image/readPlan.ts';
import type { BackingRef, BlockDevice, Extent, ImageInfo } from '../../image/types.ts';
import { COW_MAX_HEADER, COW_SECTOR, cowEndianness, parseCowHeader, type CowHeader } from './layout.ts';
import { BoundedCache } from '../../io/boundedCache.ts';
import { infoBasics, setBackingInfo } from '../../image/info.ts';

/** Bitmap bytes read at a time: 64 KiB describe 512 Ki sectors (256 MiB of 512-byte sectors). */
const BITMAP_CHUNK = 64 * 1024;
const BITMAP_CACHE_CHUNKS = 64;

/**
 * An opened cow file (any layout in layout.ts). The bitmap is read in chunks on demand, so a
 * disk of any size costs a bounded amount of memory; set bits are sectors stored here, clear
 * bits read through to the backing file (or zeros).
 */
export class CowDevice implements BlockDevice {
  readonly format = 'cow';
  readonly virtualSize: number;
  private readonly chunks = new BoundedCache<Uint8Array>(BITMAP_CACHE_CHUNKS);
  private readonly zeroChunks = new Set<number>();

  private constructor(
    readonly src: ByteSource,
    readonly header: CowHeader,
  ) {
    // QEMU's cow_open and UML's ubd both count whole 512-byte sectors.
    this.virtualSize = Math.floor(header.size / COW_SECTOR) * COW_SECTOR;
  }

  static async open(src: ByteSource): Promise<CowDevice> {
    const head = await src.read(0, COW_MAX_HEADER);
    if (!cowEndianness(head)) throw new NotThisFormatError(src.name, 'not a cow image');
    return new CowDevice(src, parseCowHeader(src.name, head));
  }

  get filename(): string {
    return this.src.name;
  }

  get backingRef(): BackingRef | undefined {
    return this.header.backingFile ? { name: this.header.backingFile } : undefined;
  }

  private async chunk(index: number): Promise<Uint8Array> {
    const hit = this.chunks.get(index);
    if (hit) return hit;
    const start = index * BITMAP_CHUNK;
    const len = Math.min(BITMAP_CHUNK, this.header.bitmapBytes - start);
    // Past the end of file the bitmap reads as zeros: nothing stored (UML and QEMU read it so).
    const bytes = await readPadded(this.src, this.header.bitmapOffset + start, len);
    this.chunks.set(index, bytes);
    // Empty chunks (sparse regions) are remembered so later walks skip them whole.
    if (isAllZero(bytes)) this.zeroChunks.add(index);
    return bytes;
  }

  /** Runs of sectors with the same bit, over [firstSector, endSector). */
  private async *runs(firstSector: number, endSector: number): AsyncIterable<{ start: number; end: number; set: boolean }> {
    let cur: { start: number; end: number; set: boolean } | undefined;
    let s = firstSector;
    while (s < endSector) {
      const byteIndex = Math.floor(s / 8);
      const chunkIndex = Math.floor(byteIndex / BITMAP_CHUNK);
      let set: boolean;
      let next: number;
      if (this.header.bitmapOffset + chunkIndex * BITMAP_CHUNK >= this.src.size) {
        // The rest of the bitmap lies past the end of the file: nothing more is stored here.
        // One step, however large the header claims the disk to be.
        set = false;
        next = endSector;
      } else {
        const chunk = this.zeroChunks.has(chunkIndex) ? undefined : await this.chunk(chunkIndex);
        const byte = chunk?.[byteIndex % BITMAP_CHUNK] ?? 0;
        if (s % 8 === 0 && this.zeroChunks.has(chunkIndex)) {
          // A chunk of clear bits (a sparse region): skip it whole.
          set = false;
          next = Math.min(endSector, (chunkIndex + 1) * BITMAP_CHUNK * 8);
        } else if ((byte === 0 || byte === 0xff) && s % 8 === 0) {
          set = byte === 0xff;
          next = Math.min(s + 8, endSector);
        } else {
          set = ((byte >> (s % 8)) & 1) === 1; // LSB first
          next = s + 1;
        }
      }
      if (cur && cur.set === set) cur.end = next;
      else {
        if (cur) yield cur;
        cur = { start: s, end: next, set };
      }
      s = next;
    }
    if (cur) yield cur;
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    if (from >= to) return;
    const ss = this.header.sectorSize;
    for await (const r of this.runs(Math.floor(from / ss), Math.ceil(to / ss))) {
      const start = Math.max(from, r.start * ss);
      const end = Math.min(to, r.end * ss);
      if (end <= start) continue;
      if (r.set) yield { offset: start, length: end - start, kind: 'data', hostOffset: this.header.dataOffset + start };
      else yield { offset: start, length: end - start, kind: 'unallocated' };
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const reads = await dataExtentReads(this.extents(offset, Math.min(offset + length, this.virtualSize)), offset);
    // Sectors past the end of a sparse cow file read as zeros, as the block layer returns them.
    for (const r of reads) {
      if (r.hostOffset + r.length > this.src.size) {
        out.set(await readPadded(this.src, r.hostOffset, r.length), r.outPos);
        r.length = 0;
      }
    }
    await planReads(
      this.src,
      reads.filter((r) => r.length),
      (r, bytes) => void out.set(bytes, r.outPos),
    );
    return out;
  }

  info(): ImageInfo {
    const h = this.header;
    const info: ImageInfo = {
      ...infoBasics(this.src, 'cow', this.virtualSize),
      extra: { layout: h.layout, version: h.version, 'sector-size': h.sectorSize, mtime: h.mtime },
    };
    if (h.backingFile) {
      setBackingInfo(info, this.src.name, h.backingFile);
    }
    return info;
  }

  async close(): Promise<void> {
    this.chunks.clear();
    await this.src.close?.();
  }
}
