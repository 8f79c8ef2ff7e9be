import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { BoundedCache } from '../../io/boundedCache.ts';
import { readBig64Table, utf8Decode } from '../../io/struct.ts';
import { toSafeNumber } from '../../io/int64.ts';
import { unitExtents } from '../../image/extents.ts';
import { readDataExtents } from '../../image/readPlan.ts';
import { DEFAULT_LIMITS, type BackingRef, type BlockDevice, type Extent, type ImageInfo, type OpenContext } from '../../image/types.ts';
import { infoBasics, setBackingInfo } from '../../image/info.ts';
import {
  parseQedHeader,
  qedFileEnd,
  QED_F_BACKING_FILE,
  QED_F_BACKING_FORMAT_NO_PROBE,
  QED_F_NEED_CHECK,
  QED_HEADER_BYTES,
  QED_ZERO_CLUSTER,
  tableEntries,
  validClusterOffset,
  validTableOffset,
  type QedHeader,
} from './header.ts';

export interface QedMeta {
  header: QedHeader;
  l1: BigUint64Array;
  backing?: BackingRef;
}

/** Header, backing file name and L1 table; table sizes checked against the limit before reading. */
export async function readQedMeta(src: ByteSource, ctx: OpenContext): Promise<QedMeta> {
  const header = parseQedHeader(src.name, await readExact(src, 0, Math.min(src.size, QED_HEADER_BYTES)), src.size);
  const limits = ctx.limits ?? DEFAULT_LIMITS;
  const tableBytes = header.tableSize * header.clusterSize;
  if (tableBytes > limits.maxTableBytes)
    throw new UnsupportedError(src.name, `QED tables of ${tableBytes} bytes are larger than the ${limits.maxTableBytes}-byte limit`);
  const l1 = readBig64Table(await readExact(src, header.l1TableOffset, tableBytes), tableBytes / 8, true);
  let backing: BackingRef | undefined;
  if (header.features & QED_F_BACKING_FILE) {
    const nameBytes = await readExact(src, header.backingNameOffset, header.backingNameSize);
    const name = utf8Decode(nameBytes);
    if (!name) throw new CorruptImageError(src.name, 'QED backing file name is empty');
    backing = { name, format: header.features & QED_F_BACKING_FORMAT_NO_PROBE ? 'raw' : undefined };
  }
  return { header, l1, backing };
}

/**
 * A QED image: a two-level table (L1 → L2 → cluster). L2 entry 0 is unallocated (the backing
 * file's data, or zeros), 1 is a zero cluster.
 */
export class QedDevice implements BlockDevice {
  readonly format = 'qed';
  readonly virtualSize: number;
  readonly backingRef: BackingRef | undefined;
  private readonly entries: number;
  private readonly l2Cache: BoundedCache<BigUint64Array>;

  private constructor(
    readonly src: ByteSource,
    readonly header: QedHeader,
    readonly l1: BigUint64Array,
    backing: BackingRef | undefined,
  ) {
    this.virtualSize = header.imageSize;
    this.backingRef = backing;
    this.entries = tableEntries(header.clusterSize, header.tableSize);
    // Up to 16 tables, but no more than 64 MiB of them (one table may itself be up to the table limit).
    this.l2Cache = new BoundedCache(Math.max(1, Math.min(16, Math.floor((64 * 1024 * 1024) / (header.clusterSize * header.tableSize)))));
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<QedDevice> {
    const { header, l1, backing } = await readQedMeta(src, ctx);
    return new QedDevice(src, header, l1, backing);
  }

  get filename(): string {
    return this.src.name;
  }

  private async l2(index: number): Promise<BigUint64Array | undefined> {
    const raw = this.l1[index] ?? 0n;
    if (!raw) return undefined;
    const h = this.header;
    const offset = toSafeNumber(raw, 'QED L2 table offset');
    if (!validTableOffset(h, offset, qedFileEnd(h, this.src.size)))
      throw new CorruptImageError(this.src.name, `QED L1 entry ${index} (${offset}) is not a valid table offset`);
    return this.l2Cache.getOrLoad(index, async () =>
      readBig64Table(await readExact(this.src, offset, h.tableSize * h.clusterSize), this.entries, true),
    );
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    const cs = this.header.clusterSize;
    const span = cs * this.entries;
    let pos = from;
    while (pos < to) {
      const index = Math.floor(pos / span);
      const end = Math.min((index + 1) * span, to);
      const table = await this.l2(index);
      if (!table) {
        // No L2 table: its whole range in one extent, never cluster by cluster.
        yield { offset: pos, length: end - pos, kind: 'unallocated' };
      } else {
        yield* unitExtents(pos, end, cs, (i) => {
          const raw = table[i % this.entries]!;
          if (raw === 0n) return { kind: 'unallocated' };
          if (raw === BigInt(QED_ZERO_CLUSTER)) return { kind: 'zero' };
          const off = toSafeNumber(raw, 'QED L2 entry');
          if (!validClusterOffset(this.header, off, qedFileEnd(this.header, this.src.size)))
            throw new CorruptImageError(this.src.name, `QED cluster ${i} has an invalid offset ${off}`);
          return { kind: 'data', hostOffset: off };
        });
      }
      pos = end;
    }
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return readDataExtents(this.src, this.extents(offset, Math.min(offset + length, this.virtualSize)), offset, length);
  }

  info(): ImageInfo {
    const h = this.header;
    const info: ImageInfo = {
      ...infoBasics(this.src, 'qed', this.virtualSize),
      'cluster-size': h.clusterSize,
    };
    if (this.backingRef) {
      setBackingInfo(info, this.src.name, this.backingRef.name, this.backingRef.format);
    }
    // qemu-img 7.2 prints false even when the need-check feature is set (it opens read-only).
    info['dirty-flag'] = false;
    info.extra = { 'qed-table-size': h.tableSize, 'qed-need-check': !!(h.features & QED_F_NEED_CHECK) };
    return info;
  }

  async close(): Promise<void> {
    await this.src.close?.();
  }
}
