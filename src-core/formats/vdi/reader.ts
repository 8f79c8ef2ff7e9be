import { readExact, type ByteSource } from '../../io/bytes.ts';
import { UnsupportedError } from '../../io/errors.ts';
import { guidToString } from '../../io/guid.ts';
import { readU32Table } from '../../io/struct.ts';
import { readDataExtents } from '../../image/readPlan.ts';
import { DEFAULT_LIMITS, type BackingRef, type BlockDevice, type Extent, type ImageInfo, type OpenContext } from '../../image/types.ts';
import { infoBasics, setBackingInfo } from '../../image/info.ts';
import {
  BLOCK_FREE,
  BLOCK_ZERO,
  parseVdiHeader,
  TYPE_NAMES,
  VDI_HEADER_BYTES,
  VDI_TYPE_DIFF,
  VDI_TYPE_UNDO,
  vdiVirtualSize,
  type VdiHeader,
} from './header.ts';
import { findVdiParent, missingParent, type VdiParent } from './parent.ts';

/** Reads the header and the whole block map (one read), checking the map's size first. */
export async function readVdiMeta(src: ByteSource, ctx: OpenContext): Promise<{ header: VdiHeader; map: Uint32Array }> {
  const header = parseVdiHeader(src.name, await readExact(src, 0, Math.min(src.size, VDI_HEADER_BYTES)), src.size);
  const limits = ctx.limits ?? DEFAULT_LIMITS;
  if (header.blocks * 4 > limits.maxTableBytes) {
    throw new UnsupportedError(src.name, `VDI block map of ${header.blocks} entries is larger than the ${limits.maxTableBytes}-byte limit`);
  }
  const map = readU32Table(await readExact(src, header.offBlocks, header.blocks * 4), header.blocks, true);
  return { header, map };
}

/**
 * A VirtualBox VDI: a block map of u32 indexes into the data area. FREE blocks read as zeros
 * (or the parent's data in a differencing image), ZERO blocks always as zeros.
 */
export class VdiDevice implements BlockDevice {
  readonly format = 'vdi';
  readonly virtualSize: number;
  readonly backingRef: BackingRef | undefined;

  private constructor(
    readonly src: ByteSource,
    readonly header: VdiHeader,
    readonly map: Uint32Array,
    readonly parent: VdiParent | undefined,
  ) {
    this.virtualSize = vdiVirtualSize(header);
    this.backingRef = parent ? { name: parent.name, format: 'vdi' } : undefined;
  }

  static async open(src: ByteSource, ctx: OpenContext): Promise<VdiDevice> {
    const { header, map } = await readVdiMeta(src, ctx);
    let parent: VdiParent | undefined;
    if (isDiff(header)) {
      parent = await findVdiParent(src, header, ctx);
      if (!parent && !ctx.noBacking) throw missingParent(src, header);
    }
    return new VdiDevice(src, header, map, parent);
  }

  get filename(): string {
    return this.src.name;
  }

  /** Where block `index`'s data starts: VirtualBox puts `block extra` bytes before each block's data. */
  hostOffsetOf(entry: number): number {
    const h = this.header;
    return h.offData + entry * (h.blockSize + h.blockExtra) + h.blockExtra;
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    to = Math.min(to, this.virtualSize);
    const bs = this.header.blockSize;
    const diff = isDiff(this.header);
    let pos = from;
    while (pos < to) {
      const index = Math.floor(pos / bs);
      const blockStart = index * bs;
      const end = Math.min(blockStart + bs, to);
      const entry = this.map[index] ?? BLOCK_FREE;
      if (entry === BLOCK_FREE) yield { offset: pos, length: end - pos, kind: diff ? 'unallocated' : 'zero' };
      else if (entry === BLOCK_ZERO) yield { offset: pos, length: end - pos, kind: 'zero' };
      else yield { offset: pos, length: end - pos, kind: 'data', hostOffset: this.hostOffsetOf(entry) + (pos - blockStart) };
      pos = end;
    }
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return readDataExtents(this.src, this.extents(offset, Math.min(offset + length, this.virtualSize)), offset, length);
  }

  info(): ImageInfo {
    const h = this.header;
    const info: ImageInfo = {
      ...infoBasics(this.src, 'vdi', this.virtualSize),
      'cluster-size': h.blockSize,
      'dirty-flag': false,
    };
    const extra: Record<string, unknown> = {
      'vdi-type': TYPE_NAMES[h.type],
      'vdi-blocks': h.blocks,
      'vdi-blocks-allocated': h.blocksAllocated,
      'vdi-block-extra': h.blockExtra,
      'vdi-data-offset': h.offData,
      'vdi-uuid': guidToString(h.uuidCreate),
      'vdi-modification-uuid': guidToString(h.uuidModify),
    };
    if (isDiff(h)) {
      extra['vdi-parent-uuid'] = guidToString(h.uuidLinkage);
      extra['vdi-parent-modification-uuid'] = guidToString(h.uuidParentModify);
      if (this.parent?.modified)
        extra['vdi-parent-note'] = 'the parent was modified after this differencing image was made; its data may not match';
    }
    if (h.comment) extra['vdi-comment'] = h.comment;
    info.extra = extra;
    if (this.parent) {
      setBackingInfo(info, this.src.name, this.parent.name, 'vdi');
    }
    return info;
  }

  async close(): Promise<void> {
    await this.src.close?.();
  }
}

/** Differencing and undo images fall through to their parent where a block is FREE. */
export function isDiff(h: VdiHeader): boolean {
  return h.type === VDI_TYPE_DIFF || h.type === VDI_TYPE_UNDO;
}
