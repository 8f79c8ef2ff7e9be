import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero, padTo, utf8Encode, writeBig64Table } from '../../io/struct.ts';
import { checkOptions, parseSize } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import { WriteOrder } from '../../image/writeOrder.ts';
import {
  buildQedHeader,
  maxImageSize,
  QED_DEFAULT_CLUSTER,
  QED_DEFAULT_TABLE,
  QED_HEADER_BYTES,
  QED_ZERO_CLUSTER,
  tableEntries,
  validClusterSize,
  validTableSize,
} from './header.ts';

export const QED_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  { name: 'cluster_size', type: 'size', default: '64k', help: 'cluster size: a power of two from 4k to 64M' },
  {
    name: 'table_size',
    type: 'number',
    default: '4',
    help: 'L1/L2 table size in clusters: a power of two from 2 to 16 (qemu-img cannot open 1)',
  },
];

/**
 * Writes a QED image: a one-cluster header (with the backing file name after it), the L1 table,
 * then for each L2 range that holds data its L2 table followed by its data clusters, in guest
 * order. All-zero clusters stay unallocated; over a backing file, ranges that must read as zero
 * become zero clusters (L2 entry 1). Tables and header are written as they complete / last.
 */
export class QedWriter implements ImageWriter {
  readonly granularity: number;
  private readonly out: SinkBuffer;
  private readonly l1: BigUint64Array;
  private readonly entries: number;
  private readonly tableBytes: number;
  private readonly size: number;
  private readonly order: WriteOrder;
  private end: number;
  /** The L2 table being filled: its L1 index, file offset and entries. */
  private cur: { index: number; offset: number; table: BigUint64Array } | undefined;

  constructor(
    private readonly sink: ByteSink,
    private readonly opts: CreateOptions,
    private readonly clusterSize: number,
    private readonly tableSize: number,
    private readonly backingName: Uint8Array | undefined,
  ) {
    this.size = alignUp(opts.virtualSize, 512);
    if (this.size > maxImageSize(clusterSize, tableSize)) {
      throw new InvalidArgumentError(
        `QED image size must be less than ${maxImageSize(clusterSize, tableSize)} bytes with cluster_size ${clusterSize} and table_size ${tableSize}`,
      );
    }
    this.granularity = clusterSize;
    this.entries = tableEntries(clusterSize, tableSize);
    this.tableBytes = clusterSize * tableSize;
    this.l1 = new BigUint64Array(this.entries);
    this.end = clusterSize + this.tableBytes;
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('qed', clusterSize, alignUp(this.size, clusterSize));
  }

  /** The L2 table for guest cluster `c`, allocating it (at the end of the file) on first use. */
  private async tableFor(c: number): Promise<BigUint64Array> {
    const index = Math.floor(c / this.entries);
    if (this.cur?.index === index) return this.cur.table;
    await this.flushTable();
    const offset = this.end;
    this.end += this.tableBytes;
    this.l1[index] = BigInt(offset);
    this.cur = { index, offset, table: new BigUint64Array(this.entries) };
    return this.cur.table;
  }

  private async flushTable(): Promise<void> {
    if (!this.cur) return;
    await this.out.write(this.cur.offset, writeBig64Table(this.cur.table, true));
    this.cur = undefined;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    const cs = this.clusterSize;
    for (let pos = 0; pos < data.length; pos += cs) {
      const cluster = data.subarray(pos, pos + cs);
      if (isAllZero(cluster)) continue;
      const c = (offset + pos) / cs;
      const table = await this.tableFor(c);
      table[c % this.entries] = BigInt(this.end);
      await this.out.write(this.end, padTo(cluster, cs));
      this.end += cs;
    }
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.order.check(offset, length);
    const cs = this.clusterSize;
    for (let pos = 0; pos < length; pos += cs) {
      const c = (offset + pos) / cs;
      (await this.tableFor(c))[c % this.entries] = BigInt(QED_ZERO_CLUSTER);
    }
  }

  async finish(): Promise<void> {
    await this.flushTable();
    await this.out.write(this.clusterSize, writeBig64Table(this.l1, true));
    await this.out.flush();
    const b = this.opts.backing;
    const header = buildQedHeader(
      { clusterSize: this.clusterSize, tableSize: this.tableSize, imageSize: this.size, backingRaw: b?.format === 'raw' },
      this.backingName,
    );
    await this.sink.write(0, header);
    if (this.sink.truncate) await this.sink.truncate(this.end);
  }
}

export async function createQedWriter(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  checkOptions('qed', opts.options, QED_CREATE_OPTIONS);
  if (opts.compress) throw new UnsupportedError(opts.filename, 'QED has no compression (-c)');
  const cs = opts.options.cluster_size !== undefined ? parseSize(opts.options.cluster_size, 'cluster_size') : QED_DEFAULT_CLUSTER;
  if (!validClusterSize(cs)) throw new InvalidArgumentError(`QED cluster size must be a power of 2 in range [4096, 67108864], not ${cs}`);
  const ts = opts.options.table_size !== undefined ? Number(opts.options.table_size) : QED_DEFAULT_TABLE;
  if (!validTableSize(ts))
    throw new InvalidArgumentError(`QED table size must be a power of 2 in range [1, 16], not ${opts.options.table_size}`);
  // qemu-img 7.2 creates such images but cannot open them (qed_check_table_offset refuses a
  // one-cluster table as an overflow), so we do not write them.
  if (ts === 1) throw new InvalidArgumentError('QED table_size=1 makes images that qemu-img cannot open; use 2 or more');
  let name: Uint8Array | undefined;
  if (opts.backing) {
    name = utf8Encode(opts.backing.name);
    if (!name.length || QED_HEADER_BYTES + name.length > cs)
      throw new InvalidArgumentError(`QED backing file name of ${name.length} bytes does not fit in the header cluster`);
  }
  return new QedWriter(sink, opts, cs, ts, name);
}
