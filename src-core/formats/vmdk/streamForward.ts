import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import type { Codecs } from '../../codecs/types.ts';
import type { BlockDevice, Extent, ImageInfo } from '../../image/types.ts';
import { decodeDescriptor, parseDescriptor } from './descriptor.ts';
import {
  hasMarkers,
  isCompressed,
  isSparseMagic,
  MARKER_EOS,
  MARKER_FOOTER,
  MARKER_GD,
  MARKER_GT,
  parseMarker,
  parseSparseHeader,
  SECTOR,
  type SparseHeader,
} from './sparseHeader.ts';

/** Bytes that arrive once, front to back (standard input): `read(n)` gives n bytes, fewer only at the end. */
export interface ForwardBytes {
  read(length: number): Promise<Uint8Array>;
}

/** Whether the first sector is a streamOptimized header: markers and deflate, so the file can be walked forward. */
export function isStreamVmdkHead(head: Uint8Array): boolean {
  if (head.length < SECTOR || !isSparseMagic(head)) return false;
  try {
    const h = parseSparseHeader('', head);
    return hasMarkers(h) && isCompressed(h);
  } catch {
    return false;
  }
}

/** The most one grain marker may announce: a grain that deflate made larger, with room to spare (vmdk_read_extent allows two grains). */
const maxCompressed = (grainBytes: number) => 2 * grainBytes;

/**
 * A streamOptimized VMDK read as it arrives, without its grain directory (which sits at the end):
 * after the header and descriptor, the file is a run of markers, each grain marker carrying its
 * guest sector and its deflated bytes, so the grains can be inflated in file order. Writers
 * (VMware, qemu-img, DiskFerry) put grains in guest order; reads must move forward, and a grain
 * that comes after one further on is refused with a message saying to give the file instead.
 * Nothing is known about where data is until it arrives: extents() calls the whole disk data
 * (the converter drops the zeros).
 */
export class ForwardStreamVmdk implements BlockDevice {
  readonly format = 'vmdk';
  readonly virtualSize: number;
  private readonly grainBytes: number;
  /** The next grain arrived but not yet read past. */
  private grain: { start: number; data: Uint8Array } | undefined;
  private grainsEnded = false;
  /** Reads may not start before this (the stream has moved on). */
  private readPos = 0;
  /** Guest offset just past the last grain taken: the next must start there or later. */
  private lastGrainEnd = 0;
  private closed = false;

  private constructor(
    private readonly bytes: ForwardBytes,
    readonly filename: string,
    header: SparseHeader,
    private readonly codecs: Codecs,
    private readonly closeBytes: () => Promise<void>,
  ) {
    this.virtualSize = header.capacity * SECTOR;
    this.grainBytes = header.grainSectors * SECTOR;
  }

  /** Reads the header and descriptor, and leaves the stream at the first marker. */
  static async open(
    bytes: ForwardBytes,
    name: string,
    codecs: Codecs,
    close: () => Promise<void> = async () => {},
  ): Promise<ForwardStreamVmdk> {
    const head = await bytes.read(SECTOR);
    if (!isStreamVmdkHead(head)) throw new UnsupportedError(name, 'is not a streamOptimized VMDK, so it cannot be read as a stream');
    const header = parseSparseHeader(name, head);
    let at = SECTOR;
    const skipTo = async (offset: number) => {
      while (at < offset) {
        const got = await bytes.read(Math.min(offset - at, 1 << 20));
        if (!got.length) throw new CorruptImageError(name, 'ends inside its header area');
        at += got.length;
      }
    };
    if (header.descriptorOffset && header.descriptorSize) {
      await skipTo(header.descriptorOffset * SECTOR);
      const desc = await bytes.read(header.descriptorSize * SECTOR);
      at += desc.length;
      const d = parseDescriptor(name, decodeDescriptor(desc));
      if (d.parentFileNameHint) throw new UnsupportedError(name, 'a delta VMDK needs its parent: give it as a file');
    }
    await skipTo(header.overhead * SECTOR);
    return new ForwardStreamVmdk(bytes, name, header, codecs, close);
  }

  /** The next grain in the stream, inflated; undefined after the end-of-stream marker. */
  private async nextGrain(): Promise<{ start: number; data: Uint8Array } | undefined> {
    while (!this.grainsEnded) {
      const sector = await this.bytes.read(SECTOR);
      if (sector.length < SECTOR) {
        // A stream cut after its last grain still has every byte of data: only the tables are missing.
        if (sector.length === 0) break;
        throw new CorruptImageError(this.filename, 'ends in the middle of a marker');
      }
      const m = parseMarker(sector);
      if (m.size === 0) {
        if (m.type === MARKER_EOS) break;
        if (m.type !== MARKER_GT && m.type !== MARKER_GD && m.type !== MARKER_FOOTER)
          throw new CorruptImageError(this.filename, `unknown stream marker type ${m.type}`);
        await this.skip(m.value * SECTOR); // a table or the footer: the grains carry everything
        continue;
      }
      if (m.size > maxCompressed(this.grainBytes)) throw new CorruptImageError(this.filename, `grain marker announces ${m.size} bytes`);
      const total = Math.ceil((12 + m.size) / SECTOR) * SECTOR;
      const rest = await this.bytes.read(total - SECTOR);
      if (rest.length < total - SECTOR) throw new CorruptImageError(this.filename, 'ends in the middle of a grain');
      const record = new Uint8Array(total);
      record.set(sector);
      record.set(rest, SECTOR);
      const start = m.value * SECTOR;
      if (start % this.grainBytes || start >= this.virtualSize)
        throw new CorruptImageError(this.filename, `grain marker at guest sector ${m.value} is not on a grain inside the disk`);
      if (start < this.lastGrainEnd)
        throw new UnsupportedError(
          this.filename,
          `its grains are not in disk order (sector ${m.value} comes after sector ${this.lastGrainEnd / SECTOR}), so it cannot be read as a stream; give it as a file`,
        );
      let data: Uint8Array;
      try {
        data = await this.codecs.zlibInflate(record.subarray(12, 12 + m.size), this.grainBytes);
      } catch (e) {
        throw new CorruptImageError(this.filename, `the grain at guest sector ${m.value} cannot be decompressed: ${(e as Error).message}`);
      }
      this.lastGrainEnd = start + this.grainBytes;
      return { start, data: data.subarray(0, Math.min(this.grainBytes, this.virtualSize - start)) };
    }
    this.grainsEnded = true;
    return undefined;
  }

  private async skip(n: number): Promise<void> {
    while (n > 0) {
      const got = await this.bytes.read(Math.min(n, 1 << 20));
      if (!got.length) throw new CorruptImageError(this.filename, 'ends inside a table');
      n -= got.length;
    }
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    if (to > from) yield { offset: from, length: to - from, kind: 'data' };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < this.readPos)
      throw new UnsupportedError(this.filename, `is read as a stream, front to back: byte ${offset} has gone by; give it as a file`);
    const end = Math.min(offset + length, this.virtualSize);
    const out = new Uint8Array(length);
    while (!this.grainsEnded || this.grain) {
      this.grain ??= await this.nextGrain();
      const g = this.grain;
      if (!g || g.start >= end) break;
      const gEnd = g.start + g.data.length;
      const a = Math.max(g.start, offset);
      const b = Math.min(gEnd, end);
      if (b > a) out.set(g.data.subarray(a - g.start, b - g.start), a - offset);
      if (gEnd > end) break;
      this.grain = undefined;
    }
    this.readPos = Math.max(offset, end);
    return out;
  }

  info(): ImageInfo {
    return { filename: this.filename, format: 'vmdk', 'virtual-size': this.virtualSize, 'cluster-size': this.grainBytes };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closeBytes();
  }
}
