import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero, padTo, utf8Encode, writeBig64Table } from '../../io/struct.ts';
import { QCOW_DEFLATE } from '../../codecs/types.ts';
import type { CreateOptions, ImageWriter } from '../../image/types.ts';
import { parseQcow2Options, type Qcow2WriterConfig } from './createOptions.ts';
import { encodeCompressed, OFLAG_COPIED, OFLAG_ZERO } from './entries.ts';
import { MAX_BACKING_FORMAT, MAX_BACKING_NAME } from './header.ts';
import { qcow2Header } from './headerWrite.ts';
import { setupEncryption, type Qcow2WriteEncryption } from './writeEncryption.ts';
import { entriesPerRefblock, refcountLayout, refcountMax, setRefcount } from './refcounts.ts';
import { OpenTable } from '../../image/openTable.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

export async function createQcow2Writer(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  const cfg = parseQcow2Options(opts);
  const enc = cfg.encryption ? await setupEncryption(opts, cfg.encryption) : undefined;
  return new Qcow2Writer(sink, opts, cfg, enc);
}

/**
 * Writes a qcow2 file front to back: header cluster, L1, then L2 tables and data clusters in the
 * order guest data arrives, and at the end the refcount table and blocks, counted to a fixed
 * point. Only the current L2 table and one refcount per host cluster are held in memory.
 */
export class Qcow2Writer implements ImageWriter {
  readonly granularity: number;
  readonly warnings: string[] = [];
  private readonly cs: number;
  private readonly size: number;
  private readonly l2Entries: number;
  private readonly entryWords: number;
  private readonly l1: BigUint64Array;
  private readonly l1Offset: number;
  private readonly reftableOffset: number;
  private readonly reftableClusters: number;
  private readonly perRefblock: number;
  /** File offset of each refcount block, allocated when the file first reaches its range. */
  private readonly refblocks: number[] = [];
  private readonly out: SinkBuffer;
  /** Refcount of each host cluster, indexed by offset / cluster size. */
  private refs = new Uint32Array(1024);
  /** Next free cluster-aligned offset. */
  private end: number;
  /** Where the next compressed stream may go: inside a partly used cluster, or 0 when there is none. */
  private cursor = 0;
  private readonly l2: OpenTable;
  private readonly order: WriteOrder;
  private luksOffset = 0;
  /** Clusters handed to write() but not yet placed, in guest order (compressions in flight). */
  private queue: QueuedCluster[] = [];
  private queueHead = 0;
  /** How many clusters may wait: about 8 MiB of guest data, enough to keep a pool busy. */
  private readonly queueLimit: number;
  /** With preallocation: the first guest cluster not yet placed (clusters are placed in order). */
  private nextIndex = 0;

  constructor(
    private readonly sink: ByteSink,
    private readonly opts: CreateOptions,
    private readonly cfg: Qcow2WriterConfig,
    private readonly enc?: Qcow2WriteEncryption,
  ) {
    this.cs = 2 ** cfg.clusterBits;
    this.granularity = this.cs;
    this.size = alignUp(opts.virtualSize, 512);
    this.entryWords = cfg.extendedL2 ? 2 : 1;
    this.l2Entries = this.cs / (8 * this.entryWords);
    const l1Size = Math.ceil(this.size / (this.cs * this.l2Entries));
    this.l1 = new BigUint64Array(l1Size);
    this.out = new SinkBuffer(sink);
    this.l2 = new OpenTable(this.out);
    this.order = new WriteOrder('qcow2', this.cs, alignUp(this.size, this.cs));
    this.perRefblock = entriesPerRefblock(this.cs, cfg.refcountBits);
    const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / this.cs));
    const luksClusters = enc?.luks ? Math.ceil(enc.luks.length / this.cs) : 0;
    // As qemu-img lays it out: header, refcount table, L1, (LUKS), then data with refcount blocks
    // placed as the file grows into their range. The table is sized for the largest file this
    // disk can become, so the file can end on its last data byte instead of on metadata.
    const worstCase = 1 + l1Clusters + luksClusters + l1Size + Math.ceil(this.size / this.cs) + 1;
    this.reftableClusters = refcountLayout(worstCase, this.cs, cfg.refcountBits).tableClusters;
    this.end = 0;
    this.allocCluster(); // header
    this.reftableOffset = this.end;
    for (let i = 0; i < this.reftableClusters; i++) this.allocCluster();
    this.l1Offset = this.end;
    for (let i = 0; i < l1Clusters; i++) this.allocCluster();
    if (enc?.luks) {
      // The LUKS area follows the L1 table: whole clusters, refcounted like metadata.
      this.luksOffset = this.end;
      for (let i = 0; i < luksClusters; i++) this.allocCluster();
    }
    if (enc?.warning) this.warnings.push(enc.warning);
    this.queueLimit = Math.max(16, Math.floor((8 * 1024 * 1024) / this.cs));
    this.nextIndex = Math.ceil((opts.preallocateFrom ?? 0) / this.cs);
    this.checkBacking();
  }

  private checkBacking(): void {
    const b = this.opts.backing;
    if (!b) return;
    if (utf8Encode(b.name).length > MAX_BACKING_NAME)
      throw new InvalidArgumentError(`backing file name is longer than ${MAX_BACKING_NAME} bytes`);
    if (b.format && b.format.length > MAX_BACKING_FORMAT) throw new InvalidArgumentError('backing format name is too long');
  }

  private addRef(cluster: number, n = 1): void {
    if (cluster >= this.refs.length) {
      let cap = this.refs.length;
      while (cap <= cluster) cap *= 2;
      const next = new Uint32Array(cap);
      next.set(this.refs);
      this.refs = next;
    }
    this.refs[cluster]! += n;
  }

  private allocCluster(): number {
    const off = this.end;
    this.addRef(off / this.cs);
    this.end += this.cs;
    this.coverWithRefblocks();
    return off;
  }

  /** Every cluster below `end` lies in the range of an allocated refcount block. */
  private coverWithRefblocks(): void {
    while (this.refblocks.length * this.perRefblock < this.end / this.cs) {
      this.refblocks.push(this.end);
      this.addRef(this.end / this.cs);
      this.end += this.cs;
    }
  }

  /**
   * Places a compressed stream byte-packed after the previous one, as qemu-img does
   * (qcow2_alloc_bytes): it goes into the partly used cluster when it fits, spills into the next
   * cluster only when that one is the next free one, and otherwise starts a fresh cluster.
   */
  private allocCompressed(length: number): number {
    const max = refcountMax(this.cfg.refcountBits);
    let start = this.cursor;
    // A partly used cluster whose refcount is already at the maximum cannot be shared again.
    if (start && this.refs[Math.floor(start / this.cs)]! >= max) start = 0;
    const free = start ? this.cs - (start % this.cs) : 0;
    if (!start || free < length) {
      if (!start || alignUp(start, this.cs) !== this.end) start = this.end;
    }
    const first = Math.floor(start / this.cs);
    const last = Math.floor((start + length - 1) / this.cs);
    for (let c = first; c <= last; c++) this.addRef(c);
    const stop = start + length;
    this.end = Math.max(this.end, alignUp(stop, this.cs));
    this.cursor = stop % this.cs ? stop : 0;
    this.coverWithRefblocks();
    return start;
  }

  private async l2For(clusterIndex: number): Promise<{ table: BigUint64Array; i: number }> {
    const l2Index = Math.floor(clusterIndex / this.l2Entries);
    const table = await this.l2.get(l2Index, () => {
      const offset = this.allocCluster();
      this.l1[l2Index] = BigInt(offset) | OFLAG_COPIED;
      return { offset, table: new BigUint64Array(this.l2Entries * this.entryWords) };
    });
    return { table, i: (clusterIndex % this.l2Entries) * this.entryWords };
  }

  /**
   * Takes a run of guest data. With -c, each cluster's compression starts at once (a pool of
   * workers behind the codec works on many together) and the cluster joins a queue that is
   * placed strictly in guest order; write() returns as soon as the queue is back under its
   * bound, so the caller reads the next window while this one compresses. The queue keeps
   * references to `data`: callers hand over fresh buffers (convert does).
   */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    for (let pos = 0; pos < data.length; pos += this.cs) {
      const unit = data.subarray(pos, pos + this.cs);
      if (isAllZero(unit) && !this.opts.backing) continue; // reads as zero anyway
      const bytes = padTo(unit, this.cs);
      const index = (offset + pos) / this.cs;
      if (this.opts.compress) {
        const packed = this.compress(bytes);
        packed.catch(() => {}); // rejections surface when drain() awaits it, in order
        this.queue.push({ index, bytes, packed });
      } else if (this.queue.length) this.queue.push({ index, bytes, packed: undefined });
      else await this.putCluster(index, bytes, undefined);
    }
    await this.drain(this.queueLimit);
  }

  /** Places queued clusters, oldest first, until at most `keep` remain. */
  private async drain(keep: number): Promise<void> {
    while (this.queue.length - this.queueHead > keep) {
      const c = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as QueuedCluster;
      await this.putCluster(c.index, c.bytes, c.packed && (await c.packed));
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 4096) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private async compress(bytes: Uint8Array): Promise<Uint8Array | undefined> {
    const c = this.opts.codecs;
    const out = this.cfg.compressionType === 1 ? await c.zstdCompress(bytes, 3) : await c.deflateRaw(bytes, QCOW_DEFLATE);
    // QEMU stores a cluster uncompressed when compression does not make it smaller.
    return out.length < this.cs ? out : undefined;
  }

  /**
   * preallocation: every guest cluster before `index` that got no data is allocated now, in
   * guest order as qemu-img lays them out (L2 tables among the data). metadata leaves the
   * cluster unwritten (a hole in the file, read as zeros); falloc and full write zeros (Node
   * has no fallocate, so falloc is full).
   */
  private async preallocateUpTo(index: number): Promise<void> {
    if (this.cfg.preallocation === 'off') return;
    for (; this.nextIndex < index; this.nextIndex++) {
      const { table, i } = await this.l2For(this.nextIndex);
      if (table[i] || (this.cfg.extendedL2 && table[i + 1])) continue;
      const at = this.allocCluster();
      table[i] = BigInt(at) | OFLAG_COPIED;
      // Extended L2: the cluster is reserved but its subclusters stay unallocated (bitmap 0), as
      // qemu-img leaves them, so a backing file still shows through.
      if (this.cfg.extendedL2) table[i + 1] = 0n;
      if (this.cfg.preallocation !== 'metadata') await this.out.write(at, new Uint8Array(this.cs));
    }
  }

  private async putCluster(index: number, bytes: Uint8Array, compressed: Uint8Array | undefined): Promise<void> {
    await this.preallocateUpTo(index);
    this.nextIndex = Math.max(this.nextIndex, index + 1);
    const { table, i } = await this.l2For(index);
    if (compressed) {
      const at = this.allocCompressed(compressed.length);
      table[i] = encodeCompressed(at, compressed.length, this.cfg.clusterBits);
      await this.out.write(at, compressed);
      return;
    }
    const at = this.allocCluster();
    table[i] = BigInt(at) | OFLAG_COPIED;
    if (this.cfg.extendedL2) table[i + 1] = 0xffffffffn; // every subcluster allocated
    if (this.enc) {
      bytes = bytes.slice(); // encrypted in place; the caller's buffer stays plain
      this.enc.encrypt(bytes, index * this.cs, at);
    }
    // Not copied: write() holds its callers' buffers anyway, and neighbouring clusters of one
    // window leave as one view of it.
    await this.out.writeOwned(at, bytes);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.order.check(offset, length);
    // Without a backing file, unallocated already reads as zero.
    if (!this.opts.backing) return;
    await this.drain(0); // L2 entries are filled in guest order
    for (let pos = offset; pos < offset + length; pos += this.cs) {
      const index = pos / this.cs;
      await this.preallocateUpTo(index);
      if (this.cfg.version === 2) {
        // Version 2 has no zero flag: zeros over a backing file must be stored.
        await this.putCluster(index, new Uint8Array(this.cs), undefined);
        continue;
      }
      const { table, i } = await this.l2For(index);
      if (this.cfg.extendedL2) {
        table[i] = 0n;
        table[i + 1] = 0xffffffff00000000n;
      } else table[i] = OFLAG_ZERO;
    }
  }

  async finish(): Promise<void> {
    await this.drain(0);
    await this.preallocateUpTo(Math.ceil(this.size / this.cs));
    await this.l2.flush();
    await this.out.write(this.l1Offset, writeBig64Table(this.l1));
    if (this.enc?.luks) await this.out.write(this.luksOffset, this.enc.luks.bytes);
    const reftable = await this.writeRefcounts();
    await this.out.write(0, this.header(reftable));
    await this.out.flush();
    // The file must reach the end of its last cluster, and compressed data is padded to 512.
    if (this.sink.truncate) await this.sink.truncate(this.fileEnd);
  }

  /** The file ends on its last byte: a partly used compressed cluster is cut at a sector, as qemu-img leaves it. */
  private get fileEnd(): number {
    return this.cursor && this.cursor > this.end - this.cs ? alignUp(this.cursor, 512) : this.end;
  }

  private async writeRefcounts(): Promise<{ offset: number; clusters: number }> {
    const bits = this.cfg.refcountBits;
    const total = this.end / this.cs;
    const max = refcountMax(bits);
    const table = new BigUint64Array((this.reftableClusters * this.cs) / 8);
    if (this.refblocks.length > table.length) throw new RangeError('qcow2 writer: refcount table reservation too small');
    for (let b = 0; b < this.refblocks.length; b++) {
      const block = new Uint8Array(this.cs);
      for (let k = 0; k < this.perRefblock; k++) {
        const cluster = b * this.perRefblock + k;
        if (cluster >= total) break;
        const n = this.refs[cluster] ?? 0;
        if (n > max) throw new RangeError(`refcount ${n} does not fit in ${bits} bits`);
        if (n) setRefcount(block, k, bits, n);
      }
      table[b] = BigInt(this.refblocks[b]!);
      await this.out.write(this.refblocks[b]!, block);
    }
    await this.out.write(this.reftableOffset, writeBig64Table(table));
    return { offset: this.reftableOffset, clusters: this.reftableClusters };
  }

  private header(reftable: { offset: number; clusters: number }): Uint8Array {
    return qcow2Header(this.cfg, this.cs, {
      size: this.size,
      cryptMethod: this.enc?.cryptMethod ?? 0,
      l1Entries: this.l1.length,
      l1Offset: this.l1Offset,
      reftableOffset: reftable.offset,
      reftableClusters: reftable.clusters,
      backing: this.opts.backing,
      luks: this.enc?.luks ? { offset: this.luksOffset, length: this.enc.luks.length } : undefined,
    });
  }
}

interface QueuedCluster {
  index: number;
  bytes: Uint8Array;
  /** The compressed stream, or undefined when it did not shrink the cluster. */
  packed: Promise<Uint8Array | undefined> | undefined;
}
