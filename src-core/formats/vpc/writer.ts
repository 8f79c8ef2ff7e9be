import { baseName, dirName, joinRelative, normalizePath, readPadded, type ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero } from '../../io/struct.ts';
import { identityFor, parseUuidOption, uuidOption } from '../../image/identity.ts';
import { checkOptions, parseBool } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import {
  BAT_UNUSED,
  bitmapBytes,
  buildDynamicHeader,
  DYNAMIC_HEADER_SIZE,
  encodeUtf16,
  type ParentFields,
  type ParentLocator,
} from './dynamicHeader.ts';
import {
  buildFooter,
  chsGeometry,
  DISK_DIFFERENCING,
  DISK_DYNAMIC,
  DISK_FIXED,
  FOOTER_SIZE,
  hasCookie,
  parseFooter,
  sizeRule,
  MAX_CYLINDERS,
  MAX_HEADS,
  MAX_SPT,
  roundUpToChs,
  VHD_MAX_SECTORS,
  vhdTimestamp,
} from './footer.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

export const VPC_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  {
    name: 'subformat',
    type: 'enum',
    values: ['dynamic', 'fixed'],
    default: 'dynamic',
    help: 'dynamic (sparse, default) or fixed (data then footer; what Azure wants)',
  },
  {
    name: 'force_size',
    type: 'bool',
    help: 'unset (default): keep the exact size, creator "win " (QEMU, Hyper-V and libvhdi read it); on: as qemu-img, creator "qem2" with saturated CHS; off: as qemu-img, round the size up to a CHS geometry (creator "qemu", Virtual PC compatible)',
  },
  uuidOption("the footer's unique id (Hyper-V and Azure identify the disk by it); random unless given"),
];

/** QEMU's (and the spec's) block size for dynamic disks. */
const BLOCK_SIZE = 2 * 1024 * 1024;
/** Hyper-V writes "win " with version 10.0; QEMU reads any "win " image by its current size. */
const WIN_VERSION = 0x000a0000;
/** QEMU's footer version for "qemu" and "qem2" (Virtual PC 2007). */
const QEMU_VERSION = 0x00050003;

export interface VpcLayout {
  fixed: boolean;
  /** Bytes stored as current size (a multiple of 512). */
  size: number;
  creatorApp: string;
  creatorVersion: number;
  geometry: { cylinders: number; heads: number; sectorsPerTrack: number };
  warnings: string[];
  /** The footer's unique id (RFC 4122 byte order) and time stamp (image/identity.ts). */
  uuid: Uint8Array;
  timestamp: number;
}

/** The layout with the ids: -o uuid= or the identity source's, and its time. */
export function planVpc(opts: CreateOptions): VpcLayout {
  const size = planSize(opts);
  const id = identityFor(opts, 'vpc');
  return { ...size, uuid: parseUuidOption(opts) ?? id.uuid('vhd footer'), timestamp: vhdTimestamp(id.time()) };
}

/**
 * How the disk is sized. By default the exact size is kept under creator "win ", which QEMU
 * (vpc_open's creator table), Hyper-V and libvhdi all size by the footer's current size; the CHS
 * geometry is the spec's (rounded down), which only Virtual PC uses. force_size=on/off follow
 * qemu-img exactly (vpc_co_create / calculate_rounded_image_size).
 */
function planSize(opts: CreateOptions): Omit<VpcLayout, 'uuid' | 'timestamp'> {
  const o = opts.options;
  checkOptions('vpc', o, VPC_CREATE_OPTIONS);
  const fixed = (o.subformat ?? 'dynamic') === 'fixed';
  const size = alignUp(opts.virtualSize, 512);
  const sectors = size / 512;
  if (sectors > VHD_MAX_SECTORS)
    throw new InvalidArgumentError(`VHD disks are at most 2040 GiB (${VHD_MAX_SECTORS * 512} bytes); this one is ${size}`);
  const warnings: string[] = [];
  if (size !== opts.virtualSize) warnings.push(`the VHD size is rounded up to whole sectors: ${size} bytes instead of ${opts.virtualSize}`);
  if (o.force_size !== undefined && parseBool(o.force_size, 'force_size')) {
    return {
      fixed,
      size,
      creatorApp: 'qem2',
      creatorVersion: QEMU_VERSION,
      geometry: { cylinders: MAX_CYLINDERS, heads: MAX_HEADS, sectorsPerTrack: MAX_SPT },
      warnings,
    };
  }
  if (o.force_size !== undefined) {
    const r = roundUpToChs(sectors);
    if (r.sectors !== sectors)
      warnings.push(`force_size=off: the disk grows to its CHS size, ${r.sectors * 512} bytes (as qemu-img makes it)`);
    return { fixed, size: r.sectors * 512, creatorApp: 'qemu', creatorVersion: QEMU_VERSION, geometry: r, warnings };
  }
  const geometry = chsGeometry(sectors);
  const chs = geometry.cylinders * geometry.heads * geometry.sectorsPerTrack;
  if (chs !== sectors && sectors < MAX_CYLINDERS * MAX_HEADS * MAX_SPT) {
    warnings.push(
      `the VHD keeps the exact size ${size} bytes (creator "win ": QEMU, Hyper-V and libvhdi read that size); Virtual PC would see only its CHS size, ${chs * 512} bytes`,
    );
  }
  if (fixed && size % (1024 * 1024) !== 0)
    warnings.push(`Azure accepts only fixed VHDs whose size is a whole number of MiB; this one is ${size} bytes`);
  return { fixed, size, creatorApp: 'win ', creatorVersion: WIN_VERSION, geometry, warnings };
}

export async function createVpcWriter(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  if (opts.compress) throw new UnsupportedError(opts.filename, 'VHD has no compression (-c)');
  const layout = planVpc(opts);
  if (opts.backing) return new DifferencingVpcWriter(sink, layout, await parentFor(opts, layout));
  return layout.fixed ? new FixedVpcWriter(sink, layout) : new DynamicVpcWriter(sink, layout);
}

function footerFor(layout: VpcLayout, diskType: number, dataOffset: number): Uint8Array {
  return buildFooter({
    dataOffset,
    creatorApp: layout.creatorApp,
    creatorVersion: layout.creatorVersion,
    size: layout.size,
    geometry: layout.geometry,
    diskType,
    uuid: layout.uuid,
    timestamp: layout.timestamp,
  });
}

/** Fixed: the guest bytes at their own offsets, then the footer. */
class FixedVpcWriter implements ImageWriter {
  readonly granularity = 64 * 1024;
  readonly warnings: string[];
  private readonly out: SinkBuffer;
  constructor(
    private readonly sink: ByteSink,
    private readonly layout: VpcLayout,
  ) {
    this.warnings = layout.warnings;
    this.out = new SinkBuffer(sink);
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset + data.length > this.layout.size) throw new RangeError('vpc writer: write past the end of the disk');
    // Not copied (ImageWriter: callers never change what they handed over).
    await this.out.writeOwned(offset, data);
  }
  async writeZeroes(): Promise<void> {}
  async finish(): Promise<void> {
    await this.out.write(this.layout.size, footerFor(this.layout, DISK_FIXED, -1));
    await this.out.flush();
    // Zeros in between stay holes where the platform supports sparse files.
    if (this.sink.truncate) await this.sink.truncate(this.layout.size + FOOTER_SIZE);
  }
}

/**
 * What the dynamic and differencing writers share: the layout up to the blocks (footer copy at 0,
 * dynamic header at 512, BAT at 1536), blocks appended at the end, the tables written last.
 */
abstract class BlockTableVpcWriter implements ImageWriter {
  readonly warnings: string[];
  protected readonly out: SinkBuffer;
  protected readonly bat: Uint32Array;
  protected readonly batOffset = FOOTER_SIZE + DYNAMIC_HEADER_SIZE;
  protected readonly bitmapSize = bitmapBytes(BLOCK_SIZE);
  /** Where the next block goes: past the BAT (and whatever a subclass reserves after it). */
  protected end: number;
  protected readonly order: WriteOrder;

  constructor(
    protected readonly sink: ByteSink,
    protected readonly layout: VpcLayout,
    readonly granularity: number,
    orderedSize: number,
  ) {
    this.warnings = layout.warnings;
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('vpc', granularity, orderedSize);
    const entries = Math.ceil(layout.size / BLOCK_SIZE);
    this.bat = new Uint32Array(entries).fill(BAT_UNUSED);
    this.end = this.batOffset + alignUp(entries * 4, 512);
  }

  abstract write(offset: number, data: Uint8Array): Promise<void>;
  abstract writeZeroes(offset: number, length: number): Promise<void>;
  abstract finish(): Promise<void>;

  /** Appends block `index` (sector bitmap, then data) at the end and points its BAT entry there. */
  protected async appendBlock(index: number, bitmap: Uint8Array, block: Uint8Array): Promise<void> {
    this.bat[index] = this.end / 512;
    await this.out.write(this.end, bitmap);
    await this.out.write(this.end + this.bitmapSize, block);
    // Every block is whole in the file: QEMU refuses a file whose last block is cut short.
    if (block.length < BLOCK_SIZE)
      await this.out.write(this.end + this.bitmapSize + block.length, new Uint8Array(BLOCK_SIZE - block.length));
    this.end += this.bitmapSize + BLOCK_SIZE;
  }

  /** The footer after the last block, then the footer copy, dynamic header and BAT at the start. */
  protected async writeTables(diskType: number, parent?: ParentFields): Promise<void> {
    const footer = footerFor(this.layout, diskType, FOOTER_SIZE);
    const batBytes = new Uint8Array(alignUp(this.bat.length * 4, 512)).fill(0xff);
    const v = new DataView(batBytes.buffer);
    for (let i = 0; i < this.bat.length; i++) v.setUint32(i * 4, this.bat[i]!);
    await this.out.write(this.end, footer);
    await this.out.flush();
    await this.sink.write(0, footer);
    await this.sink.write(FOOTER_SIZE, buildDynamicHeader(this.batOffset, this.bat.length, BLOCK_SIZE, parent));
    await this.sink.write(this.batOffset, batBytes);
  }

  protected async truncateAfterFooter(): Promise<void> {
    if (this.sink.truncate) await this.sink.truncate(this.end + FOOTER_SIZE);
  }
}

/**
 * Dynamic, in QEMU's layout (create_dynamic_disk): footer copy at 0, dynamic header at 512, BAT
 * at 1536, then each block (all-ones sector bitmap, then data) in guest order, footer last.
 * The BAT size is known up front, so blocks can be written as they arrive and the BAT at the end.
 */
class DynamicVpcWriter extends BlockTableVpcWriter {
  constructor(sink: ByteSink, layout: VpcLayout) {
    super(sink, layout, BLOCK_SIZE, alignUp(layout.size, BLOCK_SIZE));
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    const bitmap = new Uint8Array(this.bitmapSize).fill(0xff);
    for (let pos = 0; pos < data.length; pos += BLOCK_SIZE) {
      const block = data.subarray(pos, pos + BLOCK_SIZE);
      if (isAllZero(block)) continue; // an unallocated block reads as zeros
      await this.appendBlock((offset + pos) / BLOCK_SIZE, bitmap, block);
    }
  }

  async writeZeroes(): Promise<void> {}

  async finish(): Promise<void> {
    await this.writeTables(DISK_DYNAMIC);
    await this.truncateAfterFooter();
  }
}

/** What a differencing disk records of its parent, and where its locators' paths go. */
interface ParentLink {
  fields: ParentFields;
  /** Locator path bytes (UTF-16LE), in the order of `fields.locators`. */
  paths: Uint8Array[];
}

/** A path in Windows form, as the W2ku/W2ru locators and the header's parent name hold it. */
const windowsPath = (p: string) => p.replace(/\//g, '\\');
const isAbsolute = (p: string) => p.startsWith('/') || /^[a-z]:[\\/]/i.test(p);

/** `to` relative to the folder `fromDir`, both absolute POSIX paths. */
function relativePath(fromDir: string, to: string): string {
  const a = normalizePath(fromDir).split('/').filter(Boolean);
  const b = normalizePath(to).split('/').filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/');
}

/**
 * The parent of a differencing VHD (VHD spec §"Dynamic Disk Header Format"; what Hyper-V and
 * VirtualBox write): its footer UUID and time stamp, its name in the header, and two locators,
 * W2ku (the absolute path as far as it is known here: the name joined to the new file's folder)
 * and W2ru (".\" and the path relative to the new file). Data space is in bytes, as Virtual PC,
 * Hyper-V and VirtualBox store it (the spec says sectors), one sector at least.
 */
async function parentFor(opts: CreateOptions, layout: VpcLayout): Promise<ParentLink> {
  const b = opts.backing!;
  if (layout.fixed)
    throw new InvalidArgumentError('a differencing VHD cannot be fixed (subformat=fixed with a backing file)', opts.filename);
  if (b.format && b.format !== 'vpc')
    throw new InvalidArgumentError(`the parent of a differencing VHD must be a VHD (vpc), not ${b.format}`, opts.filename);
  if (!opts.resolver) throw new UnsupportedError(opts.filename, `the parent "${b.name}" cannot be opened here to link it`);
  const src = await opts.resolver.open(b.name, opts.filename);
  let footer;
  try {
    let f = await readPadded(src, 0, FOOTER_SIZE);
    let where = 'at offset 0';
    if (!hasCookie(f)) {
      f = await readPadded(src, Math.max(0, src.size - FOOTER_SIZE), FOOTER_SIZE);
      where = 'at the end of the file';
    }
    footer = parseFooter(b.name, f, where);
  } finally {
    await src.close?.();
  }
  const parentSize = sizeRule(footer).size;
  if (parentSize !== layout.size) {
    throw new InvalidArgumentError(
      `a differencing VHD must have its parent's size: ${b.name} is ${parentSize} bytes, the new disk ${layout.size}`,
      opts.filename,
    );
  }
  // The child reads as its parent does: same geometry (only Virtual PC sizes by it).
  layout.geometry = { cylinders: footer.cylinders, heads: footer.heads, sectorsPerTrack: footer.sectorsPerTrack };
  const absolute = isAbsolute(b.name) ? b.name : isAbsolute(opts.filename) ? joinRelative(opts.filename, b.name) : b.name;
  let relative: string;
  if (!isAbsolute(b.name)) relative = normalizePath(b.name);
  else if (b.name.startsWith('/') && opts.filename.startsWith('/')) relative = relativePath(dirName(opts.filename), b.name);
  else relative = baseName(windowsPath(b.name).replace(/\\/g, '/'));
  const texts: [string, string][] = [
    ['W2ku', windowsPath(absolute)],
    ['W2ru', windowsPath(relative.startsWith('../') ? relative : `./${relative}`)],
  ];
  const paths = texts.map(([, t]) => encodeUtf16(t, true));
  const locators: ParentLocator[] = texts.map(([code], i) => ({
    code,
    dataSpace: Math.max(512, alignUp(paths[i]!.length, 512)),
    dataLength: paths[i]!.length,
    dataOffset: 0,
  }));
  // The header holds 255 UTF-16 units: the whole path when it fits (as Hyper-V writes it), else the file name.
  let name = windowsPath(absolute);
  if (name.length > 255) name = baseName(absolute.replace(/\\/g, '/'));
  if (name.length > 255)
    throw new InvalidArgumentError(`the parent's file name is longer than the 255 characters a VHD header holds: ${name}`, opts.filename);
  return { fields: { uuid: footer.uuid, timestamp: footer.timestamp, name, locators }, paths };
}

/**
 * The differencing writer's unit: 4 KiB, one bitmap byte. libvhdi reads a sector bitmap a byte
 * at a time (a byte with any bit set sends all 8 sectors to the child), and Hyper-V writes
 * 4 KiB pages too, so the child holds whole pages: each one that differs from the parent anywhere.
 */
const PAGE = 4096;

/**
 * Differencing: the dynamic layout (footer copy, header, BAT), then the locators' paths, then
 * blocks. Data arrives in pages; a block is allocated when the child first holds a page of it,
 * and its bitmap marks exactly the sectors of the pages the child holds (every other sector reads
 * from the parent; its bytes here stay zero). Zeros over the parent are held like any data.
 */
class DifferencingVpcWriter extends BlockTableVpcWriter {
  /** The block being filled: its index, sector bitmap and data. */
  private cur: { index: number; bitmap: Uint8Array; data: Uint8Array } | undefined;
  constructor(
    sink: ByteSink,
    layout: VpcLayout,
    private readonly parent: ParentLink,
  ) {
    super(sink, layout, PAGE, layout.size);
    // The locators' paths sit between the BAT and the first block.
    for (const l of parent.fields.locators) {
      l.dataOffset = this.end;
      this.end += l.dataSpace;
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    await this.hold(offset, data.length, data);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.order.check(offset, length);
    await this.hold(offset, length, undefined);
  }

  /** Copies sectors into their blocks (zeros when `data` is undefined) and marks them held. */
  private async hold(offset: number, length: number, data: Uint8Array | undefined): Promise<void> {
    for (let pos = 0; pos < length;) {
      const guest = offset + pos;
      const index = Math.floor(guest / BLOCK_SIZE);
      const inBlock = guest - index * BLOCK_SIZE;
      const n = Math.min(length - pos, BLOCK_SIZE - inBlock);
      if (this.cur?.index !== index) {
        await this.flushBlock();
        this.cur = { index, bitmap: new Uint8Array(this.bitmapSize), data: new Uint8Array(BLOCK_SIZE) };
      }
      if (data) this.cur.data.set(data.subarray(pos, pos + n), inBlock);
      const first = inBlock / 512;
      const last = Math.ceil((inBlock + n) / 512);
      for (let s = first; s < last; s++) this.cur.bitmap[s >> 3]! |= 0x80 >> (s & 7);
      pos += n;
    }
  }

  private async flushBlock(): Promise<void> {
    const c = this.cur;
    if (!c) return;
    this.cur = undefined;
    await this.appendBlock(c.index, c.bitmap, c.data);
  }

  async finish(): Promise<void> {
    await this.flushBlock();
    await this.writeTables(DISK_DIFFERENCING, this.parent.fields);
    for (let i = 0; i < this.parent.paths.length; i++) {
      const l = this.parent.fields.locators[i]!;
      const space = new Uint8Array(l.dataSpace);
      space.set(this.parent.paths[i]!);
      await this.sink.write(l.dataOffset, space);
    }
    await this.truncateAfterFooter();
  }
}
