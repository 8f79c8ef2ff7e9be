import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero, padTo, Struct, utf8Encode, writeBig64Table } from '../../io/struct.ts';
import { QCOW_DEFLATE } from '../../codecs/types.ts';
import { checkOptions } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import { createQcowCipher, QCOW_ENCRYPT_OPTIONS, type QcowCipher } from './crypto.ts';
import {
  encodeQcowCompressed,
  QCOW_CRYPT_AES,
  QCOW_CRYPT_NONE,
  QCOW_HEADER_SIZE,
  QCOW_MAGIC,
  QCOW_MAX_BACKING_NAME,
  QCOW_VERSION,
} from './header.ts';
import { OpenTable } from '../../image/openTable.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

/** qemu-img offers no cluster options for qcow: only the backing file and encryption. */
export const QCOW_CREATE_OPTIONS: readonly CreateOptionSpec[] = [...QCOW_ENCRYPT_OPTIONS];

/**
 * Writes a qcow (v1) file as QEMU lays one out (block/qcow.c qcow_co_create and
 * get_cluster_offset): header, backing name right after it, L1 at the next 8-byte boundary;
 * then L2 tables and data clusters appended at the end of file rounded up to a cluster, and
 * compressed streams appended at the end rounded up to a sector. Geometry is QEMU's:
 * 4 KiB clusters with 512-entry L2 tables, or 512-byte clusters with 4096-entry L2 tables when
 * there is a backing file (so that unmodified sectors are not copied up).
 */
export class QcowWriter implements ImageWriter {
  readonly granularity: number;
  readonly warnings: string[] = [];
  private readonly clusterBits: number;
  private readonly l2Bits: number;
  private readonly cs: number;
  private readonly l2Entries: number;
  private readonly size: number;
  private readonly l1: BigUint64Array;
  private readonly l1Offset: number;
  private readonly backingName: Uint8Array | undefined;
  private readonly out: SinkBuffer;
  /** End of file so far. */
  private end: number;
  private readonly l2: OpenTable;
  private readonly order: WriteOrder;

  private constructor(
    private readonly sink: ByteSink,
    private readonly opts: CreateOptions,
    private readonly cipher: QcowCipher | undefined,
  ) {
    const backed = !!opts.backing;
    this.clusterBits = backed ? 9 : 12;
    this.l2Bits = backed ? 12 : 9;
    this.cs = 2 ** this.clusterBits;
    this.l2Entries = 2 ** this.l2Bits;
    this.granularity = this.cs;
    this.size = alignUp(opts.virtualSize, 512);
    if (this.size < 2) throw new InvalidArgumentError('qcow images must be at least 2 bytes', opts.filename);
    if (opts.backing) {
      this.backingName = utf8Encode(opts.backing.name);
      if (this.backingName.length > QCOW_MAX_BACKING_NAME) {
        throw new InvalidArgumentError(`backing file name is longer than ${QCOW_MAX_BACKING_NAME} bytes`, opts.filename);
      }
    }
    const l1Size = Math.ceil(this.size / (this.cs * this.l2Entries));
    this.l1 = new BigUint64Array(l1Size);
    this.l1Offset = alignUp(QCOW_HEADER_SIZE + (this.backingName?.length ?? 0), 8);
    // qcow_co_create writes the L1 table as whole zero sectors.
    this.end = this.l1Offset + alignUp(l1Size * 8, 512);
    this.out = new SinkBuffer(sink);
    this.l2 = new OpenTable(this.out);
    this.order = new WriteOrder('qcow', this.cs, alignUp(this.size, this.cs));
  }

  static async create(sink: ByteSink, opts: CreateOptions): Promise<QcowWriter> {
    checkOptions('qcow', opts.options, QCOW_CREATE_OPTIONS);
    const enc = await createQcowCipher(opts);
    if (enc && opts.compress) throw new InvalidArgumentError('compression and encryption cannot be used together in qcow', opts.filename);
    const w = new QcowWriter(sink, opts, enc?.cipher);
    if (enc) w.warnings.push(...enc.warnings);
    return w;
  }

  private async l2For(clusterIndex: number): Promise<{ table: BigUint64Array; i: number }> {
    const l2Index = Math.floor(clusterIndex / this.l2Entries);
    const table = await this.l2.get(l2Index, () => {
      const offset = alignUp(this.end, this.cs);
      this.end = offset + this.l2Entries * 8;
      this.l1[l2Index] = BigInt(offset);
      return { offset, table: new BigUint64Array(this.l2Entries) };
    });
    return { table, i: clusterIndex % this.l2Entries };
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    const clusters: { index: number; bytes: Uint8Array }[] = [];
    for (let pos = 0; pos < data.length; pos += this.cs) {
      const unit = data.subarray(pos, pos + this.cs);
      // Unallocated reads as zero when there is no backing file to show through.
      if (!this.opts.backing && isAllZero(unit)) continue;
      clusters.push({ index: (offset + pos) / this.cs, bytes: padTo(unit, this.cs) });
    }
    await this.putClusters(clusters);
  }

  /** qcow has no zero flag: zeros over a backing file are stored like any other data. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.order.check(offset, length);
    if (!this.opts.backing) return;
    const zeros = new Uint8Array(this.cs);
    const clusters: { index: number; bytes: Uint8Array }[] = [];
    for (let pos = offset; pos < offset + length; pos += this.cs) clusters.push({ index: pos / this.cs, bytes: zeros });
    await this.putClusters(clusters);
  }

  private async putClusters(clusters: { index: number; bytes: Uint8Array }[]): Promise<void> {
    if (this.opts.compress) {
      // Started together so a pool of compressors behind the codec can work in parallel.
      const packed = await Promise.all(clusters.map((c) => this.compress(c.bytes)));
      for (let k = 0; k < clusters.length; k++) await this.putCluster(clusters[k]!.index, clusters[k]!.bytes, packed[k]);
    } else {
      for (const c of clusters) await this.putCluster(c.index, c.bytes, undefined);
    }
  }

  /** qcow_co_pwritev_compressed: deflate −12/6/9; a cluster that does not shrink is stored plain. */
  private async compress(bytes: Uint8Array): Promise<Uint8Array | undefined> {
    const out = await this.opts.codecs.deflateRaw(bytes, QCOW_DEFLATE);
    return out.length < this.cs ? out : undefined;
  }

  private async putCluster(index: number, bytes: Uint8Array, compressed: Uint8Array | undefined): Promise<void> {
    const { table, i } = await this.l2For(index);
    if (compressed) {
      // The descriptor holds the byte count in cluster_bits bits: always < cluster size here.
      const at = alignUp(this.end, 512);
      this.end = at + compressed.length;
      table[i] = encodeQcowCompressed(at, compressed.length, this.clusterBits);
      await this.out.write(at, compressed);
      return;
    }
    const at = alignUp(this.end, this.cs);
    this.end = at + this.cs;
    table[i] = BigInt(at);
    if (this.cipher) {
      const copy = bytes.slice();
      await this.cipher.encrypt(copy, index * this.cs, at);
      bytes = copy;
    }
    await this.out.write(at, bytes);
  }

  async finish(): Promise<void> {
    await this.l2.flush();
    await this.out.write(0, this.header());
    if (this.l1.length) await this.out.write(this.l1Offset, writeBig64Table(this.l1));
    await this.out.flush();
    // Whole sectors: QEMU's own files end on a sector (or cluster) after metadata and data.
    const fileEnd = alignUp(this.end, 512);
    if (this.sink.truncate) await this.sink.truncate(fileEnd);
  }

  private header(): Uint8Array {
    const s = Struct.alloc(this.l1Offset);
    s.setU32(0, QCOW_MAGIC).setU32(4, QCOW_VERSION);
    if (this.backingName) s.setU64(8, QCOW_HEADER_SIZE).setU32(16, this.backingName.length).setBytes(QCOW_HEADER_SIZE, this.backingName);
    s.setU32(20, 0); // mtime: QEMU writes 0
    s.setU64(24, this.size).setU8(32, this.clusterBits).setU8(33, this.l2Bits);
    s.setU32(36, this.cipher ? QCOW_CRYPT_AES : QCOW_CRYPT_NONE).setU64(40, this.l1Offset);
    return s.bytes;
  }
}
