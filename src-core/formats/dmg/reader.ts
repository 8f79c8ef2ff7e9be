import { bunzip2Sync } from '../../codecs/bzip2.ts';
import { readExact, readPadded, type ByteSource } from '../../io/bytes.ts';
import { BoundedCache } from '../../io/boundedCache.ts';
import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { Struct } from '../../io/struct.ts';
import { DEFAULT_LIMITS, type BlockDevice, type Extent, type ImageInfo, type OpenContext } from '../../image/types.ts';
import { infoBasics } from '../../image/info.ts';
import { adcDecode } from './adc.ts';
import {
  CHUNK_ADC,
  CHUNK_BZIP2,
  CHUNK_IGNORE,
  CHUNK_LZFSE,
  CHUNK_RAW,
  CHUNK_ZERO,
  CHUNK_ZLIB,
  DMG_XML_MAX,
  KOLY_SIZE,
  describeType,
  findKoly,
  parseKoly,
  plistData,
  readMish,
  type Chunk,
  type Koly,
} from './layout.ts';

const SECTOR = 512;

/** Where the koly trailer starts, searched as QEMU does (the last 515 bytes), or -1. */
export async function locateKoly(src: ByteSource): Promise<number> {
  if (src.size < KOLY_SIZE) return -1;
  const start = src.size > 511 + 512 ? src.size - 511 - 512 : 0;
  const tail = await src.read(start, Math.min(515, src.size));
  return findKoly(tail, start);
}

/**
 * An opened DMG: read-only, chunk by chunk. The chunk table is sorted by sector (QEMU searches
 * it by bisection); the last two decoded chunks are kept (each at most 64 MiB by QEMU's limits).
 */
export class DmgDevice implements BlockDevice {
  readonly format = 'dmg';
  readonly virtualSize: number;
  private readonly decoded = new BoundedCache<Uint8Array>(2);

  private constructor(
    readonly src: ByteSource,
    readonly koly: Koly,
    private readonly chunks: Chunk[],
    private readonly ctx: OpenContext,
  ) {
    this.virtualSize = koly.sectorCount * SECTOR;
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<DmgDevice> {
    const file = src.name;
    if (src.size < KOLY_SIZE) throw new CorruptImageError(file, 'dmg file must be at least 512 bytes long');
    const at = await locateKoly(src);
    if (at < 0) throw new CorruptImageError(file, 'could not locate the UDIF (koly) trailer of this dmg');
    const koly = parseKoly(file, await readPadded(src, at, KOLY_SIZE), at);
    const limit = (ctx.limits ?? DEFAULT_LIMITS).maxTableBytes;
    const chunks: Chunk[] = [];
    if (koly.rsrcLength) {
      await readResourceFork(src, koly, chunks, limit);
    } else {
      if (koly.xmlLength > Math.min(DMG_XML_MAX, limit))
        throw new UnsupportedError(
          file,
          `dmg XML plist of ${koly.xmlLength} bytes is larger than the ${Math.min(DMG_XML_MAX, limit)} allowed`,
        );
      const xml = await readExact(src, koly.xmlOffset, koly.xmlLength);
      for (const mish of plistData(file, xml)) readMish(file, mish, koly.dataForkOffset, chunks);
    }
    chunks.sort((a, b) => a.sector - b.sector);
    return new DmgDevice(src, koly, chunks, ctx);
  }

  get filename(): string {
    return this.src.name;
  }

  /** The chunk holding `sector` (search_chunk), or -1. */
  private find(sector: number): number {
    const c = this.chunks;
    let lo = 0;
    let hi = c.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid]!.sector > sector) hi = mid - 1;
      else if (c[mid]!.sector + c[mid]!.sectors > sector) return mid;
      else lo = mid + 1;
    }
    return -1;
  }

  /** Where the first chunk starting after `sector` starts (bisection: gaps can be many). */
  private nextStart(sector: number): number {
    const c = this.chunks;
    let lo = 0;
    let hi = c.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid]!.sector > sector) hi = mid;
      else lo = mid + 1;
    }
    return lo < c.length ? c[lo]!.sector : Infinity;
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    let at = from;
    while (at < to) {
      const sector = Math.floor(at / SECTOR);
      const i = this.find(sector);
      let end: number;
      let e: Extent;
      if (i < 0) {
        // Sectors no chunk covers: QEMU fails reading them, and so will we.
        end = Math.min(to, this.nextStart(sector) * SECTOR);
        e = { offset: at, length: end - at, kind: 'data' };
      } else {
        const c = this.chunks[i]!;
        end = Math.min(to, (c.sector + c.sectors) * SECTOR);
        const zero = c.type === CHUNK_ZERO || c.type === CHUNK_IGNORE;
        e = { offset: at, length: end - at, kind: zero ? 'zero' : 'data' };
        if (c.type === CHUNK_RAW && c.length >= c.sectors * SECTOR) e.hostOffset = c.offset + (at - c.sector * SECTOR);
        else if (!zero) e.compressed = true;
      }
      yield e;
      at = end;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const end = Math.min(offset + length, this.virtualSize);
    let at = offset;
    while (at < end) {
      const sector = Math.floor(at / SECTOR);
      const i = this.find(sector);
      if (i < 0) throw new CorruptImageError(this.src.name, `dmg: no chunk holds sector ${sector}`);
      const c = this.chunks[i]!;
      const chunkStart = c.sector * SECTOR;
      const stop = Math.min(end, (c.sector + c.sectors) * SECTOR);
      if (c.type !== CHUNK_ZERO && c.type !== CHUNK_IGNORE) {
        const data = await this.decoded.getOrLoad(i, () => this.decode(i, c));
        out.set(data.subarray(at - chunkStart, stop - chunkStart), at - offset);
      }
      at = stop;
    }
    return out;
  }

  /** dmg_read_chunk: a chunk's bytes, exactly sectors·512 of them. */
  private async decode(i: number, c: Chunk): Promise<Uint8Array> {
    const file = this.src.name;
    const size = c.sectors * SECTOR;
    const where = `dmg chunk ${i} (${describeType(c.type)}, sectors ${c.sector}+${c.sectors})`;
    if (c.type === CHUNK_LZFSE) throw new UnsupportedError(file, `${where} is lzfse-compressed, which DiskFerry cannot decode yet`);
    const stored = await readExact(this.src, c.offset, c.length);
    if (c.type === CHUNK_RAW) {
      // QEMU copies the stored bytes; sectors past them are zeros here (QEMU leaves stale data).
      const out = new Uint8Array(size);
      out.set(stored.subarray(0, size));
      return out;
    }
    if (c.type === CHUNK_ADC) return adcDecode(file, where, stored, size);
    let data: Uint8Array;
    try {
      data =
        c.type === CHUNK_ZLIB
          ? await this.ctx.codecs.zlibInflate(stored, size)
          : c.type === CHUNK_BZIP2
            ? bunzip2Sync(stored, size)
            : new Uint8Array(0);
    } catch (e) {
      throw new CorruptImageError(file, `${where} cannot be decompressed: ${(e as Error).message}`);
    }
    if (data.length !== size) throw new CorruptImageError(file, `${where} decompresses to ${data.length} bytes, not ${size}`);
    return data;
  }

  info(): ImageInfo {
    const counts: Record<string, number> = {};
    for (const c of this.chunks) counts[describeType(c.type)] = (counts[describeType(c.type)] ?? 0) + 1;
    return {
      ...infoBasics(this.src, 'dmg', this.virtualSize),
      extra: { chunks: this.chunks.length, 'chunk-types': counts, table: this.koly.rsrcLength ? 'resource fork' : 'XML plist' },
    };
  }

  async close(): Promise<void> {
    this.decoded.clear();
    await this.src.close?.();
  }
}

/** dmg_read_resource_fork: a run of length-prefixed resources, each possibly a mish block. */
async function readResourceFork(src: ByteSource, koly: Koly, chunks: Chunk[], limit: number): Promise<void> {
  const file = src.name;
  const begin = koly.rsrcOffset;
  const head = new Struct(await readExact(src, begin, 12));
  const dataOffset = head.u32(0);
  const count = head.u32(8);
  if (dataOffset > koly.rsrcLength) throw new CorruptImageError(file, 'dmg resource fork: data offset past its end');
  if (count === 0 || dataOffset + count > koly.rsrcLength) throw new CorruptImageError(file, 'dmg resource fork: bad data length');
  let offset = begin + dataOffset;
  const end = offset + count;
  let total = 0;
  while (offset < end) {
    const len = new Struct(await readExact(src, offset, 4)).u32(0);
    if (len === 0 || len > end - offset)
      throw new CorruptImageError(file, `dmg resource fork: resource at ${offset} has a bad length ${len}`);
    total += len;
    if (total > limit) throw new UnsupportedError(file, `dmg resource fork holds more than the ${limit} bytes of tables allowed`);
    offset += 4;
    readMish(file, await readExact(src, offset, len), koly.dataForkOffset, chunks);
    offset += len;
  }
}
