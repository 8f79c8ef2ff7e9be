import { readExact, readPadded, type ByteSource } from '../../io/bytes.ts';
import { BoundedCache } from '../../io/boundedCache.ts';
import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { MAX_SAFE_OFFSET } from '../../io/int64.ts';
import { readU32Table } from '../../io/struct.ts';
import { DEFAULT_LIMITS, type BlockDevice, type Extent, type ImageInfo, type OpenContext } from '../../image/types.ts';
import { infoBasics } from '../../image/info.ts';
import { BOCHS_HEADER_SIZE, BOCHS_UNALLOCATED, parseBochsHeader, type BochsHeader } from './layout.ts';

const SECTOR = 512;

/**
 * An opened Bochs growing image. Reads walk the guest range sector by sector as QEMU's
 * seek_to_sector does (extent from the catalog, present bit from that extent's bitmap), and
 * fetch runs of sectors that lie next to each other in the file with one host read.
 */
export class BochsDevice implements BlockDevice {
  readonly format = 'bochs';
  readonly virtualSize: number;
  private readonly bitmaps = new BoundedCache<Uint8Array>(64);

  private constructor(
    readonly src: ByteSource,
    readonly header: BochsHeader,
    private readonly catalog: Uint32Array,
  ) {
    this.virtualSize = header.virtualSize;
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<BochsDevice> {
    const header = parseBochsHeader(src.name, await readExact(src, 0, BOCHS_HEADER_SIZE));
    const bytes = header.catalogEntries * 4;
    const limit = (ctx.limits ?? DEFAULT_LIMITS).maxTableBytes;
    if (bytes > limit) throw new UnsupportedError(src.name, `bochs catalog of ${bytes} bytes is larger than the table limit ${limit}`);
    const raw = await readExact(src, header.catalogOffset, bytes);
    return new BochsDevice(src, header, readU32Table(raw, header.catalogEntries, true));
  }

  get filename(): string {
    return this.src.name;
  }

  /** Where extent `index`'s bitmap starts in the file, or undefined when it is not allocated. */
  private extentBase(index: number): number | undefined {
    const h = this.header;
    if (index >= this.catalog.length)
      throw new CorruptImageError(this.src.name, `bochs extent ${index} is past the catalog (${this.catalog.length} entries)`);
    const entry = this.catalog[index]!;
    if (entry === BOCHS_UNALLOCATED) return undefined;
    const base = h.dataOffset + SECTOR * entry * (h.extentBlocks + h.bitmapBlocks);
    if (base + SECTOR * (h.bitmapBlocks + h.extentBlocks) > MAX_SAFE_OFFSET) {
      throw new CorruptImageError(
        this.src.name,
        `bochs catalog entry ${index} (${entry}) points beyond the 2^53 limit this program can address`,
      );
    }
    return base;
  }

  /** The bitmap bytes QEMU may consult for an extent (one bit per sector it can hold). */
  private bitmap(index: number, base: number): Promise<Uint8Array> {
    const bytes = Math.ceil(Math.ceil(this.header.extentSize / SECTOR) / 8);
    // Bytes past the end of the file read as zeros (not present), as in QEMU.
    return this.bitmaps.getOrLoad(index, () => readPadded(this.src, base, bytes));
  }

  /** Host offset of a guest sector, or undefined when it reads as zeros. */
  private async sectorAt(sector: number): Promise<number | undefined> {
    const h = this.header;
    const offset = sector * SECTOR;
    const index = Math.floor(offset / h.extentSize);
    const inExtent = Math.floor((offset % h.extentSize) / SECTOR);
    const base = this.extentBase(index);
    if (base === undefined) return undefined;
    const bits = await this.bitmap(index, base);
    if (!((bits[inExtent >>> 3]! >>> (inExtent & 7)) & 1)) return undefined;
    return base + SECTOR * (h.bitmapBlocks + inExtent);
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    const es = this.header.extentSize;
    let at = from;
    while (at < to) {
      // Extents of the catalog may start mid-sector when the extent size is no multiple of 512;
      // a range belongs to the extent of its first sector, as QEMU reads it.
      const index = Math.floor((Math.floor(at / SECTOR) * SECTOR) / es);
      let end = Math.min(to, Math.max(at + 1, Math.ceil(((index + 1) * es) / SECTOR) * SECTOR));
      end = Math.min(end, to);
      const kind = this.extentBase(index) === undefined ? 'unallocated' : 'data';
      yield { offset: at, length: end - at, kind };
      at = end;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const end = Math.min(offset + length, this.virtualSize);
    if (offset >= end) return out;
    const first = Math.floor(offset / SECTOR);
    const last = Math.floor((end - 1) / SECTOR);
    // Runs of sectors contiguous in the file: [guest sector, host offset, count].
    let run: [number, number, number] | undefined;
    const flush = async () => {
      if (!run) return;
      const [s, host, n] = run;
      run = undefined;
      const data = await readPadded(this.src, host, n * SECTOR);
      const gStart = s * SECTOR;
      const from = Math.max(offset, gStart);
      const to = Math.min(end, gStart + n * SECTOR);
      out.set(data.subarray(from - gStart, to - gStart), from - offset);
    };
    for (let s = first; s <= last; s++) {
      const host = await this.sectorAt(s);
      if (host === undefined) {
        await flush();
        continue;
      }
      if (run && run[1] + run[2] * SECTOR === host && run[2] < 16384) run[2]++;
      else {
        await flush();
        run = [s, host, 1];
      }
    }
    await flush();
    return out;
  }

  info(): ImageInfo {
    const h = this.header;
    return {
      ...infoBasics(this.src, 'bochs', this.virtualSize),
      extra: { version: h.version === 0x10000 ? 1 : 2, 'extent-size': h.extentSize, 'catalog-entries': h.catalogEntries },
    };
  }

  async close(): Promise<void> {
    this.bitmaps.clear();
    await this.src.close?.();
  }
}
