import type { ByteSink } from '../../io/bytes.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero, padTo } from '../../io/struct.ts';
import type { Codecs } from '../../codecs/types.ts';
import {
  buildMarker,
  buildSparseHeader,
  COMPRESS_DEFLATE,
  FLAG_COMPRESSED,
  FLAG_MARKERS,
  FLAG_NL_DETECT,
  MARKER_FOOTER,
  MARKER_GD,
  MARKER_GT,
  SECTOR,
  type SparseHeader,
} from './sparseHeader.ts';
import { GRAIN_BYTES, GRAIN_SECTORS, GTES_PER_GT, MAX_EXTENT_SECTORS, u32le, type PieceWriter } from './sparseWriter.ts';
import { UnsupportedError } from '../../io/errors.ts';

/** zlib level: QEMU's compress() uses the default (6); ovftool-made files decode the same way. */
const ZLIB_LEVEL = 6;
/** Grains start here, as in VMware's and VMDKstream's stream files. */
const OVERHEAD_SECTORS = 128;

/**
 * streamOptimized the way VMware (ovftool, ESXi export) lays it out, which is what ESXi, AWS
 * import and OVA consumers expect: version 3 header with GD_AT_END, the descriptor, then for each
 * grain a grain marker (lba, size) and one zlib stream padded to a sector; after the grains of a
 * grain table, a GT marker and the table; at the end a GD marker and the directory, a footer
 * marker, the footer (the header again, now with the real gdOffset) and an end-of-stream marker.
 * Everything is written strictly in file order, so the sink never seeks back.
 */
export class StreamWriter implements PieceWriter {
  private readonly capacity: number;
  private readonly gd: Uint32Array;
  private readonly out: SinkBuffer;
  private sector = OVERHEAD_SECTORS;
  private gt: { index: number; table: Uint32Array } | undefined;
  private readonly descSectors: number;

  constructor(
    private readonly sink: ByteSink,
    size: number,
    private readonly descriptor: Uint8Array,
    private readonly codecs: Codecs,
  ) {
    this.capacity = Math.ceil(size / SECTOR);
    const gtCount = Math.ceil(Math.ceil(this.capacity / GRAIN_SECTORS) / GTES_PER_GT);
    // One GT per 32 MiB; past 2^24 of them (512 TiB) the directory alone would not fit the 2 TiB file limit sensibly.
    if (gtCount > 2 ** 24) throw new UnsupportedError(sink.name, 'disk too large for a streamOptimized file');
    this.gd = new Uint32Array(gtCount);
    this.out = new SinkBuffer(sink);
    this.descSectors = Math.ceil(descriptor.length / SECTOR);
    if (1 + this.descSectors > OVERHEAD_SECTORS) throw new RangeError('descriptor too large for a stream VMDK');
  }

  private header(gdOffset: number): Uint8Array {
    const h: SparseHeader = {
      version: 3,
      flags: FLAG_NL_DETECT | FLAG_COMPRESSED | FLAG_MARKERS,
      capacity: this.capacity,
      grainSectors: GRAIN_SECTORS,
      descriptorOffset: 1,
      descriptorSize: this.descSectors,
      gtesPerGt: GTES_PER_GT,
      rgdOffset: 0,
      gdOffset,
      overhead: OVERHEAD_SECTORS,
      uncleanShutdown: false,
      compressAlgorithm: COMPRESS_DEFLATE,
    };
    return buildSparseHeader(h);
  }

  private started = false;
  private async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const head = new Uint8Array(OVERHEAD_SECTORS * SECTOR);
    head.set(this.header(-1), 0);
    head.set(this.descriptor, SECTOR);
    await this.out.write(0, head);
  }

  private async emit(bytes: Uint8Array): Promise<number> {
    const at = this.sector;
    // GTEs and GD entries are 32-bit sector numbers: a stream file ends at 2 TiB.
    if (at + Math.ceil(bytes.length / SECTOR) > MAX_EXTENT_SECTORS) {
      throw new UnsupportedError(this.sink.name, 'a streamOptimized file cannot pass 2 TiB (32-bit grain offsets)');
    }
    const padded = padTo(bytes, Math.ceil(bytes.length / SECTOR) * SECTOR);
    await this.out.write(at * SECTOR, padded);
    this.sector += padded.length / SECTOR;
    return at;
  }

  private async flushGt(): Promise<void> {
    if (!this.gt) return;
    await this.emit(buildMarker((GTES_PER_GT * 4) / SECTOR, MARKER_GT));
    this.gd[this.gt.index] = await this.emit(u32le(this.gt.table));
    this.gt = undefined;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    await this.start();
    const grains: { index: number; bytes: Uint8Array }[] = [];
    for (let pos = 0; pos < data.length; pos += GRAIN_BYTES) {
      const index = Math.floor((offset + pos) / GRAIN_BYTES);
      // The last grain holds only the sectors inside the capacity (it may be short).
      const limit = Math.min(GRAIN_BYTES, this.capacity * SECTOR - index * GRAIN_BYTES);
      let bytes = data.subarray(pos, pos + limit);
      if (isAllZero(bytes)) continue;
      if (bytes.length < limit) {
        const full = new Uint8Array(limit);
        full.set(bytes);
        bytes = full;
      }
      grains.push({ index, bytes });
    }
    // Started together so a pool of compressors behind the codec can work in parallel.
    const packed = await Promise.all(grains.map((g) => this.codecs.zlibDeflate(g.bytes, ZLIB_LEVEL)));
    for (let k = 0; k < grains.length; k++) {
      const { index } = grains[k]!;
      const z = packed[k]!;
      const gtIndex = Math.floor(index / GTES_PER_GT);
      if (this.gt?.index !== gtIndex) {
        await this.flushGt();
        this.gt = { index: gtIndex, table: new Uint32Array(GTES_PER_GT) };
      }
      const rec = new Uint8Array(12 + z.length);
      const v = new DataView(rec.buffer);
      v.setBigUint64(0, BigInt(index * GRAIN_SECTORS), true);
      v.setUint32(8, z.length, true);
      rec.set(z, 12);
      this.gt.table[index % GTES_PER_GT] = await this.emit(rec);
    }
  }

  // Unwritten grains read as zeros; a stream disk has no parent to hide.
  async writeZeroes(): Promise<void> {}

  async finish(): Promise<void> {
    await this.start();
    await this.flushGt();
    const gdBytes = u32le(this.gd);
    await this.emit(buildMarker(Math.ceil(gdBytes.length / SECTOR), MARKER_GD));
    const gdOffset = await this.emit(gdBytes);
    await this.emit(buildMarker(1, MARKER_FOOTER));
    await this.emit(this.header(gdOffset));
    await this.emit(new Uint8Array(SECTOR)); // end-of-stream marker: an all-zero sector
    await this.out.flush();
    if (this.sink.truncate) await this.sink.truncate(this.sector * SECTOR);
  }
}
