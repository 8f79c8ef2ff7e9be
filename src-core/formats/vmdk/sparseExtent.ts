import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError } from '../../io/errors.ts';
import { readU32Table } from '../../io/struct.ts';
import { planReads, type HostRead } from '../../image/readPlan.ts';
import { DEFAULT_LIMITS, type Extent, type Limits } from '../../image/types.ts';
import type { Codecs } from '../../codecs/types.ts';
import type { ExtentInfo, VmdkExtent } from './extent.ts';
import {
  FLAG_RGD,
  FLAG_ZERO_GRAIN,
  gdEntries,
  hasMarkers,
  isCompressed,
  isSparseMagic,
  MARKER_EOS,
  MARKER_FOOTER,
  parseMarker,
  parseSparseHeader,
  SECTOR,
  type SparseHeader,
} from './sparseHeader.ts';
import { BoundedCache } from '../../io/boundedCache.ts';

/** A GTE of 1 with the zeroed-grain flag: the grain reads as zeros even over a parent. */
const GTE_ZEROED = 1;
/** How far back from the end we look for a stream footer (VMware pads some files after the EOS). */
const FOOTER_SEARCH_BYTES = 128 * 1024;
const GT_CACHE_TABLES = 4096;

/**
 * A hosted sparse extent ("KDMV"): monolithicSparse, a twoGbMaxExtentSparse piece, or
 * streamOptimized (compressed grains, with or without markers, GD in place or at the end).
 * Lookup follows vmdk.c get_cluster_offset: GD entry → GT → GTE (sector of the grain).
 */
export class SparseExtent implements VmdkExtent {
  readonly size: number;
  readonly grainBytes: number;
  readonly compressed: boolean;
  readonly markers: boolean;
  private readonly gtCache = new BoundedCache<Uint32Array>(GT_CACHE_TABLES);

  constructor(
    readonly src: ByteSource,
    readonly header: SparseHeader,
    private readonly gd: Uint32Array,
    private readonly codecs: Codecs,
    private readonly infoName: string,
    private readonly typeName: string,
    private readonly isMainFile: boolean,
  ) {
    this.size = header.capacity * SECTOR;
    this.grainBytes = header.grainSectors * SECTOR;
    this.compressed = isCompressed(header);
    this.markers = hasMarkers(header);
  }

  static async open(
    src: ByteSource,
    opts: { codecs: Codecs; limits?: Limits; infoName: string; typeName: string; isMainFile: boolean },
  ): Promise<SparseExtent> {
    const first = await readExact(src, 0, SECTOR);
    if (!isSparseMagic(first)) throw new CorruptImageError(src.name, 'sparse extent has no KDMV magic');
    let h = parseSparseHeader(src.name, first);
    if (h.gdOffset < 0) h = await readFooter(src);
    // A primary directory offset of 0 cannot be right (sector 0 is the header): use the redundant copy.
    if (h.gdOffset === 0 && h.flags & FLAG_RGD && h.rgdOffset) h = { ...h, gdOffset: h.rgdOffset };
    if (h.gdOffset === 0) throw new CorruptImageError(src.name, 'sparse extent has no grain directory (gdOffset 0)');
    const n = gdEntries(h);
    const limits = opts.limits ?? DEFAULT_LIMITS;
    if (n * 4 > limits.maxTableBytes)
      throw new CorruptImageError(src.name, `grain directory of ${n} entries exceeds the ${limits.maxTableBytes}-byte table limit`);
    const gdBytes = await readExact(src, h.gdOffset * SECTOR, n * 4);
    return new SparseExtent(src, h, readU32Table(gdBytes, n, true), opts.codecs, opts.infoName, opts.typeName, opts.isMainFile);
  }

  /** The GTE of grain `g` (0 = unallocated). */
  async gte(g: number): Promise<number> {
    const gtes = this.header.gtesPerGt;
    const gdIndex = Math.floor(g / gtes);
    const gtSector = this.gd[gdIndex] ?? 0;
    if (!gtSector) return 0;
    const gt = await this.gtCache.getOrLoad(gtSector, async () =>
      readU32Table(await readExact(this.src, gtSector * SECTOR, gtes * 4), gtes, true),
    );
    return gt[g % gtes]!;
  }

  private isZeroed(gte: number): boolean {
    return gte === GTE_ZEROED && (this.header.flags & FLAG_ZERO_GRAIN) !== 0;
  }

  async *extents(from: number, to: number): AsyncIterable<Extent> {
    to = Math.min(to, this.size);
    const span = this.grainBytes * this.header.gtesPerGt;
    let pos = from;
    while (pos < to) {
      const g = Math.floor(pos / this.grainBytes);
      const gdIndex = Math.floor(g / this.header.gtesPerGt);
      if (!this.gd[gdIndex]) {
        // No grain table: the whole span it would map is unallocated, without visiting it.
        const end = Math.min(to, (gdIndex + 1) * span);
        yield { offset: pos, length: end - pos, kind: 'unallocated' };
        pos = end;
        continue;
      }
      const gte = await this.gte(g);
      const grainStart = g * this.grainBytes;
      const end = Math.min(grainStart + this.grainBytes, to);
      const base = { offset: pos, length: end - pos };
      if (!gte) yield { ...base, kind: 'unallocated' };
      else if (this.isZeroed(gte)) yield { ...base, kind: 'zero' };
      else if (this.compressed) yield { ...base, kind: 'data', compressed: true };
      else {
        const e: Extent = { ...base, kind: 'data', hostOffset: gte * SECTOR + (pos - grainStart) };
        if (!this.isMainFile) e.hostFile = this.src.name;
        yield e;
      }
      pos = end;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.size);
    const plain: HostRead[] = [];
    const packed: (HostRead & { grain: number; start: number; len: number })[] = [];
    for (let pos = offset; pos < end;) {
      const g = Math.floor(pos / this.grainBytes);
      const grainStart = g * this.grainBytes;
      const stop = Math.min(grainStart + this.grainBytes, end);
      const gte = await this.gte(g);
      if (gte && !this.isZeroed(gte)) {
        const host = gte * SECTOR;
        if (this.compressed) {
          // Compressed length is known only after reading: ask for what QEMU reads (two grains),
          // bounded by the file; neighbouring grains overlap and merge into one host read.
          const len = Math.min(2 * this.grainBytes + SECTOR, this.src.size - host);
          if (len <= 0) throw new CorruptImageError(this.src.name, `compressed grain ${g} points past the end of the file`);
          packed.push({ hostOffset: host, length: len, outPos: pos - offset, grain: g, start: pos - grainStart, len: stop - pos });
        } else {
          plain.push({ hostOffset: host + (pos - grainStart), length: stop - pos, outPos: pos - offset });
        }
      }
      pos = stop;
    }
    // Grains laid out back to back covering the whole range (what writers produce for
    // sequentially written disks): one read is the answer, with no copy.
    if (!packed.length && isOneRun(plain, length)) return readExact(this.src, plain[0]!.hostOffset, length);
    // Made only now: a window of several MiB that the one-read case would throw away unused.
    const out = new Uint8Array(length);
    await planReads(this.src, plain, (r, bytes) => out.set(bytes, r.outPos));
    const decoded = new Map<number, Uint8Array>();
    await planReads(this.src, packed, async (r, bytes) => {
      const p = r as (typeof packed)[number];
      let data = decoded.get(p.grain);
      if (!data) {
        data = await this.inflateGrain(p.grain, bytes);
        decoded.set(p.grain, data);
      }
      if (data.length < p.start + p.len) {
        throw new CorruptImageError(
          this.src.name,
          `compressed grain ${p.grain} inflates to ${data.length} bytes, fewer than the ${p.start + p.len} needed`,
        );
      }
      out.set(data.subarray(p.start, p.start + p.len), p.outPos);
    });
    return out;
  }

  /** Inflates one grain from the bytes at its GTE: a grain marker (lba, size) then a zlib stream. */
  private async inflateGrain(g: number, bytes: Uint8Array): Promise<Uint8Array> {
    let data = bytes;
    if (this.markers) {
      if (bytes.length < 12) throw new CorruptImageError(this.src.name, `grain marker of grain ${g} is truncated`);
      const size = new DataView(bytes.buffer, bytes.byteOffset, 12).getUint32(8, true);
      // vmdk_read_extent: a zero size or one beyond two grains is corrupt.
      if (size === 0 || size > bytes.length - 12)
        throw new CorruptImageError(this.src.name, `grain ${g} has an invalid compressed size ${size}`);
      data = bytes.subarray(12, 12 + size);
    }
    try {
      return await this.codecs.zlibInflate(data, this.grainBytes);
    } catch (e) {
      throw new CorruptImageError(this.src.name, `compressed grain ${g} cannot be decompressed: ${(e as Error).message}`);
    }
  }

  /** The first guest byte whose grain lies at or past the end of the file (vmdk_co_check), if any. */
  async findGrainPastEof(): Promise<number | undefined> {
    const gtes = this.header.gtesPerGt;
    for (let k = 0; k < this.gd.length; k++) {
      if (!this.gd[k]) continue;
      for (let i = 0; i < gtes; i++) {
        const g = k * gtes + i;
        if (g * this.grainBytes >= this.size) return undefined;
        const gte = await this.gte(g);
        if (gte && !this.isZeroed(gte) && gte * SECTOR >= this.src.size) return g * this.grainBytes;
      }
    }
    return undefined;
  }

  info(): ExtentInfo {
    const i: ExtentInfo = { filename: this.infoName, format: this.typeName, 'virtual-size': this.size, 'cluster-size': this.grainBytes };
    if (this.compressed) i.compressed = true;
    return i;
  }

  async close(): Promise<void> {
    this.gtCache.clear();
    await this.src.close?.();
  }
}

/**
 * GD_AT_END: the real header is the footer: FOOTER marker, header copy, EOS marker, normally the
 * last three sectors (vmdk_open_vmdk4 checks exactly that). Files padded after the EOS are
 * accepted too: we look back a little for the marker-footer-EOS triple.
 */
async function readFooter(src: ByteSource): Promise<SparseHeader> {
  const lastSector = Math.floor(src.size / SECTOR) * SECTOR;
  const start = Math.max(SECTOR, lastSector - FOOTER_SEARCH_BYTES);
  const tail = await src.read(start, lastSector - start);
  for (let at = tail.length - 3 * SECTOR; at >= 0; at -= SECTOR) {
    const marker = parseMarker(tail.subarray(at, at + 16));
    if (marker.type !== MARKER_FOOTER || marker.size !== 0) continue;
    const hdr = tail.subarray(at + SECTOR, at + 2 * SECTOR);
    if (!isSparseMagic(hdr)) continue;
    const eos = parseMarker(tail.subarray(at + 2 * SECTOR, at + 2 * SECTOR + 16));
    if (eos.type !== MARKER_EOS || eos.size !== 0 || eos.value !== 0) continue;
    const h = parseSparseHeader(src.name, hdr);
    if (h.gdOffset < 0) throw new CorruptImageError(src.name, 'stream footer has no grain directory offset either');
    return h;
  }
  throw new CorruptImageError(
    src.name,
    'grain directory is at the end (GD_AT_END) but no footer marker, footer and end-of-stream marker were found',
  );
}

/** True when the reads fill [0, length) of the output from one contiguous host range. */
function isOneRun(reads: HostRead[], length: number): boolean {
  if (!reads.length || reads[0]!.outPos !== 0) return false;
  for (let i = 1; i < reads.length; i++) {
    const a = reads[i - 1]!;
    const b = reads[i]!;
    if (b.outPos !== a.outPos + a.length || b.hostOffset !== a.hostOffset + a.length) return false;
  }
  const last = reads[reads.length - 1]!;
  return last.outPos + last.length === length;
}
