import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, InvalidArgumentError, NeedsPasswordError, NotThisFormatError } from '../../io/errors.ts';
import { readBig64Table } from '../../io/struct.ts';
import { CodecError } from '../../codecs/portable.ts';
import type { BlockDevice, Extent, ImageInfo, OpenContext } from '../../image/types.ts';
import { openCipher, type Qcow2Cipher } from './readCipher.ts';
import { clusterType, decodeCompressed, l1Offset, l2Offset, subclusterState, type ClusterType } from './entries.ts';
import {
  AUTOCLEAR_DATA_FILE_RAW,
  COMPAT_LAZY_REFCOUNTS,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  isQcow2,
  parseHeader,
  type Qcow2Header,
} from './header.ts';
import { findSnapshot, readSnapshotTable, snapshotInfo, type Qcow2Snapshot } from './snapshots.ts';
import { readInto, sectorRead, type HostRead } from '../../image/readPlan.ts';
import { pushMerged } from '../../image/extents.ts';
import { BoundedCache } from '../../io/boundedCache.ts';
import { infoBasics, setBackingInfo } from '../../image/info.ts';

/** A sector-widened host read of encrypted data: `keep` bytes from `skip` are the caller's. */
/** How much L2 table data to keep cached: bounded in bytes, whatever the cluster size. */
const L2_CACHE_BYTES = 16 * 1024 * 1024;

/** One guest cluster's mapping, as the L2 entry (and extended-L2 bitmap) describe it. */
export interface ClusterMapping {
  type: ClusterType;
  entry: bigint;
  bitmap: bigint;
}

/**
 * An opened qcow2 file: header, the L1 table in use (active or a snapshot's), cached L2 tables.
 * Reads coalesce contiguous host ranges and decompress compressed clusters in one batch, so a
 * caller reading megabytes at a time issues few, large reads.
 */
export class Qcow2Device implements BlockDevice {
  readonly format = 'qcow2';
  readonly virtualSize: number;
  readonly clusterSize: number;
  readonly l2Entries: number;
  private readonly l2Cache: BoundedCache<BigUint64Array>;
  private lastCompressed: { index: number; data: Uint8Array } | undefined;

  private constructor(
    readonly src: ByteSource,
    readonly header: Qcow2Header,
    readonly l1: BigUint64Array,
    readonly snapshots: Qcow2Snapshot[],
    /** Bytes the snapshot table occupies (entries padded to 8). */
    readonly snapshotTableBytes: number,
    readonly snapshot: Qcow2Snapshot | undefined,
    /** Where data clusters live: the image itself, or an external data file. */
    readonly dataSrc: ByteSource,
    private readonly ctx: OpenContext,
    private readonly cipher: Qcow2Cipher | undefined,
  ) {
    this.clusterSize = header.clusterSize;
    this.l2Entries = header.clusterSize / (header.extendedL2 ? 16 : 8);
    this.virtualSize = snapshot?.diskSize ?? header.size;
    this.l2Cache = new BoundedCache(Math.max(4, Math.floor(L2_CACHE_BYTES / header.clusterSize)));
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<Qcow2Device> {
    const head = await src.read(0, Math.min(src.size, 2 * 1024 * 1024));
    if (!isQcow2(head)) throw new NotThisFormatError(src.name, 'not a qcow2 image');
    const h = parseHeader(
      src.name,
      head.subarray(0, Math.min(head.length, 2 ** new DataView(head.buffer, head.byteOffset).getUint32(20))),
      src.size,
    );
    const { snapshots, tableBytes } = h.nbSnapshots
      ? await readSnapshotTable(src.name, (o, l) => src.read(o, l), h.snapshotsOffset, h.nbSnapshots, h.clusterSize, h.version)
      : { snapshots: [] as Qcow2Snapshot[], tableBytes: 0 };
    let snapshot: Qcow2Snapshot | undefined;
    let l1Size = h.l1Size;
    let l1Off = h.l1TableOffset;
    if (ctx.snapshot) {
      snapshot = findSnapshot(snapshots, ctx.snapshot);
      if (!snapshot) {
        const has = snapshots.map((s) => s.name).join(', ') || 'none';
        throw new InvalidArgumentError(`no snapshot "${ctx.snapshot.name ?? ctx.snapshot.id}" (has: ${has})`, src.name);
      }
      l1Size = snapshot.l1Size;
      l1Off = snapshot.l1TableOffset;
    }
    const l1 = l1Size ? readBig64Table(await readExact(src, l1Off, l1Size * 8), l1Size) : new BigUint64Array(0);
    let dataSrc = src;
    if (h.incompatible & INCOMPAT_DATA_FILE) {
      if (!h.dataFile) throw new CorruptImageError(src.name, 'external data file bit set but no data file name');
      if (!ctx.resolver) throw new CorruptImageError(src.name, `external data file "${h.dataFile}" cannot be opened here`);
      dataSrc = await ctx.resolver.open(h.dataFile, src.name);
    }
    let cipher: Qcow2Cipher | undefined;
    try {
      cipher = await openCipher(src.name, h, src, ctx.password, ctx.codecs);
    } catch (e) {
      if (dataSrc !== src) await dataSrc.close?.();
      throw e;
    }
    return new Qcow2Device(src, h, l1, snapshots, tableBytes, snapshot, dataSrc, ctx, cipher);
  }

  get filename(): string {
    return this.src.name;
  }

  get backingRef() {
    const h = this.header;
    return h.backingFile ? { name: h.backingFile, format: h.backingFormat } : undefined;
  }

  /** The byte size of guest space one L2 table maps. */
  get l2Span(): number {
    return this.l2Entries * this.clusterSize;
  }

  get subclusterSize(): number {
    return this.header.extendedL2 ? this.clusterSize / 32 : this.clusterSize;
  }

  async l2Table(offset: number): Promise<BigUint64Array> {
    return this.l2Cache.getOrLoad(offset, async () => {
      if (offset % this.clusterSize !== 0)
        throw new CorruptImageError(this.src.name, `L2 table offset 0x${offset.toString(16)} is not cluster aligned`);
      return readBig64Table(await readExact(this.src, offset, this.clusterSize), this.clusterSize / 8);
    });
  }

  /** Mapping of guest cluster `index`. */
  async mapping(index: number): Promise<ClusterMapping> {
    const l1Index = Math.floor(index / this.l2Entries);
    const l1e = l1Index < this.l1.length ? this.l1[l1Index]! : 0n;
    const l2Off = l1Offset(l1e);
    if (!l2Off) return { type: 'unallocated', entry: 0n, bitmap: 0n };
    const table = await this.l2Table(l2Off);
    const i = index % this.l2Entries;
    const ext = this.header.extendedL2;
    const entry = table[ext ? 2 * i : i]!;
    const bitmap = ext ? table[2 * i + 1]! : 0n;
    return { type: clusterType(entry, this.header.version, ext, this.dataSrc !== this.src), entry, bitmap };
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    let pos = from;
    while (pos < to) {
      const l1Index = Math.floor(pos / this.l2Span);
      const spanEnd = Math.min(to, (l1Index + 1) * this.l2Span);
      const l2Off = l1Index < this.l1.length ? l1Offset(this.l1[l1Index]!) : 0;
      if (!l2Off) {
        // A missing L2 table: the whole span it would map is unallocated, without visiting it.
        yield { offset: pos, length: spanEnd - pos, kind: 'unallocated' };
      } else {
        // One table at a time, walked synchronously: per-cluster awaits would dominate big disks.
        yield* this.tableExtents(await this.l2Table(l2Off), l1Index, pos, spanEnd);
      }
      pos = spanEnd;
    }
  }

  private tableExtents(table: BigUint64Array, l1Index: number, from: number, to: number): Extent[] {
    const cs = this.clusterSize;
    const ext = this.header.extendedL2;
    const external = this.dataSrc !== this.src;
    const out: Extent[] = [];
    for (let pos = from; pos < to;) {
      const index = Math.floor(pos / cs);
      const i = index - l1Index * this.l2Entries;
      const entry = table[ext ? 2 * i : i]!;
      const m: ClusterMapping = {
        type: clusterType(entry, this.header.version, ext, external),
        entry,
        bitmap: ext ? table[2 * i + 1]! : 0n,
      };
      const clusterStart = index * cs;
      const clusterEnd = Math.min(clusterStart + cs, to);
      if (ext && (m.type === 'normal' || m.type === 'unallocated')) {
        for (const e of this.subclusterExtents(m, clusterStart, pos, clusterEnd)) pushMerged(out, e);
      } else pushMerged(out, this.clusterExtent(m, clusterStart, pos, clusterEnd));
      pos = clusterEnd;
    }
    return out;
  }

  private clusterExtent(m: ClusterMapping, clusterStart: number, from: number, to: number): Extent {
    const base = { offset: from, length: to - from };
    switch (m.type) {
      case 'unallocated':
        return { ...base, kind: 'unallocated' };
      case 'zero-plain':
        return { ...base, kind: 'zero' };
      case 'zero-alloc':
        return { ...base, kind: 'zero', hostOffset: l2Offset(m.entry) + (from - clusterStart) };
      case 'compressed':
        return { ...base, kind: 'data', compressed: true };
      case 'normal':
        return this.dataExtent(base, l2Offset(m.entry) + (from - clusterStart));
    }
  }

  private dataExtent(base: { offset: number; length: number }, hostOffset: number): Extent {
    const e: Extent = { ...base, kind: 'data' };
    // Encrypted bytes are not the guest's bytes, so a map must not point at them.
    if (!this.header.cryptMethod) e.hostOffset = hostOffset;
    if (this.dataSrc !== this.src) e.hostFile = this.dataSrc.name;
    return e;
  }

  private *subclusterExtents(m: ClusterMapping, clusterStart: number, from: number, to: number): Iterable<Extent> {
    const sub = this.subclusterSize;
    let pos = from;
    while (pos < to) {
      const i = Math.floor((pos - clusterStart) / sub);
      const end = Math.min(clusterStart + (i + 1) * sub, to);
      const state = subclusterState(m.bitmap, i);
      const base = { offset: pos, length: end - pos };
      if (state === 'invalid')
        throw new CorruptImageError(this.src.name, `cluster at guest offset ${clusterStart} has a subcluster both allocated and zero`);
      if (state === 'data') {
        if (m.type !== 'normal')
          throw new CorruptImageError(this.src.name, `unallocated cluster at guest offset ${clusterStart} has allocated subclusters`);
        yield this.dataExtent(base, l2Offset(m.entry) + (pos - clusterStart));
      } else yield { ...base, kind: state };
      pos = end;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const end = Math.min(offset + length, this.virtualSize);
    const plain: HostRead[] = [];
    const compressed: { index: number; outPos: number; start: number; len: number; entry: bigint }[] = [];
    for await (const run of this.extents(offset, end)) {
      if (run.kind !== 'data') continue;
      for (const e of this.perCluster(run)) {
        if (e.compressed) {
          const index = Math.floor(e.offset / this.clusterSize);
          const m = await this.mapping(index);
          compressed.push({ index, outPos: e.offset - offset, start: e.offset - index * this.clusterSize, len: e.length, entry: m.entry });
        } else if (this.cipher) {
          // Ciphers work on whole 512-byte sectors: read the sectors around the range, keep the range.
          plain.push(sectorRead(e.hostOffset ?? (await this.hostOffsetOf(e.offset)), e.offset, e.length, e.offset - offset));
        } else {
          plain.push({
            hostOffset: e.hostOffset ?? (await this.hostOffsetOf(e.offset)),
            length: e.length,
            outPos: e.offset - offset,
            guestOffset: e.offset,
          });
        }
      }
    }
    if ((plain.length || compressed.length) && this.header.cryptMethod && !this.cipher) throw new NeedsPasswordError(this.src.name);
    await readInto(this.dataSrc, plain, out, this.cipher);
    for (const c of compressed) {
      const data = await this.decompressCluster(c.index, c.entry);
      out.set(data.subarray(c.start, c.start + c.len), c.outPos);
    }
    return out;
  }

  /** Extents without a host offset (compressed, encrypted) are looked up cluster by cluster. */
  private *perCluster(e: Extent): Iterable<Extent> {
    if (e.hostOffset !== undefined) {
      yield e;
      return;
    }
    const cs = this.clusterSize;
    for (let pos = e.offset; pos < e.offset + e.length;) {
      const end = Math.min((Math.floor(pos / cs) + 1) * cs, e.offset + e.length);
      yield { ...e, offset: pos, length: end - pos };
      pos = end;
    }
  }

  /** Host offset of a guest byte in a normal cluster (only needed for encrypted images). */
  private async hostOffsetOf(guest: number): Promise<number> {
    const index = Math.floor(guest / this.clusterSize);
    const m = await this.mapping(index);
    return l2Offset(m.entry) + (guest - index * this.clusterSize);
  }

  async decompressCluster(index: number, entry: bigint): Promise<Uint8Array> {
    if (this.lastCompressed?.index === index) return this.lastCompressed.data;
    const ref = decodeCompressed(entry, this.header.clusterBits);
    if (ref.offset >= this.src.size) {
      throw new CorruptImageError(
        this.src.name,
        `compressed cluster at guest offset ${index * this.clusterSize} points past the end of the file`,
      );
    }
    const raw = await this.src.read(ref.offset, ref.maxLength);
    let data: Uint8Array;
    try {
      data =
        this.header.compressionType === 1
          ? await this.ctx.codecs.zstdDecompress(raw, this.clusterSize)
          : await this.ctx.codecs.inflateRaw(raw, this.clusterSize);
    } catch (e) {
      if (!(e instanceof CodecError) && !(e instanceof Error)) throw e;
      throw new CorruptImageError(
        this.src.name,
        `compressed cluster at guest offset ${index * this.clusterSize} cannot be decompressed: ${(e as Error).message}`,
      );
    }
    this.lastCompressed = { index, data };
    return data;
  }

  info(): ImageInfo {
    const h = this.header;
    const data: Record<string, unknown> = {
      compat: h.version === 2 ? '0.10' : '1.1',
      'compression-type': h.compressionType === 1 ? 'zstd' : 'zlib',
    };
    if (h.version >= 3) data['lazy-refcounts'] = !!(h.compatible & COMPAT_LAZY_REFCOUNTS);
    data['refcount-bits'] = 2 ** h.refcountOrder;
    if (h.dataFile) {
      data['data-file'] = h.dataFile;
      data['data-file-raw'] = !!(h.autoclear & AUTOCLEAR_DATA_FILE_RAW);
    }
    if (this.cipher) data.encrypt = this.cipher.info();
    if (h.version >= 3) {
      data.corrupt = !!(h.incompatible & INCOMPAT_CORRUPT);
      data['extended-l2'] = h.extendedL2;
    }
    const info: ImageInfo = {
      ...infoBasics(this.src, 'qcow2', this.virtualSize),
      'cluster-size': this.clusterSize,
      'format-specific': { type: 'qcow2', data },
      'dirty-flag': !!(h.incompatible & INCOMPAT_DIRTY),
    };
    if (this.snapshots.length) info.snapshots = this.snapshots.map(snapshotInfo);
    if (h.backingFile) {
      setBackingInfo(info, this.src.name, h.backingFile, h.backingFormat);
    }
    if (h.cryptMethod) info.encrypted = true;
    return info;
  }

  async close(): Promise<void> {
    this.l2Cache.clear();
    await this.src.close?.();
    if (this.dataSrc !== this.src) await this.dataSrc.close?.();
  }
}
