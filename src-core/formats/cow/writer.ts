import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero, padTo, utf8Encode } from '../../io/struct.ts';
import { checkOptions } from '../../image/options.ts';
import type { CreateOptions, ImageWriter } from '../../image/types.ts';
import { buildQemuV2Header, COW_LAYOUTS, COW_SECTOR } from './layout.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

/** Bitmap bytes kept in memory at once; writes arrive in order, so older ones are final. */
const BITMAP_CHUNK = 64 * 1024;

/**
 * Writes a cow file as QEMU's driver did (block/cow.c: cow_create, cow_co_writev): version 2,
 * x86-64 header layout, the bitmap after it, sector s at round_up(header + bitmap, 512) + 512·s.
 * Unwritten sectors stay holes; the file ends after the last sector written (at least after the
 * bitmap, as cow_create truncated it). The backing name is optional (`-B` / `-o backing_file`).
 */
export class CowWriter implements ImageWriter {
  /** One bit per sector: anything coarser would copy up sectors that equal the backing file. */
  readonly granularity = COW_SECTOR;
  private readonly sectors: number;
  private readonly bitmapOffset: number;
  private readonly dataOffset: number;
  private readonly out: SinkBuffer;
  private chunk: { index: number; bytes: Uint8Array; dirty: boolean } | undefined;
  private fileEnd: number;
  private readonly order: WriteOrder;
  private readonly header: Uint8Array;

  constructor(
    private readonly sink: ByteSink,
    private readonly opts: CreateOptions,
  ) {
    checkOptions('cow', opts.options, []);
    if (opts.compress) throw new InvalidArgumentError('the cow format does not support compression', opts.filename);
    const size = alignUp(opts.virtualSize, COW_SECTOR);
    const name = utf8Encode(opts.backing?.name ?? '');
    const f = COW_LAYOUTS['qemu-v2'];
    if (name.length >= f.nameLength)
      throw new InvalidArgumentError(`backing file name is longer than ${f.nameLength - 1} bytes`, opts.filename);
    this.header = buildQemuV2Header(size, name);
    this.sectors = size / COW_SECTOR;
    this.bitmapOffset = f.headerSize;
    const bitmapBytes = Math.ceil(this.sectors / 8);
    this.dataOffset = alignUp(this.bitmapOffset + bitmapBytes, COW_SECTOR);
    this.fileEnd = this.bitmapOffset + bitmapBytes;
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('cow', COW_SECTOR, size);
  }

  private async markSector(sector: number): Promise<void> {
    const byte = Math.floor(sector / 8);
    const index = Math.floor(byte / BITMAP_CHUNK);
    if (this.chunk?.index !== index) {
      await this.flushChunk();
      this.chunk = { index, bytes: new Uint8Array(BITMAP_CHUNK), dirty: false };
    }
    this.chunk!.bytes[byte % BITMAP_CHUNK]! |= 1 << (sector % 8); // LSB first
    this.chunk!.dirty = true;
  }

  private async flushChunk(): Promise<void> {
    const c = this.chunk;
    if (!c?.dirty) return;
    const start = c.index * BITMAP_CHUNK;
    const len = Math.min(BITMAP_CHUNK, Math.ceil(this.sectors / 8) - start);
    await this.out.write(this.bitmapOffset + start, c.bytes.subarray(0, len));
    c.dirty = false;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    // Runs of stored sectors go out as single writes; all-zero sectors stay holes when nothing
    // lies beneath them (with a backing file the pipeline only sends sectors that differ).
    let runStart = -1;
    const flush = async (upTo: number) => {
      if (runStart < 0) return;
      const host = this.dataOffset + offset + runStart;
      await this.out.write(host, data.subarray(runStart, upTo));
      this.fileEnd = Math.max(this.fileEnd, host + (upTo - runStart));
      runStart = -1;
    };
    for (let pos = 0; pos < data.length; pos += COW_SECTOR) {
      const sector = data.subarray(pos, pos + COW_SECTOR);
      if (!this.opts.backing && isAllZero(sector)) {
        await flush(pos);
        continue;
      }
      if (sector.length < COW_SECTOR) {
        // Only the disk's last sector can be short; store it whole.
        await flush(pos);
        await this.storeSector((offset + pos) / COW_SECTOR, padTo(sector, COW_SECTOR));
        continue;
      }
      if (runStart < 0) runStart = pos;
      await this.markSector((offset + pos) / COW_SECTOR);
    }
    await flush(data.length);
  }

  private async storeSector(sector: number, bytes: Uint8Array): Promise<void> {
    const host = this.dataOffset + sector * COW_SECTOR;
    await this.out.write(host, bytes);
    this.fileEnd = Math.max(this.fileEnd, host + COW_SECTOR);
    await this.markSector(sector);
  }

  /** Zeros over a backing file must be stored: cow has no zero marker. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.order.check(offset, length);
    if (!this.opts.backing) return;
    const zeros = new Uint8Array(COW_SECTOR);
    for (let pos = offset; pos < offset + length; pos += COW_SECTOR) await this.storeSector(pos / COW_SECTOR, zeros);
  }

  async finish(): Promise<void> {
    await this.flushChunk();
    await this.out.write(0, this.header);
    await this.out.flush();
    if (this.sink.truncate) await this.sink.truncate(this.fileEnd);
  }
}
