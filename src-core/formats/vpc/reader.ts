import { readExact, readPadded, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, NotThisFormatError, UnsupportedError } from '../../io/errors.ts';
import { readU32Table } from '../../io/struct.ts';
import { uuidToString } from '../../io/guid.ts';
import { planReads, type HostRead } from '../../image/readPlan.ts';
import { DEFAULT_LIMITS, type BackingRef, type BlockDevice, type Extent, type ImageInfo, type OpenContext } from '../../image/types.ts';
import { fileBackedExtents } from '../../image/extents.ts';
import { BAT_UNUSED, bitmapBytes, DYNAMIC_HEADER_SIZE, parseDynamicHeader, type DynamicHeader } from './dynamicHeader.ts';
import {
  checkSize,
  DISK_DIFFERENCING,
  DISK_DYNAMIC,
  DISK_FIXED,
  FOOTER_SIZE,
  hasCookie,
  parseFooter,
  parseSizeCalc,
  sizeRule,
  type SizeCalc,
  VHD_EPOCH_MS,
  type VhdFooter,
} from './footer.ts';
import { findParent } from './parent.ts';
import { BoundedCache } from '../../io/boundedCache.ts';
import { infoBasics, setBackingInfo } from '../../image/info.ts';

/** Sector bitmaps kept in memory (512 B each for 2 MiB blocks). */
const BITMAP_CACHE_ENTRIES = 4096;

const DISK_TYPE_NAMES: Record<number, string> = { [DISK_FIXED]: 'fixed', [DISK_DYNAMIC]: 'dynamic', [DISK_DIFFERENCING]: 'differencing' };

interface Dynamic {
  header: DynamicHeader;
  bat: Uint32Array;
  bitmapSize: number;
}

/**
 * A VHD (qemu's "vpc"): fixed (data then footer), dynamic (BAT of blocks, each a sector bitmap
 * and data) or differencing (a dynamic disk whose clear bitmap bits read from the parent).
 */
export class VpcDevice implements BlockDevice {
  readonly format = 'vpc';
  readonly virtualSize: number;
  readonly sizeSource: 'current-size' | 'chs';
  readonly backingRef: BackingRef | undefined;
  private readonly bitmaps = new BoundedCache<Uint8Array>(BITMAP_CACHE_ENTRIES);

  private constructor(
    readonly src: ByteSource,
    readonly footer: VhdFooter,
    private readonly dyn: Dynamic | undefined,
    parent: string | undefined,
    sizeCalc: SizeCalc | undefined,
  ) {
    const rule = sizeRule(footer, sizeCalc);
    this.virtualSize = rule.size;
    this.sizeSource = rule.source;
    this.backingRef = parent ? { name: parent, format: 'vpc' } : undefined;
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<VpcDevice> {
    if (src.size < FOOTER_SIZE) throw new NotThisFormatError(src.name, 'file is too small to be a VHD');
    const head = await readExact(src, 0, FOOTER_SIZE);
    const tail = await readExact(src, src.size - FOOTER_SIZE, FOOTER_SIZE);
    // Like QEMU, prefer the copy at offset 0 (dynamic disks); a fixed disk has only the trailing one.
    // Both copies are checked when both exist, so a damaged one is reported rather than ignored.
    let footer: VhdFooter;
    if (hasCookie(head)) {
      footer = parseFooter(src.name, head, 'at offset 0');
      if (hasCookie(tail) && src.size > FOOTER_SIZE) parseFooter(src.name, tail, 'at the end of the file');
    } else if (hasCookie(tail)) {
      footer = parseFooter(src.name, tail, 'at the end of the file');
    } else throw new NotThisFormatError(src.name, 'not a VHD image (no "conectix" footer at the start or the end)');
    const type = footer.diskType;
    if (!DISK_TYPE_NAMES[type])
      throw new UnsupportedError(src.name, `VHD disk type ${type} is not fixed (2), dynamic (3) or differencing (4)`);
    const sizeCalc = parseSizeCalc(src.name, ctx.driverOptions);
    const { size } = sizeRule(footer, sizeCalc);
    checkSize(src.name, size);
    if (type === DISK_FIXED) return new VpcDevice(src, footer, undefined, undefined, sizeCalc);

    if (footer.dataOffset < 0) throw new CorruptImageError(src.name, `${DISK_TYPE_NAMES[type]} VHD footer has no dynamic header offset`);
    const header = parseDynamicHeader(src.name, await readExact(src, footer.dataOffset, DYNAMIC_HEADER_SIZE));
    const entries = header.maxTableEntries;
    if (entries * header.blockSize < size) {
      throw new CorruptImageError(src.name, `VHD BAT has ${entries} entries of ${header.blockSize} bytes, too few for a ${size}-byte disk`);
    }
    const limits = ctx.limits ?? DEFAULT_LIMITS;
    if (entries * 4 > limits.maxTableBytes)
      throw new UnsupportedError(src.name, `VHD BAT of ${entries} entries is larger than the ${limits.maxTableBytes}-byte limit`);
    const bat = readU32Table(await readExact(src, header.tableOffset, entries * 4), entries);
    const bitmapSize = bitmapBytes(header.blockSize);
    // QEMU refuses a file whose last block does not fit (vpc_open: "The image has been truncated").
    for (let i = 0; i < entries; i++) {
      if (bat[i] === BAT_UNUSED) continue;
      const end = bat[i]! * 512 + bitmapSize + header.blockSize;
      if (end > src.size)
        throw new CorruptImageError(
          src.name,
          `VHD block ${i} ends at ${end}, past the end of the file (${src.size} bytes): the image has been truncated`,
        );
    }
    const parent = type === DISK_DIFFERENCING ? await findParent(src, header, ctx) : undefined;
    return new VpcDevice(src, footer, { header, bat, bitmapSize }, parent, sizeCalc);
  }

  get filename(): string {
    return this.src.name;
  }

  get diskTypeName(): string {
    return DISK_TYPE_NAMES[this.footer.diskType]!;
  }

  private get isDiff(): boolean {
    return this.footer.diskType === DISK_DIFFERENCING;
  }

  /** Bitmap sector of block `index`, or undefined when the block is not allocated. */
  private blockBase(index: number): number | undefined {
    const e = this.dyn!.bat[index];
    return e === undefined || e === BAT_UNUSED ? undefined : e * 512;
  }

  private async bitmap(index: number): Promise<Uint8Array> {
    const hit = this.bitmaps.get(index);
    if (hit) return hit;
    const b = await readExact(this.src, this.blockBase(index)!, this.dyn!.bitmapSize);
    this.remember(index, b);
    return b;
  }

  private remember(index: number, b: Uint8Array): void {
    this.bitmaps.set(index, b);
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    if (from >= to) return;
    if (!this.dyn) {
      const dataEnd = Math.min(to, this.src.size - FOOTER_SIZE);
      yield* fileBackedExtents(this.src, from, dataEnd, 0, true);
      if (to > Math.max(from, dataEnd)) yield { offset: Math.max(from, dataEnd), length: to - Math.max(from, dataEnd), kind: 'zero' };
      return;
    }
    const bs = this.dyn.header.blockSize;
    let pos = from;
    while (pos < to) {
      const index = Math.floor(pos / bs);
      const blockStart = index * bs;
      const end = Math.min(blockStart + bs, to);
      const base = this.blockBase(index);
      if (base === undefined) {
        // Never written: zeros in a dynamic disk (QEMU reports them as zero), the parent's data in a differencing one.
        yield { offset: pos, length: end - pos, kind: this.isDiff ? 'unallocated' : 'zero' };
      } else if (!this.isDiff) {
        yield { offset: pos, length: end - pos, kind: 'data', hostOffset: base + this.dyn.bitmapSize + (pos - blockStart) };
      } else {
        yield* this.bitmapExtents(await this.bitmap(index), base + this.dyn.bitmapSize, blockStart, pos, end);
      }
      pos = end;
    }
  }

  /** Runs of present (bit set) and parent (bit clear) sectors; the bitmap is MSB-first. */
  private *bitmapExtents(bitmap: Uint8Array, dataStart: number, blockStart: number, from: number, to: number): Iterable<Extent> {
    let pos = from;
    while (pos < to) {
      const sector = Math.floor((pos - blockStart) / 512);
      const present = isSet(bitmap, sector);
      let s = sector + 1;
      while (blockStart + s * 512 < to && isSet(bitmap, s) === present) s++;
      const end = Math.min(blockStart + s * 512, to);
      if (present) yield { offset: pos, length: end - pos, kind: 'data', hostOffset: dataStart + (pos - blockStart) };
      else yield { offset: pos, length: end - pos, kind: 'unallocated' };
      pos = end;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const end = Math.min(offset + length, this.virtualSize);
    if (end <= offset) return out;
    if (!this.dyn) {
      const dataEnd = Math.min(end, this.src.size - FOOTER_SIZE);
      if (dataEnd > offset) out.set(await readPadded(this.src, offset, dataEnd - offset));
      return out;
    }
    const bs = this.dyn.header.blockSize;
    const reads: HostRead[] = [];
    const bitmapReads = new Map<HostRead, number>();
    const segments: { index: number; from: number; to: number }[] = [];
    for (let pos = offset; pos < end;) {
      const index = Math.floor(pos / bs);
      const blockStart = index * bs;
      const segEnd = Math.min(blockStart + bs, end);
      const base = this.blockBase(index);
      if (base !== undefined) {
        if (!this.bitmaps.has(index)) {
          // Read next to the data: planReads merges it with the block's first bytes.
          const r: HostRead = { hostOffset: base, length: this.dyn.bitmapSize, outPos: -1 };
          reads.push(r);
          bitmapReads.set(r, index);
        }
        reads.push({ hostOffset: base + this.dyn.bitmapSize + (pos - blockStart), length: segEnd - pos, outPos: pos - offset });
        segments.push({ index, from: pos, to: segEnd });
      }
      pos = segEnd;
    }
    await planReads(this.src, reads, (r, bytes) => {
      const bitmapOf = bitmapReads.get(r);
      if (bitmapOf !== undefined) this.remember(bitmapOf, bytes);
      else out.set(bytes, r.outPos);
    });
    // Sectors whose bit is clear were never written: zeros in a dynamic disk (VHD spec; QEMU
    // ignores the bitmap, but every writer zero-fills new blocks), the parent's in a differencing one.
    for (const seg of segments) {
      const bitmap = await this.bitmap(seg.index);
      const blockStart = seg.index * bs;
      for (let pos = seg.from; pos < seg.to;) {
        const sector = Math.floor((pos - blockStart) / 512);
        const sEnd = Math.min(blockStart + (sector + 1) * 512, seg.to);
        if (!isSet(bitmap, sector)) out.fill(0, pos - offset, sEnd - offset);
        pos = sEnd;
      }
    }
    return out;
  }

  info(): ImageInfo {
    const f = this.footer;
    const info: ImageInfo = {
      ...infoBasics(this.src, 'vpc', this.virtualSize),
      'dirty-flag': false,
    };
    if (this.dyn) info['cluster-size'] = this.dyn.header.blockSize;
    const extra: Record<string, unknown> = {
      'vhd-disk-type': this.diskTypeName,
      'vhd-creator-app': f.creatorApp,
      'vhd-creator-version': `${f.creatorVersion >>> 16}.${f.creatorVersion & 0xffff}`,
      'vhd-creator-os': f.creatorOs,
      'vhd-size-from': this.sizeSource,
      'vhd-current-size': f.currentSize,
      'vhd-geometry': `${f.cylinders}/${f.heads}/${f.sectorsPerTrack}`,
      'vhd-uuid': uuidToString(f.uuid),
      'vhd-timestamp': new Date(VHD_EPOCH_MS + f.timestamp * 1000).toISOString(),
    };
    if (this.sizeSource === 'chs' && f.currentSize !== this.virtualSize) {
      extra['vhd-size-note'] =
        `creator "${f.creatorApp}" means CHS geometry decides the size (as QEMU and Virtual PC read it); the footer's current size is ${f.currentSize} (read that with --image-opts driver=vpc,force_size_calc=current_size,file.filename=…)`;
    }
    if (this.dyn && this.isDiff) {
      extra['vhd-parent-uuid'] = uuidToString(this.dyn.header.parentUuid);
      extra['vhd-parent-name'] = this.dyn.header.parentName;
    }
    info.extra = extra;
    if (this.backingRef) {
      setBackingInfo(info, this.src.name, this.backingRef.name, 'vpc');
    }
    return info;
  }

  async close(): Promise<void> {
    this.bitmaps.clear();
    await this.src.close?.();
  }
}

function isSet(bitmap: Uint8Array, sector: number): boolean {
  return ((bitmap[Math.floor(sector / 8)] ?? 0) & (0x80 >> (sector % 8))) !== 0;
}
