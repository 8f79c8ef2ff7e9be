import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { randomGuid } from '../../io/guid.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero } from '../../io/struct.ts';
import { checkOptions, parseBool } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import { BLOCK_FREE, buildVdiHeader, VDI_MAX_BLOCKS, VDI_TYPE_FIXED, VDI_TYPE_NORMAL } from './header.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

export const VDI_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  { name: 'static', type: 'bool', default: 'off', help: 'preallocate every block (VirtualBox "fixed" image)' },
];

/** QEMU reads only 1 MiB blocks (and VirtualBox always makes them). */
const BLOCK_SIZE = 1024 * 1024;
/** Current VirtualBox aligns the block map and the data area to 1 MiB; so do we. */
const ALIGN = 1024 * 1024;

/**
 * Writes a VDI: header, block map at 1 MiB, data from the next MiB boundary. Dynamic images get
 * blocks appended in guest order as data arrives (all-zero blocks stay FREE); static images map
 * block i to slot i and are sized to hold every block. Header and map are written last.
 */
export class VdiWriter implements ImageWriter {
  readonly granularity = BLOCK_SIZE;
  private readonly out: SinkBuffer;
  private readonly map: Uint32Array;
  private readonly offBlocks = ALIGN;
  private readonly offData: number;
  private readonly size: number;
  private allocated = 0;
  private readonly order: WriteOrder;

  constructor(
    private readonly sink: ByteSink,
    opts: CreateOptions,
    private readonly isStatic: boolean,
  ) {
    this.size = alignUp(opts.virtualSize, 512);
    const blocks = Math.ceil(this.size / BLOCK_SIZE);
    if (blocks > VDI_MAX_BLOCKS) throw new InvalidArgumentError(`VDI disks are at most ${VDI_MAX_BLOCKS * BLOCK_SIZE} bytes; this one is ${this.size}`);
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('vdi', BLOCK_SIZE, blocks * BLOCK_SIZE);
    this.map = new Uint32Array(blocks).fill(BLOCK_FREE);
    if (isStatic) {
      for (let i = 0; i < blocks; i++) this.map[i] = i;
      this.allocated = blocks;
    }
    this.offData = alignUp(this.offBlocks + blocks * 4, ALIGN);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    for (let pos = 0; pos < data.length; pos += BLOCK_SIZE) {
      const block = data.subarray(pos, pos + BLOCK_SIZE);
      const index = (offset + pos) / BLOCK_SIZE;
      if (this.isStatic) {
        await this.out.write(this.offData + index * BLOCK_SIZE, block);
        continue;
      }
      if (isAllZero(block)) continue; // FREE reads as zeros
      const slot = this.allocated++;
      this.map[index] = slot;
      await this.out.write(this.offData + slot * BLOCK_SIZE, block);
      // Whole blocks in the file, as QEMU and VirtualBox allocate them.
      if (block.length < BLOCK_SIZE) await this.out.write(this.offData + slot * BLOCK_SIZE + block.length, new Uint8Array(BLOCK_SIZE - block.length));
    }
  }

  async writeZeroes(): Promise<void> {}

  async finish(): Promise<void> {
    await this.out.flush();
    const mapBytes = new Uint8Array(this.map.length * 4);
    const v = new DataView(mapBytes.buffer);
    for (let i = 0; i < this.map.length; i++) v.setUint32(i * 4, this.map[i]!, true);
    await this.sink.write(this.offBlocks, mapBytes);
    // VirtualBox refuses null creation or modification UUIDs; linkage and parent stay null (not a diff).
    const header = buildVdiHeader({
      type: this.isStatic ? VDI_TYPE_FIXED : VDI_TYPE_NORMAL,
      offBlocks: this.offBlocks,
      offData: this.offData,
      diskSize: this.size,
      blockSize: BLOCK_SIZE,
      blocks: this.map.length,
      blocksAllocated: this.allocated,
      uuidCreate: randomGuid(),
      uuidModify: randomGuid(),
    });
    await this.sink.write(0, header);
    const end = this.offData + this.allocated * BLOCK_SIZE;
    if (this.sink.truncate) await this.sink.truncate(end);
    else if (this.isStatic) await this.sink.write(end - 1, new Uint8Array(1));
    await this.sink.close();
  }
}

export async function createVdiWriter(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  checkOptions('vdi', opts.options, VDI_CREATE_OPTIONS);
  if (opts.backing) throw new UnsupportedError(opts.filename, 'DiskFerry does not write differencing VDIs (no backing file for vdi)');
  if (opts.compress) throw new UnsupportedError(opts.filename, 'VDI has no compression (-c)');
  return new VdiWriter(sink, opts, parseBool(opts.options.static, 'static'));
}
