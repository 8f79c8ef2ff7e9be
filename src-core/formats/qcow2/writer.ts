import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError } from '../../io/errors.ts';
import { alignUp, isPowerOfTwo } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero, padTo, Struct, utf8Encode, writeBig64Table } from '../../io/struct.ts';
import { QCOW_DEFLATE } from '../../codecs/types.ts';
import { checkOptions, parseBool, parseSize } from '../../image/options.ts';
import type { BackingRef, CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import { encodeCompressed, OFLAG_COPIED, OFLAG_ZERO } from './entries.ts';
import {
  COMPAT_LAZY_REFCOUNTS,
  EXT_BACKING_FORMAT,
  EXT_CRYPTO,
  EXT_FEATURE_TABLE,
  INCOMPAT_COMPRESSION,
  INCOMPAT_EXTL2,
  MAX_BACKING_FORMAT,
  MAX_BACKING_NAME,
  QCOW_MAGIC,
  V2_HEADER_LENGTH,
  V3_HEADER_LENGTH_WITH_COMPRESSION,
} from './header.ts';
import {
  parseEncryptionOptions,
  QCOW2_ENCRYPT_OPTIONS,
  setupEncryption,
  type Qcow2EncryptionConfig,
  type Qcow2WriteEncryption,
} from './writeEncryption.ts';
import { entriesPerRefblock, refcountLayout, refcountMax, setRefcount } from './refcounts.ts';
import { OpenTable } from '../../image/openTable.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

export const QCOW2_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  {
    name: 'compat',
    type: 'enum',
    values: ['0.10', '1.1', 'v2', 'v3'],
    default: '1.1',
    help: 'qcow2 version: 1.1 (v3) or 0.10 (v2, for very old readers)',
  },
  { name: 'cluster_size', type: 'size', default: '64k', help: 'cluster size, 512 to 2M, a power of two' },
  {
    name: 'refcount_bits',
    type: 'enum',
    values: ['1', '2', '4', '8', '16', '32', '64'],
    default: '16',
    help: 'width of a reference count',
  },
  { name: 'compression_type', type: 'enum', values: ['zlib', 'zstd'], default: 'zlib', help: 'how -c compresses clusters' },
  { name: 'extended_l2', type: 'bool', default: 'off', help: 'subcluster allocation (32 per cluster)' },
  { name: 'lazy_refcounts', type: 'bool', default: 'off', help: 'mark the image as using lazy refcounts (v3)' },
  {
    name: 'preallocation',
    type: 'enum',
    values: ['off', 'metadata', 'falloc', 'full'],
    default: 'off',
    help: 'metadata: every cluster allocated, the file sparse; falloc, full: zeros written too',
  },
  ...QCOW2_ENCRYPT_OPTIONS,
];

/** The feature-name table QEMU writes into version 3 headers (cluster_size > 4 KiB). */
export const FEATURE_NAMES: [number, number, string][] = [
  [0, 0, 'dirty bit'],
  [0, 1, 'corrupt bit'],
  [0, 2, 'external data file'],
  [0, 3, 'compression type'],
  [0, 4, 'extended L2 entries'],
  [1, 0, 'lazy refcounts'],
  [2, 0, 'bitmaps'],
  [2, 1, 'raw external data'],
];

export interface Qcow2WriterConfig {
  version: 2 | 3;
  clusterBits: number;
  refcountBits: number;
  compressionType: 0 | 1;
  extendedL2: boolean;
  lazyRefcounts: boolean;
  encryption?: Qcow2EncryptionConfig;
  preallocation: 'off' | 'metadata' | 'falloc' | 'full';
}

export function parseQcow2Options(opts: CreateOptions): Qcow2WriterConfig {
  const o = opts.options;
  checkOptions('qcow2', o, QCOW2_CREATE_OPTIONS);
  const compat = o.compat ?? '1.1';
  const version = compat === '0.10' || compat === 'v2' ? 2 : 3;
  const clusterSize = o.cluster_size ? parseSize(o.cluster_size, 'cluster_size') : 65536;
  if (!isPowerOfTwo(clusterSize) || clusterSize < 512 || clusterSize > 2 * 1024 * 1024) {
    throw new InvalidArgumentError(`cluster_size must be a power of two between 512 and 2M (got ${clusterSize})`);
  }
  const refcountBits = Number(o.refcount_bits ?? 16);
  const compressionType = o.compression_type === 'zstd' ? 1 : 0;
  const extendedL2 = parseBool(o.extended_l2, 'extended_l2');
  const lazyRefcounts = parseBool(o.lazy_refcounts, 'lazy_refcounts');
  if (version === 2) {
    if (refcountBits !== 16) throw new InvalidArgumentError('compat=0.10 requires refcount_bits=16');
    if (compressionType) throw new InvalidArgumentError('compression_type=zstd requires compat=1.1');
    if (extendedL2) throw new InvalidArgumentError('extended_l2 requires compat=1.1');
    if (lazyRefcounts) throw new InvalidArgumentError('lazy_refcounts requires compat=1.1');
  }
  if (extendedL2 && clusterSize < 16384) throw new InvalidArgumentError('extended_l2 requires cluster_size of at least 16k');
  const encryption = parseEncryptionOptions(opts);
  const preallocation = (o.preallocation ?? 'off') as Qcow2WriterConfig['preallocation'];
  if (preallocation !== 'off') {
    // qemu-img's refusals, in its words.
    if (opts.compress) throw new InvalidArgumentError('Compression and preallocation not supported at the same time');
    if (opts.backing && !extendedL2)
      throw new InvalidArgumentError('Backing file and preallocation can only be used at the same time if extended_l2 is on');
    if (encryption) throw new InvalidArgumentError('DiskFerry does not preallocate encrypted qcow2 images (only preallocation=off)');
  }
  return {
    version,
    clusterBits: Math.log2(clusterSize),
    refcountBits,
    compressionType,
    extendedL2,
    lazyRefcounts,
    encryption,
    preallocation,
  };
}

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

/** Where a qcow2 header points, for qcow2Header (both writers: the ordinary one and the front-to-back one). */
export interface Qcow2HeaderFields {
  size: number;
  cryptMethod: number;
  l1Entries: number;
  l1Offset: number;
  reftableOffset: number;
  reftableClusters: number;
  backing?: BackingRef;
  /** The LUKS header's place in the file (encrypt.format=luks). */
  luks?: { offset: number; length: number };
}

/** The first cluster's header: fields, extensions (backing format, crypto, feature names) and the backing file name. */
export function qcow2Header(cfg: Qcow2WriterConfig, cs: number, f: Qcow2HeaderFields): Uint8Array {
  const v3 = cfg.version === 3;
  const headerLength = v3 ? V3_HEADER_LENGTH_WITH_COMPRESSION : V2_HEADER_LENGTH;
  const s = Struct.alloc(cs);
  s.setU32(0, QCOW_MAGIC).setU32(4, cfg.version);
  s.setU32(20, cfg.clusterBits).setU64(24, f.size).setU32(32, f.cryptMethod);
  s.setU32(36, f.l1Entries).setU64(40, f.l1Offset);
  s.setU64(48, f.reftableOffset).setU32(56, f.reftableClusters);
  s.setU32(60, 0).setU64(64, 0);
  if (v3) {
    let incompat = 0n;
    if (cfg.compressionType) incompat |= INCOMPAT_COMPRESSION;
    if (cfg.extendedL2) incompat |= INCOMPAT_EXTL2;
    s.setBig64(72, incompat)
      .setBig64(80, cfg.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n)
      .setBig64(88, 0n);
    s.setU32(96, Math.log2(cfg.refcountBits)).setU32(100, headerLength).setU8(104, cfg.compressionType);
  }
  let off = headerLength;
  const ext = (type: number, data: Uint8Array) => {
    s.setU32(off, type)
      .setU32(off + 4, data.length)
      .setBytes(off + 8, data);
    off += 8 + alignUp(data.length, 8);
  };
  const b = f.backing;
  if (b?.format) ext(EXT_BACKING_FORMAT, utf8Encode(b.format));
  if (f.luks) ext(EXT_CRYPTO, Struct.alloc(16).setU64(0, f.luks.offset).setU64(8, f.luks.length).bytes);
  if (v3 && cs > 4096) {
    const t = Struct.alloc(FEATURE_NAMES.length * 48);
    FEATURE_NAMES.forEach(([type, bit, name], i) =>
      t
        .setU8(i * 48, type)
        .setU8(i * 48 + 1, bit)
        .setString(i * 48 + 2, name, 46),
    );
    ext(EXT_FEATURE_TABLE, t.bytes);
  }
  off += 8; // end-of-extensions marker: type 0, length 0
  if (b) {
    const name = utf8Encode(b.name);
    if (off + name.length > cs) throw new InvalidArgumentError('backing file name does not fit in the first cluster');
    s.setU64(8, off).setU32(16, name.length).setBytes(off, name);
    off += name.length;
  }
  return s.bytes.subarray(0, Math.min(cs, alignUp(off, 512)));
}

interface QueuedCluster {
  index: number;
  bytes: Uint8Array;
  /** The compressed stream, or undefined when it did not shrink the cluster. */
  packed: Promise<Uint8Array | undefined> | undefined;
}
