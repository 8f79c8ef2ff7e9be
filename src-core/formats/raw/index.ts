import { readPadded, type ByteSink, type ByteSource } from '../../io/bytes.ts';
import { alignUp } from '../../io/int64.ts';
import type { BlockDevice, CreateOptions, Extent, FormatDriver, ImageInfo, ImageWriter } from '../../image/types.ts';
import { WriteOrder } from '../../image/writeOrder.ts';
import { infoBasics } from '../../image/info.ts';
import { fileBackedExtents } from '../../image/extents.ts';

/** QEMU reads a raw file as a disk of its size rounded up to 512, the tail as zeros. */
export const SECTOR = 512;

class RawDevice implements BlockDevice {
  readonly format = 'raw';
  readonly virtualSize: number;
  constructor(private readonly src: ByteSource) {
    this.virtualSize = alignUp(src.size, SECTOR);
  }
  get filename(): string {
    return this.src.name;
  }
  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    // Raw has no metadata: everything is data as far as anyone can tell without reading it,
    // unless the file system says where its holes are (as qemu-img's file driver asks it).
    yield* fileBackedExtents(this.src, from, to, 0, false);
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    return readPadded(this.src, offset, length);
  }
  info(): ImageInfo {
    return {
      ...infoBasics(this.src, 'raw', this.virtualSize),
      'dirty-flag': false,
    };
  }
  async close(): Promise<void> {
    await this.src.close?.();
  }
}

class RawWriter implements ImageWriter {
  readonly granularity = 64 * 1024;
  /** finish() cuts the file at the disk's size: a write past it would be lost without a word. */
  private readonly order: WriteOrder;
  /** Just past the last byte written. */
  private end = 0;
  constructor(
    private readonly sink: ByteSink,
    private readonly size: number,
  ) {
    this.order = new WriteOrder('raw', this.granularity, size);
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    await this.sink.write(offset, data);
    this.end = offset + data.length;
  }
  // Nothing to do: a raw file is zero where nothing was written (sparse where the platform can).
  async writeZeroes(): Promise<void> {}
  async finish(): Promise<void> {
    if (this.sink.truncate) await this.sink.truncate(this.size);
    // A sink that cannot set its length (a pipe) gets the last byte only when no data reached it.
    else if (this.end < this.size) await this.sink.write(this.size - 1, new Uint8Array(1));
  }
}

export const rawDriver: FormatDriver = {
  name: 'raw',
  label: 'Raw disk image',
  title: 'raw',
  extensions: ['img', 'raw', 'bin', 'iso'],
  // Anything can be raw; every other driver outbids this.
  probe: () => 1,
  async open(src) {
    return new RawDevice(src);
  },
  async create(sink: ByteSink, opts: CreateOptions) {
    return new RawWriter(sink, alignUp(opts.virtualSize, SECTOR));
  },
  // qemu-img measure -O raw: a raw file needs its whole virtual size either way.
  async measure(opts: CreateOptions, source) {
    const size = alignUp(source?.virtualSize ?? opts.virtualSize, SECTOR);
    return { required: size, 'fully-allocated': size };
  },
  createOptions: [],
};
