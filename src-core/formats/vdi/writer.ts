import { readPadded, type ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero } from '../../io/struct.ts';
import { identityFor, parseUuidOption, toGuidLayout, uuidOption } from '../../image/identity.ts';
import { checkOptions, parseBool } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import {
  BLOCK_FREE,
  BLOCK_ZERO,
  buildVdiHeader,
  parseVdiHeader,
  VDI_HEADER_BYTES,
  VDI_MAX_BLOCKS,
  VDI_TYPE_DIFF,
  VDI_TYPE_FIXED,
  VDI_TYPE_NORMAL,
  vdiVirtualSize,
  type VdiHeaderFields,
} from './header.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

export const VDI_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  { name: 'static', type: 'bool', default: 'off', help: 'preallocate every block (VirtualBox "fixed" image)' },
  uuidOption('the image UUID VirtualBox registers the disk by (header uuidCreate); random unless given'),
];

/** QEMU reads only 1 MiB blocks (and VirtualBox always makes them). */
const BLOCK_SIZE = 1024 * 1024;
/** Current VirtualBox aligns the block map and the data area to 1 MiB; so do we. */
const ALIGN = 1024 * 1024;

/**
 * Writes a VDI: header, block map at 1 MiB, data from the next MiB boundary. Dynamic images get
 * blocks appended in guest order as data arrives (all-zero blocks stay FREE); static images map
 * block i to slot i and are sized to hold every block. Header and map are written last.
 * A differencing image (VirtualBox's snapshot layout) leaves FREE the blocks that read from the
 * parent, holds whole blocks where the child differs (VDI has no sector bitmap), and marks blocks
 * that must read as zeros over the parent ZERO, with no data.
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
  private readonly uuidCreate: Uint8Array;
  private readonly uuidModify: Uint8Array;

  constructor(
    private readonly sink: ByteSink,
    opts: CreateOptions,
    private readonly isStatic: boolean,
    private readonly parent?: VdiHeaderFields['parent'],
  ) {
    this.size = alignUp(opts.virtualSize, 512);
    const blocks = Math.ceil(this.size / BLOCK_SIZE);
    if (blocks > VDI_MAX_BLOCKS)
      throw new InvalidArgumentError(`VDI disks are at most ${VDI_MAX_BLOCKS * BLOCK_SIZE} bytes; this one is ${this.size}`);
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('vdi', BLOCK_SIZE, blocks * BLOCK_SIZE);
    this.map = new Uint32Array(blocks).fill(BLOCK_FREE);
    if (isStatic) {
      for (let i = 0; i < blocks; i++) this.map[i] = i;
      this.allocated = blocks;
    }
    this.offData = alignUp(this.offBlocks + blocks * 4, ALIGN);
    const id = identityFor(opts, 'vdi');
    const given = parseUuidOption(opts);
    this.uuidCreate = given ? toGuidLayout(given) : id.guid('vdi image');
    this.uuidModify = id.guid('vdi modification');
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    for (let pos = 0; pos < data.length; pos += BLOCK_SIZE) {
      const block = data.subarray(pos, pos + BLOCK_SIZE);
      const index = (offset + pos) / BLOCK_SIZE;
      // Blocks are not copied (ImageWriter: callers never change what they handed over).
      if (this.isStatic) {
        await this.out.writeOwned(this.offData + index * BLOCK_SIZE, block);
        continue;
      }
      if (isAllZero(block)) {
        // FREE reads as zeros, except over a parent.
        if (this.parent) this.map[index] = BLOCK_ZERO;
        continue;
      }
      const slot = this.allocated++;
      this.map[index] = slot;
      await this.out.writeOwned(this.offData + slot * BLOCK_SIZE, block);
      // Whole blocks in the file, as QEMU and VirtualBox allocate them.
      if (block.length < BLOCK_SIZE)
        await this.out.write(this.offData + slot * BLOCK_SIZE + block.length, new Uint8Array(BLOCK_SIZE - block.length));
    }
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    if (!this.parent) return;
    this.order.check(offset, length);
    for (let pos = 0; pos < length; pos += BLOCK_SIZE) this.map[(offset + pos) / BLOCK_SIZE] = BLOCK_ZERO;
  }

  readonly warnings: string[] = [];

  async finish(): Promise<void> {
    await this.out.flush();
    const mapBytes = new Uint8Array(this.map.length * 4);
    const v = new DataView(mapBytes.buffer);
    for (let i = 0; i < this.map.length; i++) v.setUint32(i * 4, this.map[i]!, true);
    await this.sink.write(this.offBlocks, mapBytes);
    // VirtualBox refuses null creation or modification UUIDs; linkage and parent stay null (not a diff).
    const header = buildVdiHeader({
      type: this.parent ? VDI_TYPE_DIFF : this.isStatic ? VDI_TYPE_FIXED : VDI_TYPE_NORMAL,
      offBlocks: this.offBlocks,
      offData: this.offData,
      diskSize: this.size,
      blockSize: BLOCK_SIZE,
      blocks: this.map.length,
      blocksAllocated: this.allocated,
      uuidCreate: this.uuidCreate,
      uuidModify: this.uuidModify,
      parent: this.parent,
    });
    await this.sink.write(0, header);
    const end = this.offData + this.allocated * BLOCK_SIZE;
    if (this.sink.truncate) await this.sink.truncate(end);
    else if (this.isStatic) await this.sink.write(end - 1, new Uint8Array(1));
  }
}

export async function createVdiWriter(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  checkOptions('vdi', opts.options, VDI_CREATE_OPTIONS);
  if (opts.compress) throw new UnsupportedError(opts.filename, 'VDI has no compression (-c)');
  const isStatic = parseBool(opts.options.static, 'static');
  if (!opts.backing) return new VdiWriter(sink, opts, isStatic);
  if (isStatic) throw new InvalidArgumentError('a differencing VDI cannot be static (static=on with a backing file)', opts.filename);
  const w = new VdiWriter(sink, opts, false, await parentFor(opts));
  w.warnings.push(
    `a differencing VDI names its parent only by UUID: keep ${opts.backing.name} next to it (DiskFerry finds it by UUID in the folder; VirtualBox needs both registered in the VM)`,
  );
  return w;
}

/**
 * The parent of a differencing VDI: a VDI of the same size, linked by its creation UUID
 * (uuidLinkage) and its modification UUID at the time (uuidParentModification), as VirtualBox
 * links a snapshot image to the image it was taken from.
 */
async function parentFor(opts: CreateOptions): Promise<VdiHeaderFields['parent']> {
  const b = opts.backing!;
  if (b.format && b.format !== 'vdi')
    throw new InvalidArgumentError(`the parent of a differencing VDI must be a VDI, not ${b.format}`, opts.filename);
  if (!opts.resolver) throw new UnsupportedError(opts.filename, `the parent "${b.name}" cannot be opened here to link it`);
  const src = await opts.resolver.open(b.name, opts.filename);
  try {
    const h = parseVdiHeader(b.name, await readPadded(src, 0, VDI_HEADER_BYTES), src.size);
    const size = alignUp(opts.virtualSize, 512);
    if (vdiVirtualSize(h) !== size) {
      throw new InvalidArgumentError(
        `a differencing VDI must have its parent's size: ${b.name} is ${vdiVirtualSize(h)} bytes, the new disk ${size}`,
        opts.filename,
      );
    }
    return { uuidLinkage: h.uuidCreate, uuidParentModify: h.uuidModify };
  } finally {
    await src.close?.();
  }
}
