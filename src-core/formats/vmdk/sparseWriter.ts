import type { ByteSink } from '../../io/bytes.ts';
import { alignUp } from '../../io/int64.ts';
import { UnsupportedError } from '../../io/errors.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { padTo } from '../../io/struct.ts';
import { buildSparseHeader, FLAG_NL_DETECT, FLAG_RGD, FLAG_ZERO_GRAIN, SECTOR } from './sparseHeader.ts';

export const GRAIN_SECTORS = 128;
export const GRAIN_BYTES = GRAIN_SECTORS * SECTOR;
export const GTES_PER_GT = 512;
/** Sectors QEMU reserves for an embedded descriptor (DESC_SIZE), also in split pieces. */
export const DESC_SECTORS = 20;
/** VMDK_EXTENT_MAX_SECTORS: grain offsets are u32 sector numbers. */
export const MAX_EXTENT_SECTORS = 2 ** 32;

/** Writes pieces of one extent: guest data at extent-relative offsets, in increasing order. */
export interface PieceWriter {
  write(offset: number, data: Uint8Array): Promise<void>;
  writeZeroes(offset: number, length: number): Promise<void>;
  finish(): Promise<void>;
}

/**
 * A hosted sparse extent laid out as qemu-img's vmdk_init_extent does: header, descriptor area
 * (sectors 1-20), redundant GD and its GTs, GD and its GTs, all tables preallocated, grains from
 * the first grain-aligned sector after them. Grains arrive in guest order, so only the current
 * grain table is held in memory; it is written (to both copies) when the next one begins.
 */
export class SparseExtentWriter implements PieceWriter {
  private readonly capacity: number;
  private readonly gtCount: number;
  private readonly gdSectors: number;
  private readonly rgdOffset: number;
  private readonly gdOffset: number;
  private readonly overhead: number;
  private readonly out: SinkBuffer;
  private next: number;
  private gt: { index: number; table: Uint32Array } | undefined;

  constructor(
    private readonly sink: ByteSink,
    size: number,
    private readonly zeroedGrain: boolean,
    private readonly descriptor: Uint8Array | undefined,
  ) {
    this.capacity = Math.ceil(size / SECTOR);
    const grains = Math.ceil(this.capacity / GRAIN_SECTORS);
    this.gtCount = Math.ceil(grains / GTES_PER_GT);
    this.gdSectors = Math.ceil((this.gtCount * 4) / SECTOR);
    const gtSectors = (GTES_PER_GT * 4) / SECTOR;
    this.rgdOffset = 1 + DESC_SECTORS;
    this.gdOffset = this.rgdOffset + this.gdSectors + gtSectors * this.gtCount;
    this.overhead = alignUp(this.gdOffset + this.gdSectors + gtSectors * this.gtCount, GRAIN_SECTORS);
    if (this.overhead >= MAX_EXTENT_SECTORS)
      throw new UnsupportedError(sink.name, 'disk too large for one sparse extent file; use subformat=twoGbMaxExtentSparse');
    this.next = this.overhead;
    this.out = new SinkBuffer(sink);
    if (descriptor && descriptor.length > DESC_SECTORS * SECTOR) throw new RangeError('descriptor does not fit in 20 sectors');
  }

  private gtSectorOf(base: number, index: number): number {
    return base + this.gdSectors + index * ((GTES_PER_GT * 4) / SECTOR);
  }

  private async tableFor(grain: number): Promise<{ table: Uint32Array; i: number }> {
    const index = Math.floor(grain / GTES_PER_GT);
    if (this.gt?.index !== index) {
      await this.flushGt();
      this.gt = { index, table: new Uint32Array(GTES_PER_GT) };
    }
    return { table: this.gt!.table, i: grain % GTES_PER_GT };
  }

  private async flushGt(): Promise<void> {
    if (!this.gt) return;
    const bytes = u32le(this.gt.table);
    await this.out.write(this.gtSectorOf(this.rgdOffset, this.gt.index) * SECTOR, bytes);
    await this.out.write(this.gtSectorOf(this.gdOffset, this.gt.index) * SECTOR, bytes);
    this.gt = undefined;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    for (let pos = 0; pos < data.length; pos += GRAIN_BYTES) {
      // The disk's last grain may be short: QEMU allocates whole grains.
      const grain = padTo(data.subarray(pos, pos + GRAIN_BYTES), GRAIN_BYTES);
      const { table, i } = await this.tableFor(Math.floor((offset + pos) / GRAIN_BYTES));
      // Grain table entries are 32-bit sector numbers: an extent file ends at 2 TiB.
      if (this.next + GRAIN_SECTORS > MAX_EXTENT_SECTORS) {
        throw new UnsupportedError(
          this.sink.name,
          'a sparse extent file cannot pass 2 TiB (32-bit grain offsets); use subformat=twoGbMaxExtentSparse',
        );
      }
      table[i] = this.next;
      await this.out.write(this.next * SECTOR, grain);
      this.next += GRAIN_SECTORS;
    }
  }

  /** Zeros that must hide a parent: a zeroed-grain GTE where enabled, else a stored zero grain. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    for (let pos = offset; pos < offset + length; pos += GRAIN_BYTES) {
      if (this.zeroedGrain) {
        const { table, i } = await this.tableFor(Math.floor(pos / GRAIN_BYTES));
        table[i] = 1;
      } else await this.write(pos, new Uint8Array(GRAIN_BYTES));
    }
  }

  async finish(): Promise<void> {
    await this.flushGt();
    for (const base of [this.rgdOffset, this.gdOffset]) {
      const gd = new Uint32Array(this.gtCount);
      for (let k = 0; k < this.gtCount; k++) gd[k] = this.gtSectorOf(base, k);
      await this.out.write(base * SECTOR, u32le(gd));
    }
    if (this.descriptor) await this.out.write(SECTOR, this.descriptor);
    await this.out.write(
      0,
      buildSparseHeader({
        version: this.zeroedGrain ? 2 : 1,
        flags: FLAG_NL_DETECT | FLAG_RGD | (this.zeroedGrain ? FLAG_ZERO_GRAIN : 0),
        capacity: this.capacity,
        grainSectors: GRAIN_SECTORS,
        descriptorOffset: 1,
        descriptorSize: DESC_SECTORS,
        gtesPerGt: GTES_PER_GT,
        rgdOffset: this.rgdOffset,
        gdOffset: this.gdOffset,
        overhead: this.overhead,
        uncleanShutdown: false,
        compressAlgorithm: 0,
      }),
    );
    await this.out.flush();
    // The preallocated (possibly empty) tables must lie inside the file.
    if (this.sink.truncate) await this.sink.truncate(this.next * SECTOR);
    else await this.sink.write(this.next * SECTOR - 1, new Uint8Array(1));
  }
}

/** A FLAT extent piece: guest bytes at the same offsets, the file cut to the extent's size. */
export class FlatPieceWriter implements PieceWriter {
  private readonly out: SinkBuffer;
  constructor(
    private readonly sink: ByteSink,
    private readonly size: number,
  ) {
    this.out = new SinkBuffer(sink);
  }
  write(offset: number, data: Uint8Array): Promise<void> {
    return this.out.write(offset, data.subarray(0, Math.max(0, this.size - offset)));
  }
  // A new flat file is zero wherever nothing is written.
  async writeZeroes(): Promise<void> {}
  async finish(): Promise<void> {
    await this.out.flush();
    if (this.sink.truncate) await this.sink.truncate(this.size);
    else if (this.size > 0) await this.sink.write(this.size - 1, new Uint8Array(1));
  }
}

export function u32le(words: Uint32Array): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const v = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) if (words[i]) v.setUint32(i * 4, words[i]!, true);
  return out;
}
