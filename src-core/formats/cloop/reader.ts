import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, NotThisFormatError, UnsupportedError } from '../../io/errors.ts';
import { DEFAULT_LIMITS, type BlockDevice, type Extent, type ImageInfo, type OpenContext } from '../../image/types.ts';
import { infoBasics } from '../../image/info.ts';
import {
  CLOOP_HEADER_SIZE,
  CLOOP_MAX_BLOCKS,
  CLOOP_MAX_COMPRESSED_BLOCK,
  CLOOP_MAX_INDEX_BYTES,
  CLOOP_V3_MARKER,
  COMPRESSOR_NAMES,
  COMPRESSOR_NONE,
  COMPRESSOR_ZLIB,
  looksLikePreamble,
  parseCloopHead,
  type CloopHead,
  type CloopVariant,
} from './layout.ts';

/** Compressed bytes fetched per host read when a guest read spans many blocks. */
const MAX_SPAN = 8 * 1024 * 1024;

interface CloopIndex {
  variant: CloopVariant;
  /** n+1 absolute offsets: block i is [offsets[i], offsets[i+1]). */
  offsets: Float64Array;
  /** Compressor of each block (V4.0); absent = all zlib. */
  compressors?: Uint8Array;
}

/**
 * An opened cloop image: a read-only disk of num_blocks · block_size bytes, each block
 * compressed on its own. Reads fetch the compressed bytes of neighbouring blocks in one go and
 * keep the last block decoded (QEMU keeps one block too).
 */
export class CloopDevice implements BlockDevice {
  readonly format = 'cloop';
  readonly virtualSize: number;
  private cached: { block: number; data: Uint8Array } | undefined;

  private constructor(
    readonly src: ByteSource,
    readonly head: CloopHead,
    readonly index: CloopIndex,
    private readonly ctx: OpenContext,
  ) {
    this.virtualSize = (index.offsets.length - 1) * head.blockSize;
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<CloopDevice> {
    const first = await src.read(0, CLOOP_HEADER_SIZE);
    let head: CloopHead;
    let index: CloopIndex;
    if (looksLikePreamble(first)) {
      head = parseCloopHead(src.name, first);
      index =
        head.numBlocks === CLOOP_V3_MARKER
          ? await readV3Index(src, head, ctx)
          : await readIndexAt(src, head, CLOOP_HEADER_SIZE, false, ctx);
    } else {
      // V4.0 "streaming" layout: the header is the last 136 bytes, the index just before it.
      const last = src.size >= CLOOP_HEADER_SIZE ? await src.read(src.size - CLOOP_HEADER_SIZE, CLOOP_HEADER_SIZE) : new Uint8Array(0);
      if (!looksLikePreamble(last)) throw new NotThisFormatError(src.name, 'not a cloop image');
      head = parseCloopHead(src.name, last);
      const at = src.size - CLOOP_HEADER_SIZE - (head.numBlocks + 1) * 8;
      if (at < 0) throw new CorruptImageError(src.name, `cloop index of ${head.numBlocks} blocks does not fit before the trailing header`);
      index = await readIndexAt(src, head, at, true, ctx);
    }
    return new CloopDevice(src, head, index, ctx);
  }

  get filename(): string {
    return this.src.name;
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    // Every block is stored compressed: there are no holes a map could show.
    if (from < to) yield { offset: from, length: to - from, kind: 'data', compressed: true };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const end = Math.min(offset + length, this.virtualSize);
    if (offset >= end) return out;
    const bs = this.head.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((end - 1) / bs);
    let b = first;
    while (b <= last) {
      // Gather consecutive blocks whose compressed bytes fit one host read.
      const offs = this.index.offsets;
      let stop = b + 1;
      while (stop <= last && offs[stop + 1]! - offs[b]! <= MAX_SPAN) stop++;
      const span =
        this.cached && b === this.cached.block && stop === b + 1 ? undefined : await readExact(this.src, offs[b]!, offs[stop]! - offs[b]!);
      for (let k = b; k < stop; k++) {
        const data = span ? await this.decode(k, span.subarray(offs[k]! - offs[b]!, offs[k + 1]! - offs[b]!)) : this.cached!.data;
        const blockStart = k * bs;
        const from = Math.max(offset, blockStart);
        const to = Math.min(end, blockStart + bs);
        out.set(data.subarray(from - blockStart, to - blockStart), from - offset);
      }
      b = stop;
    }
    return out;
  }

  /** cloop_read_block: the block must inflate to exactly block_size bytes. */
  private async decode(block: number, raw: Uint8Array): Promise<Uint8Array> {
    if (this.cached?.block === block) return this.cached.data;
    const bs = this.head.blockSize;
    const compressor = this.index.compressors?.[block] ?? COMPRESSOR_ZLIB;
    const where = `cloop block ${block}`;
    let data: Uint8Array;
    if (compressor === COMPRESSOR_NONE) {
      data = new Uint8Array(bs);
      data.set(raw.subarray(0, bs));
    } else if (compressor === COMPRESSOR_ZLIB) {
      try {
        data = await this.ctx.codecs.zlibInflate(raw, bs);
      } catch (e) {
        throw new CorruptImageError(this.src.name, `${where} cannot be decompressed: ${(e as Error).message}`);
      }
      if (data.length !== bs)
        throw new CorruptImageError(this.src.name, `${where} inflates to ${data.length} bytes, not the block size ${bs}`);
    } else {
      throw new UnsupportedError(
        this.src.name,
        `${where} uses the ${COMPRESSOR_NAMES[compressor] ?? `#${compressor}`} compressor, which DiskFerry cannot decode`,
      );
    }
    this.cached = { block, data };
    return data;
  }

  info(): ImageInfo {
    return {
      ...infoBasics(this.src, 'cloop', this.virtualSize),
      extra: { variant: this.index.variant, 'block-size': this.head.blockSize, blocks: this.index.offsets.length - 1 },
    };
  }

  async close(): Promise<void> {
    this.cached = undefined;
    await this.src.close?.();
  }
}

function indexLimit(file: string, entries: number, entryBytes: number, ctx: OpenContext): void {
  if (entries - 1 > CLOOP_MAX_BLOCKS)
    throw new CorruptImageError(file, `cloop n_blocks ${entries - 1} must be ${CLOOP_MAX_BLOCKS} or less`);
  const bytes = entries * entryBytes;
  const limit = Math.min(CLOOP_MAX_INDEX_BYTES, (ctx.limits ?? DEFAULT_LIMITS).maxTableBytes);
  if (bytes > limit)
    throw new UnsupportedError(file, `cloop index of ${bytes} bytes is too large (limit ${limit}); the image has too many blocks`);
}

/** Checks an offset list as QEMU's cloop_open does, plus that every block lies inside the file. */
function offsetsProblem(offs: Float64Array, dataStart: number, fileSize: number): string | undefined {
  if (offs[0]! < dataStart) return `first block at ${offs[0]} overlaps the header or index`;
  for (let i = 1; i < offs.length; i++) {
    if (offs[i]! < offs[i - 1]!) return `offsets not monotonically increasing at index ${i}`;
    if (offs[i]! - offs[i - 1]! > CLOOP_MAX_COMPRESSED_BLOCK) return `invalid compressed block size at index ${i}`;
  }
  if (offs[offs.length - 1]! > fileSize)
    return `block ${offs.length - 2} ends at ${offs[offs.length - 1]}, past the end of the file (${fileSize} bytes)`;
  return undefined;
}

/**
 * Header-first index (and V4.0's trailing one). The signature says V4.0; otherwise the V2.0
 * reading is tried first and, when its offsets make no sense, the older V0.68 (BE32) and V1.0
 * (LE64) readings, whose offsets would be garbage as BE64.
 */
async function readIndexAt(src: ByteSource, head: CloopHead, at: number, footer: boolean, ctx: OpenContext): Promise<CloopIndex> {
  const n = head.numBlocks + 1;
  indexLimit(src.name, n, 8, ctx);
  const raw = await readExact(src, at, n * 8);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dataStart = footer ? 0 : at + n * 8;
  const dataEnd = footer ? at : src.size;
  if (head.signature === 'V4.0' || footer) {
    const offsets = new Float64Array(n);
    const compressors = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const w = view.getBigUint64(i * 8);
      compressors[i] = Number(w >> 60n);
      offsets[i] = Number(w & 0x0fffffffffffffffn);
    }
    const problem = offsetsProblem(offsets, dataStart, dataEnd);
    if (problem) throw new CorruptImageError(src.name, `cloop V4.0 index: ${problem}`);
    return { variant: footer ? 'V4.0-footer' : 'V4.0', offsets, compressors };
  }
  const readings: [CloopVariant, number, (i: number) => number][] = [
    ['V2.0', 8, (i) => Number(view.getBigUint64(i * 8))],
    ['V0.68', 4, (i) => view.getUint32(i * 4)],
    ['V1.0', 8, (i) => Number(view.getBigUint64(i * 8, true))],
  ];
  let firstProblem: string | undefined;
  for (const [variant, width, get] of readings) {
    const offsets = new Float64Array(n);
    for (let i = 0; i < n; i++) offsets[i] = get(i);
    const problem = offsetsProblem(offsets, at + n * width, dataEnd);
    if (!problem) return { variant, offsets };
    firstProblem ??= problem;
  }
  throw new CorruptImageError(src.name, `cloop index: ${firstProblem}`);
}

/** V3.0: blocks follow the header; n BE32 compressed sizes and an 8-byte tail end the file. */
async function readV3Index(src: ByteSource, _head: CloopHead, ctx: OpenContext): Promise<CloopIndex> {
  if (src.size < CLOOP_HEADER_SIZE + 8) throw new CorruptImageError(src.name, 'cloop V3.0 image has no index tail');
  const tailBytes = await readExact(src, src.size - 8, 8);
  const tail = new DataView(tailBytes.buffer, tailBytes.byteOffset, 8);
  const entrySize = tail.getUint32(0);
  const n = tail.getUint32(4);
  if (entrySize !== 4) throw new UnsupportedError(src.name, `cloop V3.0 index entries of ${entrySize} bytes are not supported`);
  indexLimit(src.name, n + 1, 4, ctx);
  const at = src.size - 8 - n * 4;
  if (at < CLOOP_HEADER_SIZE) throw new CorruptImageError(src.name, `cloop V3.0 index of ${n} blocks does not fit in the file`);
  const raw = await readExact(src, at, n * 4);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const offsets = new Float64Array(n + 1);
  offsets[0] = CLOOP_HEADER_SIZE;
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + view.getUint32(i * 4);
  const problem = offsetsProblem(offsets, CLOOP_HEADER_SIZE, at);
  if (problem) throw new CorruptImageError(src.name, `cloop V3.0 index: ${problem}`);
  return { variant: 'V3.0', offsets };
}
