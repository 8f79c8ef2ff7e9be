import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError } from '../../io/errors.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { padTo, Struct } from '../../io/struct.ts';
import { checkOptions, parseSize } from '../../image/options.ts';
import { WriteOrder } from '../../image/writeOrder.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import { buildCloopV2Header, CLOOP_HEADER_SIZE, CLOOP_MAX_BLOCK_SIZE, CLOOP_MAX_INDEX_BYTES } from './layout.ts';

export const CLOOP_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  {
    name: 'block_size',
    type: 'size',
    default: '64k',
    help: 'uncompressed bytes per block, a multiple of 512 (cloop-utils warns above 256k)',
  },
];

/** create_compressed_fs compresses with zlib's best level ("78 DA"). */
const ZLIB_LEVEL = 9;

/**
 * Writes a cloop V2.0 image as cloop-utils' create_compressed_fs does: the 136-byte header, the
 * index of n+1 BE64 offsets, then every block zlib-compressed, in order, with no gaps — ranges
 * the pipeline skips as zero are written as compressed zero blocks. The index is only known at
 * the end, so the writer reserves its room and fills it in `finish`.
 */
export class CloopWriter implements ImageWriter {
  readonly granularity: number;
  readonly warnings: string[] = [];
  private readonly blockSize: number;
  private readonly numBlocks: number;
  private readonly offsets: Float64Array;
  private readonly out: SinkBuffer;
  private readonly order: WriteOrder;
  private nextBlock = 0;
  private pos: number;
  private zeroBlock: Uint8Array | undefined;

  constructor(
    private readonly sink: ByteSink,
    private readonly opts: CreateOptions,
  ) {
    checkOptions('cloop', opts.options, CLOOP_CREATE_OPTIONS);
    if (opts.backing) throw new InvalidArgumentError('cloop images cannot have a backing file', opts.filename);
    const bs = opts.options.block_size ? parseSize(opts.options.block_size, 'block_size') : 64 * 1024;
    if (bs <= 0 || bs % 512 !== 0 || bs > CLOOP_MAX_BLOCK_SIZE) {
      throw new InvalidArgumentError(`block_size must be a multiple of 512 between 512 and 64M (got ${bs})`, opts.filename);
    }
    this.blockSize = bs;
    this.granularity = bs;
    this.numBlocks = Math.ceil(opts.virtualSize / bs);
    if ((this.numBlocks + 1) * 8 > CLOOP_MAX_INDEX_BYTES) {
      throw new InvalidArgumentError(
        `a ${opts.virtualSize}-byte disk needs too many ${bs}-byte blocks for cloop; use a larger block_size`,
        opts.filename,
      );
    }
    this.offsets = new Float64Array(this.numBlocks + 1);
    this.pos = CLOOP_HEADER_SIZE + (this.numBlocks + 1) * 8;
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('cloop', bs, this.numBlocks * bs);
  }

  private async compress(block: Uint8Array): Promise<Uint8Array> {
    return this.opts.codecs.zlibDeflate(block, ZLIB_LEVEL);
  }

  private async append(packed: Uint8Array): Promise<void> {
    this.offsets[this.nextBlock] = this.pos;
    await this.out.write(this.pos, packed);
    this.pos += packed.length;
    this.nextBlock++;
  }

  /** Compressed zero blocks up to (not including) `block`. */
  private async fillTo(block: number): Promise<void> {
    if (this.nextBlock >= block) return;
    this.zeroBlock ??= await this.compress(new Uint8Array(this.blockSize));
    while (this.nextBlock < block) await this.append(this.zeroBlock);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    await this.fillTo(offset / this.blockSize);
    const blocks: Uint8Array[] = [];
    // The last block is zero-padded: every block inflates to exactly block_size.
    for (let p = 0; p < data.length; p += this.blockSize) blocks.push(padTo(data.subarray(p, p + this.blockSize), this.blockSize));
    // Started together so a pool of compressors behind the codec can work in parallel.
    const packed = await Promise.all(blocks.map((b) => this.compress(b)));
    for (const p of packed) await this.append(p);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.order.check(offset, length);
    // Nothing to do now: gaps are filled with zero blocks when the next data (or finish) arrives.
  }

  async finish(): Promise<void> {
    await this.fillTo(this.numBlocks);
    this.offsets[this.numBlocks] = this.pos;
    const index = Struct.alloc((this.numBlocks + 1) * 8);
    for (let i = 0; i <= this.numBlocks; i++) index.setU64(i * 8, this.offsets[i]!);
    await this.out.write(0, buildCloopV2Header(this.blockSize, this.numBlocks));
    await this.out.write(CLOOP_HEADER_SIZE, index.bytes);
    await this.out.flush();
    if (this.sink.truncate) await this.sink.truncate(this.pos);
  }
}
