import { readExact, readPadded, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, NeedsPasswordError } from '../../io/errors.ts';
import { MAX_SAFE_OFFSET } from '../../io/int64.ts';
import { readBig64Table, utf8Decode } from '../../io/struct.ts';
import { readInto, sectorRead, type HostRead } from '../../image/readPlan.ts';
import type { BackingRef, BlockDevice, Extent, ImageInfo, OpenContext } from '../../image/types.ts';
import { openQcowCipher, type QcowCipher } from './crypto.ts';
import { decodeQcowCompressed, parseQcowHeader, QCOW_HEADER_SIZE, QCOW_OFLAG_COMPRESSED, type QcowHeader } from './header.ts';
import { BoundedCache } from '../../io/boundedCache.ts';
import { infoBasics, setBackingInfo } from '../../image/info.ts';

/** L2 tables kept in memory, bounded in bytes whatever l2_bits says. */
const L2_CACHE_BYTES = 16 * 1024 * 1024;

/** Guest clusters that map alike: `host` for normal clusters, `entry` for a compressed one. */
interface QcowRun {
  offset: number;
  length: number;
  kind: 'unallocated' | 'normal' | 'compressed';
  host?: number;
  entry?: bigint;
}

/**
 * An opened qcow (version 1) file. Like qcow2 without refcounts, snapshots, zero flags or
 * COPIED bits: an L2 entry is 0 (backing file or zeros), a plain host offset, or a compressed
 * descriptor (bit 63). L2 tables are 8<<l2_bits bytes and need not be a cluster long.
 */
export class QcowDevice implements BlockDevice {
  readonly format = 'qcow';
  readonly virtualSize: number;
  private readonly l2Cache: BoundedCache<BigUint64Array>;
  private lastCompressed: { index: number; data: Uint8Array } | undefined;

  private constructor(
    readonly src: ByteSource,
    readonly header: QcowHeader,
    readonly l1: BigUint64Array,
    readonly backingFile: string | undefined,
    private readonly ctx: OpenContext,
    private readonly cipher: QcowCipher | undefined,
  ) {
    this.virtualSize = header.size;
    this.l2Cache = new BoundedCache(Math.max(4, Math.floor(L2_CACHE_BYTES / (header.l2Entries * 8))));
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<QcowDevice> {
    const h = parseQcowHeader(src.name, await src.read(0, QCOW_HEADER_SIZE));
    // QEMU would read tables cut off by the end of file as zeros; a file cut short is damaged,
    // and qemu-img's own files always hold their whole L1 and L2 tables, so refuse it instead.
    const l1 = readBig64Table(await readExact(src, h.l1TableOffset, h.l1Size * 8), h.l1Size);
    const l2Bytes = h.l2Entries * 8;
    for (let i = 0; i < l1.length; i++) {
      const e = l1[i]!;
      if (e !== 0n && e + BigInt(l2Bytes) > BigInt(src.size)) {
        throw new CorruptImageError(
          src.name,
          `L2 table ${i} at 0x${e.toString(16)} lies past the end of the file (${src.size} bytes; truncated file?)`,
        );
      }
    }
    let backingFile: string | undefined;
    if (h.backingFileOffset) {
      backingFile = utf8Decode(await readExact(src, h.backingFileOffset, h.backingFileSize));
      const nul = backingFile.indexOf('\0');
      if (nul >= 0) backingFile = backingFile.slice(0, nul);
      if (!backingFile) backingFile = undefined;
    }
    const cipher = await openQcowCipher(src.name, h, ctx.password, ctx.codecs);
    return new QcowDevice(src, h, l1, backingFile, ctx, cipher);
  }

  get filename(): string {
    return this.src.name;
  }

  get clusterSize(): number {
    return this.header.clusterSize;
  }

  get backingRef(): BackingRef | undefined {
    // qcow v1 has no field for the backing format: the opener probes it.
    return this.backingFile ? { name: this.backingFile } : undefined;
  }

  /** Guest bytes one L2 table maps. */
  private get l2Span(): number {
    return this.header.l2Entries * this.header.clusterSize;
  }

  private async l2Table(offset: number): Promise<BigUint64Array> {
    const n = this.header.l2Entries;
    return this.l2Cache.getOrLoad(offset, async () => readBig64Table(await readExact(this.src, offset, n * 8), n));
  }

  private l2OffsetFor(clusterIndex: number): number {
    const l1Index = Math.floor(clusterIndex / this.header.l2Entries);
    return l1Index < this.l1.length ? this.offsetOf(this.l1[l1Index]!, 'L1 entry') : 0;
  }

  /** A table entry as a file offset; beyond 2^53 it can only be corruption. */
  private offsetOf(entry: bigint, what: string): number {
    if (entry > BigInt(MAX_SAFE_OFFSET)) throw new CorruptImageError(this.src.name, `${what} 0x${entry.toString(16)} is beyond any file`);
    return Number(entry);
  }

  /**
   * Runs of guest clusters that map alike, over [from, to): each L2 table is fetched once and its
   * entries are walked synchronously, so a disk of 512-byte clusters (QEMU's geometry with a
   * backing file) costs one await per table, not per cluster. Normal clusters merge only when
   * their host offsets are contiguous; compressed clusters never merge.
   */
  private async *runs(from: number, to: number): AsyncIterable<QcowRun> {
    const cs = this.header.clusterSize;
    let pos = from;
    while (pos < to) {
      const index = Math.floor(pos / cs);
      let l1Index = Math.floor(index / this.header.l2Entries);
      const spanEnd = Math.min(to, (l1Index + 1) * this.l2Span);
      const l2Off = this.l2OffsetFor(index);
      if (!l2Off) {
        // No L2 table: everything it (and any following missing tables) would map is
        // unallocated, in one step and without visiting each cluster.
        while (l1Index + 1 < this.l1.length && this.l1[l1Index + 1] === 0n && (l1Index + 1) * this.l2Span < to) l1Index++;
        const end = Math.min(to, (l1Index + 1) * this.l2Span);
        yield { offset: pos, length: end - pos, kind: 'unallocated' };
        pos = end;
        continue;
      }
      const table = await this.l2Table(l2Off);
      let cur: QcowRun | undefined;
      while (pos < spanEnd) {
        const i = Math.floor(pos / cs);
        const clusterStart = i * cs;
        const end = Math.min(clusterStart + cs, spanEnd);
        const entry = table[i % this.header.l2Entries]!;
        let run: QcowRun;
        if (entry === 0n) run = { offset: pos, length: end - pos, kind: 'unallocated' };
        else if (entry & QCOW_OFLAG_COMPRESSED) run = { offset: pos, length: end - pos, kind: 'compressed', entry };
        else run = { offset: pos, length: end - pos, kind: 'normal', host: this.offsetOf(entry, 'L2 entry') + (pos - clusterStart) };
        if (
          cur &&
          cur.kind === run.kind &&
          run.kind !== 'compressed' &&
          (run.kind === 'unallocated' || cur.host! + cur.length === run.host)
        ) {
          cur.length += run.length;
        } else {
          if (cur) yield cur;
          cur = run;
        }
        pos = end;
      }
      if (cur) yield cur;
    }
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    for await (const r of this.runs(from, Math.min(to, this.virtualSize))) {
      const base = { offset: r.offset, length: r.length };
      if (r.kind === 'unallocated') yield { ...base, kind: 'unallocated' };
      else if (r.kind === 'compressed') yield { ...base, kind: 'data', compressed: true };
      else {
        const e: Extent = { ...base, kind: 'data' };
        // Encrypted bytes are not the guest's bytes, so a map must not point at them (as QEMU).
        if (!this.header.cryptMethod) e.hostOffset = r.host;
        yield e;
      }
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const end = Math.min(offset + length, this.virtualSize);
    const cs = this.header.clusterSize;
    const plain: HostRead[] = [];
    const compressed: { index: number; entry: bigint; outPos: number; start: number; len: number }[] = [];
    for await (const r of this.runs(offset, end)) {
      if (r.kind === 'compressed') {
        const index = Math.floor(r.offset / cs);
        compressed.push({ index, entry: r.entry!, outPos: r.offset - offset, start: r.offset - index * cs, len: r.length });
      } else if (r.kind === 'normal') {
        // qcow_co_preadv: a data cluster that is not sector aligned is an I/O error.
        if ((r.host! - (r.offset % cs)) % 512 !== 0) {
          throw new CorruptImageError(this.src.name, `cluster at guest offset ${r.offset - (r.offset % cs)} has an unaligned host offset`);
        }
        // Encrypted sectors decrypt whole: widen the read, keep the part asked for.
        if (this.cipher) plain.push(sectorRead(r.host!, r.offset, r.length, r.offset - offset));
        else plain.push({ hostOffset: r.host!, length: r.length, outPos: r.offset - offset, guestOffset: r.offset });
      }
    }
    if (plain.length && this.header.cryptMethod && !this.cipher) throw new NeedsPasswordError(this.src.name);
    await readInto(this.src, plain, out, this.cipher);
    for (const c of compressed) {
      const data = await this.decompressCluster(c.index, c.entry);
      out.set(data.subarray(c.start, c.start + c.len), c.outPos);
    }
    return out;
  }

  /** decompress_cluster: exactly csize bytes, one raw-deflate call, exactly one cluster out. */
  private async decompressCluster(index: number, entry: bigint): Promise<Uint8Array> {
    if (this.lastCompressed?.index === index) return this.lastCompressed.data;
    const cs = this.header.clusterSize;
    const where = `compressed cluster at guest offset ${index * cs}`;
    let ref: { offset: number; size: number };
    try {
      ref = decodeQcowCompressed(entry, this.header.clusterBits);
    } catch {
      throw new CorruptImageError(this.src.name, `${where} has an offset beyond any file`);
    }
    if (ref.offset >= this.src.size) throw new CorruptImageError(this.src.name, `${where} points past the end of the file`);
    const raw = await readPadded(this.src, ref.offset, ref.size);
    let data: Uint8Array;
    try {
      data = await this.ctx.codecs.inflateRaw(raw, cs);
    } catch (e) {
      throw new CorruptImageError(this.src.name, `${where} cannot be decompressed: ${(e as Error).message}`);
    }
    this.lastCompressed = { index, data };
    return data;
  }

  info(): ImageInfo {
    const info: ImageInfo = {
      ...infoBasics(this.src, 'qcow', this.virtualSize),
      'cluster-size': this.header.clusterSize,
      'dirty-flag': false,
    };
    if (this.backingFile) {
      setBackingInfo(info, this.src.name, this.backingFile);
    }
    if (this.header.cryptMethod) info.encrypted = true;
    return info;
  }

  async close(): Promise<void> {
    this.l2Cache.clear();
    await this.src.close?.();
  }
}
