import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { randomUuidBigEndian } from '../../io/guid.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { isAllZero } from '../../io/struct.ts';
import { checkOptions, parseBool } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import { BAT_UNUSED, bitmapBytes, buildDynamicHeader, DYNAMIC_HEADER_SIZE } from './dynamicHeader.ts';
import {
  buildFooter,
  chsGeometry,
  DISK_DYNAMIC,
  DISK_FIXED,
  FOOTER_SIZE,
  MAX_CYLINDERS,
  MAX_HEADS,
  MAX_SPT,
  roundUpToChs,
  VHD_MAX_SECTORS,
  vhdTimestampNow,
} from './footer.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

export const VPC_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  { name: 'subformat', type: 'enum', values: ['dynamic', 'fixed'], default: 'dynamic', help: 'dynamic (sparse, default) or fixed (data then footer; what Azure wants)' },
  {
    name: 'force_size',
    type: 'bool',
    help: 'unset (default): keep the exact size, creator "win " (QEMU, Hyper-V and libvhdi read it); on: as qemu-img, creator "qem2" with saturated CHS; off: as qemu-img, round the size up to a CHS geometry (creator "qemu", Virtual PC compatible)',
  },
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
}

/**
 * How the disk is sized. By default the exact size is kept under creator "win ", which QEMU
 * (vpc_open's creator table), Hyper-V and libvhdi all size by the footer's current size; the CHS
 * geometry is the spec's (rounded down), which only Virtual PC uses. force_size=on/off follow
 * qemu-img exactly (vpc_co_create / calculate_rounded_image_size).
 */
export function planVpc(opts: CreateOptions): VpcLayout {
  const o = opts.options;
  checkOptions('vpc', o, VPC_CREATE_OPTIONS);
  const fixed = (o.subformat ?? 'dynamic') === 'fixed';
  const size = alignUp(opts.virtualSize, 512);
  const sectors = size / 512;
  if (sectors > VHD_MAX_SECTORS) throw new InvalidArgumentError(`VHD disks are at most 2040 GiB (${VHD_MAX_SECTORS * 512} bytes); this one is ${size}`);
  const warnings: string[] = [];
  if (size !== opts.virtualSize) warnings.push(`the VHD size is rounded up to whole sectors: ${size} bytes instead of ${opts.virtualSize}`);
  if (o.force_size !== undefined && parseBool(o.force_size, 'force_size')) {
    return { fixed, size, creatorApp: 'qem2', creatorVersion: QEMU_VERSION, geometry: { cylinders: MAX_CYLINDERS, heads: MAX_HEADS, sectorsPerTrack: MAX_SPT }, warnings };
  }
  if (o.force_size !== undefined) {
    const r = roundUpToChs(sectors);
    if (r.sectors !== sectors) warnings.push(`force_size=off: the disk grows to its CHS size, ${r.sectors * 512} bytes (as qemu-img makes it)`);
    return { fixed, size: r.sectors * 512, creatorApp: 'qemu', creatorVersion: QEMU_VERSION, geometry: r, warnings };
  }
  const geometry = chsGeometry(sectors);
  const chs = geometry.cylinders * geometry.heads * geometry.sectorsPerTrack;
  if (chs !== sectors && sectors < MAX_CYLINDERS * MAX_HEADS * MAX_SPT) {
    warnings.push(
      `the VHD keeps the exact size ${size} bytes (creator "win ": QEMU, Hyper-V and libvhdi read that size); Virtual PC would see only its CHS size, ${chs * 512} bytes`,
    );
  }
  if (fixed && size % (1024 * 1024) !== 0) warnings.push(`Azure accepts only fixed VHDs whose size is a whole number of MiB; this one is ${size} bytes`);
  return { fixed, size, creatorApp: 'win ', creatorVersion: WIN_VERSION, geometry, warnings };
}

export async function createVpcWriter(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  if (opts.backing) throw new UnsupportedError(opts.filename, 'DiskFerry does not write differencing VHDs (no backing file for vpc)');
  if (opts.compress) throw new UnsupportedError(opts.filename, 'VHD has no compression (-c)');
  const layout = planVpc(opts);
  return layout.fixed ? new FixedVpcWriter(sink, layout) : new DynamicVpcWriter(sink, layout);
}

function footerFor(layout: VpcLayout, diskType: number, dataOffset: number, uuid: Uint8Array): Uint8Array {
  return buildFooter({
    dataOffset,
    creatorApp: layout.creatorApp,
    creatorVersion: layout.creatorVersion,
    size: layout.size,
    geometry: layout.geometry,
    diskType,
    uuid,
    timestamp: vhdTimestampNow(),
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
    await this.out.write(offset, data);
  }
  async writeZeroes(): Promise<void> {}
  async finish(): Promise<void> {
    await this.out.write(this.layout.size, footerFor(this.layout, DISK_FIXED, -1, randomUuidBigEndian()));
    await this.out.flush();
    // Zeros in between stay holes where the platform supports sparse files.
    if (this.sink.truncate) await this.sink.truncate(this.layout.size + FOOTER_SIZE);
    await this.sink.close();
  }
}

/**
 * Dynamic, in QEMU's layout (create_dynamic_disk): footer copy at 0, dynamic header at 512, BAT
 * at 1536, then each block (all-ones sector bitmap, then data) in guest order, footer last.
 * The BAT size is known up front, so blocks can be written as they arrive and the BAT at the end.
 */
class DynamicVpcWriter implements ImageWriter {
  readonly granularity = BLOCK_SIZE;
  readonly warnings: string[];
  private readonly out: SinkBuffer;
  private readonly bat: Uint32Array;
  private readonly batOffset = FOOTER_SIZE + DYNAMIC_HEADER_SIZE;
  private readonly bitmapSize = bitmapBytes(BLOCK_SIZE);
  private end: number;
  private readonly order: WriteOrder;
  constructor(
    private readonly sink: ByteSink,
    private readonly layout: VpcLayout,
  ) {
    this.warnings = layout.warnings;
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('vpc', BLOCK_SIZE, alignUp(layout.size, BLOCK_SIZE));
    const entries = Math.ceil(layout.size / BLOCK_SIZE);
    this.bat = new Uint32Array(entries).fill(BAT_UNUSED);
    this.end = this.batOffset + alignUp(entries * 4, 512);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    const bitmap = new Uint8Array(this.bitmapSize).fill(0xff);
    for (let pos = 0; pos < data.length; pos += BLOCK_SIZE) {
      const block = data.subarray(pos, pos + BLOCK_SIZE);
      if (isAllZero(block)) continue; // an unallocated block reads as zeros
      const index = (offset + pos) / BLOCK_SIZE;
      this.bat[index] = this.end / 512;
      await this.out.write(this.end, bitmap);
      await this.out.write(this.end + this.bitmapSize, block);
      // Every block is whole in the file: QEMU refuses a file whose last block is cut short.
      if (block.length < BLOCK_SIZE) await this.out.write(this.end + this.bitmapSize + block.length, new Uint8Array(BLOCK_SIZE - block.length));
      this.end += this.bitmapSize + BLOCK_SIZE;
    }
  }

  async writeZeroes(): Promise<void> {}

  async finish(): Promise<void> {
    const footer = footerFor(this.layout, DISK_DYNAMIC, FOOTER_SIZE, randomUuidBigEndian());
    const batBytes = new Uint8Array(alignUp(this.bat.length * 4, 512)).fill(0xff);
    const v = new DataView(batBytes.buffer);
    for (let i = 0; i < this.bat.length; i++) v.setUint32(i * 4, this.bat[i]!);
    await this.out.write(this.end, footer);
    await this.out.flush();
    await this.sink.write(0, footer);
    await this.sink.write(FOOTER_SIZE, buildDynamicHeader(this.batOffset, this.bat.length, BLOCK_SIZE));
    await this.sink.write(this.batOffset, batBytes);
    if (this.sink.truncate) await this.sink.truncate(this.end + FOOTER_SIZE);
    await this.sink.close();
  }
}
