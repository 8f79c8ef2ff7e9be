import type { ByteSink } from '../../io/bytes.ts';
import { InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { alignUp, isPowerOfTwo } from '../../io/int64.ts';
import { SinkBuffer } from '../../io/sinkBuffer.ts';
import { Struct, writeBig64Table } from '../../io/struct.ts';
import { crc32c } from '../../codecs/crc32c.ts';
import { checkOptions, parseBool, parseSize } from '../../image/options.ts';
import type { CreateOptions, CreateOptionSpec, ImageWriter } from '../../image/types.ts';
import { batGeometry, makeEntry, payloadIndex, type BatGeometry } from './bat.ts';
import { guidToString } from '../../io/guid.ts';
import { identityFor, parseUuidOption, toGuidLayout, uuidOption } from '../../image/identity.ts';
import { readStructure } from './reader.ts';
import {
  BAT,
  BAT_REGION_GUID,
  BLOCK_SIZE_MAX,
  DEFAULT_LOG_SIZE,
  GiB,
  HEADER1_OFFSET,
  HEADER2_OFFSET,
  HEADER_SECTION_END,
  HEADER_SIZE,
  MAX_VIRTUAL_SIZE,
  METADATA_REGION_GUID,
  METADATA_SIGNATURE,
  METADATA_TABLE_SIZE,
  META_FILE_PARAMETERS,
  META_FLAG_IS_REQUIRED,
  META_FLAG_IS_VIRTUAL_DISK,
  META_LOGICAL_SECTOR,
  META_PAGE83,
  META_PARENT_LOCATOR,
  META_PHYSICAL_SECTOR,
  META_VIRTUAL_DISK_SIZE,
  MiB,
  PARAM_HAS_PARENT,
  PARAM_LEAVE_BLOCKS_ALLOCATED,
  PARENT_TYPE_VHDX,
  REGION_REQUIRED,
  REGION_TABLE1_OFFSET,
  REGION_TABLE2_OFFSET,
  REGION_TABLE_SIZE,
  SIG_HEAD,
  SB_PRESENT,
  SIG_REGI,
  TiB,
} from './layout.ts';
import { WriteOrder } from '../../image/writeOrder.ts';

export const VHDX_CREATE_OPTIONS: readonly CreateOptionSpec[] = [
  {
    name: 'subformat',
    type: 'enum',
    values: ['dynamic', 'fixed'],
    default: 'dynamic',
    help: 'dynamic (blocks allocated as data arrives) or fixed (every block present, as Hyper-V makes them)',
  },
  {
    name: 'block_size',
    type: 'size',
    default: '0',
    help: 'payload block size, 1M to 256M, a power of two; 0 picks by disk size like qemu-img (8M up to 1G, 16M, 32M over 100G, 64M over 32T)',
  },
  { name: 'log_size', type: 'size', default: '1M', help: 'size of the (empty) log region, a multiple of 1M' },
  {
    name: 'block_state_zero',
    type: 'bool',
    default: 'off',
    help: "mark unwritten blocks of a dynamic image ZERO instead of NOT_PRESENT (qemu-img's default; non-standard)",
  },
  uuidOption(
    "the disk's id: the page 83 virtual disk id (Hyper-V's DiskIdentifier) and the DataWriteGuid (libvhdi's Identifier); random unless given",
  ),
];

const SECTOR = 512;

export interface VhdxWriterConfig {
  fixed: boolean;
  blockSize: number;
  logSize: number;
  blockStateZero: boolean;
  virtualSize: number;
  /** Set for a differencing file: the parent's name as stored and its DataWriteGuid. */
  parent?: { name: string; dataWriteGuid: Uint8Array };
  /** Microsoft-layout GUIDs: FileWriteGuid, DataWriteGuid, the page 83 virtual disk id. */
  ids: { file: Uint8Array; data: Uint8Array; page83: Uint8Array };
}

/** qemu-img's option handling (vhdx_co_create_opts / vhdx_co_create): sizes rounded up to 512 and 1 MiB. */
export function parseVhdxOptions(opts: CreateOptions): VhdxWriterConfig {
  const o = opts.options;
  checkOptions('vhdx', o, VHDX_CREATE_OPTIONS);
  const virtualSize = alignUp(opts.virtualSize, SECTOR);
  if (virtualSize > MAX_VIRTUAL_SIZE) throw new InvalidArgumentError('image size too large: VHDX holds at most 64 TiB', opts.filename);
  const logSize = alignUp(o.log_size ? parseSize(o.log_size, 'log_size') : DEFAULT_LOG_SIZE, MiB);
  if (logSize < MiB || logSize > 0xffffffff - MiB) throw new InvalidArgumentError('log_size must be between 1M and 4G', opts.filename);
  let blockSize = alignUp(o.block_size ? parseSize(o.block_size, 'block_size') : 0, MiB);
  if (!blockSize)
    blockSize = virtualSize > 32 * TiB ? 64 * MiB : virtualSize > 100 * GiB ? 32 * MiB : virtualSize > GiB ? 16 * MiB : 8 * MiB;
  blockSize = Math.min(blockSize, BLOCK_SIZE_MAX);
  if (!isPowerOfTwo(blockSize)) throw new InvalidArgumentError(`block_size must be a power of two (got ${blockSize})`, opts.filename);
  const sub = o.subformat ?? 'dynamic';
  // -o uuid= names the disk: both the id Hyper-V shows (page 83) and the one tools print (DataWriteGuid).
  const id = identityFor(opts, 'vhdx');
  const given = parseUuidOption(opts);
  const ids = {
    file: id.guid('vhdx file write'),
    data: given ? toGuidLayout(given) : id.guid('vhdx data write'),
    page83: given ? toGuidLayout(given) : id.guid('vhdx page83'),
  };
  return {
    fixed: sub === 'fixed',
    blockSize,
    logSize,
    blockStateZero: parseBool(o.block_state_zero, 'block_state_zero'),
    virtualSize,
    ids,
  };
}

export interface VhdxLayout {
  geometry: BatGeometry;
  batOffset: number;
  batLength: number;
  metadataOffset: number;
  /** Where payload blocks begin: after the 1 MiB metadata region. */
  dataStart: number;
}

/** Header section, log at 1 MiB, BAT (whole MiBs), 1 MiB of metadata, then data (QEMU's order). */
export function vhdxLayout(cfg: VhdxWriterConfig): VhdxLayout {
  const geometry = batGeometry(cfg.virtualSize, cfg.blockSize, SECTOR, !!cfg.parent);
  const batOffset = alignUp(HEADER_SECTION_END + cfg.logSize, MiB);
  const batLength = alignUp(Math.max(1, geometry.entries * 8), MiB);
  const metadataOffset = batOffset + batLength;
  return { geometry, batOffset, batLength, metadataOffset, dataStart: metadataOffset + MiB };
}

export async function createVhdxWriter(sink: ByteSink, opts: CreateOptions): Promise<ImageWriter> {
  if (opts.compress) throw new UnsupportedError(opts.filename, 'VHDX has no compression');
  const cfg = parseVhdxOptions(opts);
  if (opts.backing) cfg.parent = await parentFor(opts, cfg);
  return new VhdxWriter(sink, cfg);
}

/**
 * A differencing VHDX names its parent (MS-VHDX 2.6.2.6): the parent must be a VHDX of the same
 * virtual size, and parent_linkage records its DataWriteGuid so a later change to it is noticed.
 */
async function parentFor(opts: CreateOptions, cfg: VhdxWriterConfig): Promise<VhdxWriterConfig['parent']> {
  const b = opts.backing!;
  if (cfg.fixed) throw new InvalidArgumentError('a differencing VHDX cannot be fixed (subformat=fixed with a backing file)', opts.filename);
  if (b.format && b.format !== 'vhdx')
    throw new InvalidArgumentError(`the parent of a differencing VHDX must be a VHDX, not ${b.format}`, opts.filename);
  if (!opts.resolver) throw new UnsupportedError(opts.filename, `the parent "${b.name}" cannot be opened here to link it`);
  const src = await opts.resolver.open(b.name, opts.filename);
  try {
    const s = await readStructure(src, {});
    if (s.metadata.virtualSize !== cfg.virtualSize) {
      throw new InvalidArgumentError(
        `a differencing VHDX must have its parent's size: ${b.name} is ${s.metadata.virtualSize} bytes, the new disk ${cfg.virtualSize}`,
        opts.filename,
      );
    }
    return { name: b.name, dataWriteGuid: s.header.dataWriteGuid };
  } finally {
    await src.close?.();
  }
}

/**
 * Lays out a VHDX the way qemu-img does (header section, log at 1 MiB, BAT, 1 MiB of metadata,
 * then payload blocks at 1 MiB multiples), writing data as it arrives and the BAT, metadata,
 * region tables and headers at the end. A dynamic file allocates a block on its first data,
 * in guest order; a fixed file places block i at dataStart + i·blockSize and marks every block
 * FULLY_PRESENT with LeaveBlocksAllocated — really fixed, unlike qemu-img's default (§4.5).
 */
export class VhdxWriter implements ImageWriter {
  /** 1 MiB: data arrives in pieces a quarter of a 4 MiB batch can hold; blocks fill in place. */
  readonly granularity = MiB;
  private readonly g: BatGeometry;
  private readonly bat: BigUint64Array;
  private readonly batOffset: number;
  private readonly batLength: number;
  private readonly metadataOffset: number;
  private readonly dataStart: number;
  private nextFree: number;
  private readonly order: WriteOrder;
  private readonly out: SinkBuffer;
  /** Differencing files: the sector bitmap of the chunk being written (writes come in order). */
  private chunk: { index: number; bitmap: Uint8Array } | undefined;

  constructor(
    private readonly sink: ByteSink,
    private readonly cfg: VhdxWriterConfig,
  ) {
    const layout = vhdxLayout(cfg);
    this.g = layout.geometry;
    this.bat = new BigUint64Array(this.g.entries);
    this.batOffset = layout.batOffset;
    this.batLength = layout.batLength;
    this.metadataOffset = layout.metadataOffset;
    this.dataStart = layout.dataStart;
    this.nextFree = this.dataStart;
    this.out = new SinkBuffer(sink);
    this.order = new WriteOrder('vhdx', SECTOR, alignUp(cfg.virtualSize, this.granularity));
    // ZERO would hide the parent, so a differencing file starts NOT_PRESENT whatever the option says.
    const empty = BigInt(cfg.blockStateZero && !cfg.parent ? BAT.ZERO : BAT.NOT_PRESENT);
    for (let b = 0; b < this.g.payloadBlocks; b++) {
      const i = payloadIndex(this.g, b);
      this.bat[i] = cfg.fixed ? makeEntry(BAT.FULLY_PRESENT, this.dataStart + b * cfg.blockSize) : empty;
    }
    if (cfg.fixed) this.nextFree = this.dataStart + this.g.payloadBlocks * cfg.blockSize;
  }

  /**
   * Host offset of block `b`, allocating it in a dynamic file. A differencing file's new block
   * starts PARTIALLY_PRESENT; the chunk's flush makes it FULLY_PRESENT if every sector was written.
   */
  private blockHost(b: number): number {
    const i = payloadIndex(this.g, b);
    const e = this.bat[i]!;
    const state = Number(e & 7n);
    if (state === BAT.FULLY_PRESENT || state === BAT.PARTIALLY_PRESENT) return Number(e >> 20n) * MiB;
    const at = this.nextFree;
    this.nextFree += this.cfg.blockSize;
    this.bat[i] = makeEntry(this.cfg.parent ? BAT.PARTIALLY_PRESENT : BAT.FULLY_PRESENT, at);
    return at;
  }

  /** Bytes of guest space one sector-bitmap block covers. */
  private get chunkBytes(): number {
    return this.g.chunkRatio * this.cfg.blockSize;
  }

  /** Marks guest sectors [guest, guest+length) as held by this (differencing) file. */
  private async markPresent(guest: number, length: number): Promise<void> {
    const index = Math.floor(guest / this.chunkBytes);
    if (this.chunk?.index !== index) {
      await this.flushChunk();
      this.chunk = { index, bitmap: new Uint8Array(MiB) };
    }
    const first = (guest - index * this.chunkBytes) / SECTOR;
    setBits(this.chunk!.bitmap, first, Math.ceil(length / SECTOR));
  }

  /**
   * Settles the chunk's blocks: FULLY_PRESENT when every sector (inside the disk) is this file's,
   * else PARTIALLY_PRESENT with the chunk's 1 MiB sector bitmap (LSB-first) written after the data.
   */
  private async flushChunk(): Promise<void> {
    const c = this.chunk;
    if (!c) return;
    this.chunk = undefined;
    const perBlock = this.cfg.blockSize / SECTOR;
    let partial = false;
    for (let k = 0; k < this.g.chunkRatio; k++) {
      const b = c.index * this.g.chunkRatio + k;
      if (b >= this.g.payloadBlocks) break;
      const i = payloadIndex(this.g, b);
      if (Number(this.bat[i]! & 7n) !== BAT.PARTIALLY_PRESENT) continue;
      const sectors = Math.min(perBlock, (this.cfg.virtualSize - b * this.cfg.blockSize) / SECTOR);
      if (allBitsSet(c.bitmap, k * perBlock, sectors)) this.bat[i] = makeEntry(BAT.FULLY_PRESENT, Number(this.bat[i]! >> 20n) * MiB);
      else partial = true;
    }
    if (!partial) return;
    const at = this.nextFree;
    this.nextFree += MiB;
    await this.out.write(at, c.bitmap);
    this.bat[c.index * (this.g.chunkRatio + 1) + this.g.chunkRatio] = makeEntry(SB_PRESENT, at);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.check(offset, data.length);
    const bs = this.cfg.blockSize;
    let pos = 0;
    while (pos < data.length) {
      const guest = offset + pos;
      const b = Math.floor(guest / bs);
      const inBlock = guest - b * bs;
      const len = Math.min(data.length - pos, bs - inBlock, this.cfg.virtualSize - guest);
      if (len <= 0) break; // the tail past the virtual size is padding
      // Not copied (ImageWriter: callers never change what they handed over); pieces of one
      // window that follow each other in the file leave as one view of it.
      await this.out.writeOwned(this.blockHost(b) + inBlock, data.subarray(pos, pos + len));
      if (this.cfg.parent) await this.markPresent(guest, len);
      pos += len;
    }
  }

  /**
   * Zeros over the parent: a differencing file holds them as sectors of its own (the new file
   * reads as zeros where nothing was written). Without a parent there is nothing to do.
   */
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.order.check(offset, length);
    if (!this.cfg.parent) return;
    const bs = this.cfg.blockSize;
    const end = Math.min(offset + length, this.cfg.virtualSize);
    for (let guest = offset; guest < end;) {
      const b = Math.floor(guest / bs);
      const len = Math.min(end, (b + 1) * bs) - guest;
      this.blockHost(b);
      await this.markPresent(guest, len);
      guest += len;
    }
  }

  async finish(): Promise<void> {
    const out = this.out;
    await this.flushChunk();
    await out.flush();
    await out.write(0, fileIdentifier());
    // Headers: identical but for the sequence number, as QEMU's vhdx_create_new_headers writes them.
    const { file, data } = this.cfg.ids;
    await out.write(HEADER1_OFFSET, this.header(1n, file, data));
    await out.write(HEADER2_OFFSET, this.header(2n, file, data));
    const rt = this.regionTable();
    await out.write(REGION_TABLE1_OFFSET, rt);
    await out.write(REGION_TABLE2_OFFSET, rt);
    await out.write(this.batOffset, writeBig64Table(this.bat, true));
    await out.write(this.metadataOffset, this.metadata());
    await out.flush();
    // Whole blocks: the file must reach the end of the last one (QEMU check and Hyper-V expect it).
    const end = Math.max(this.nextFree, this.dataStart);
    if (this.sink.truncate) await this.sink.truncate(end);
    else await this.sink.write(end - 1, new Uint8Array(1));
  }

  private header(seq: bigint, fileGuid: Uint8Array, dataGuid: Uint8Array): Uint8Array {
    const s = Struct.alloc(HEADER_SIZE, true);
    s.setU32(0, SIG_HEAD).setBig64(8, seq).setBytes(16, fileGuid).setBytes(32, dataGuid);
    // LogGuid stays zero: the log is empty. LogVersion 0, Version 1.
    s.setU16(64, 0).setU16(66, 1).setU32(68, this.cfg.logSize).setU64(72, HEADER_SECTION_END);
    s.setU32(4, crc32c(s.bytes));
    return s.bytes;
  }

  private regionTable(): Uint8Array {
    const s = Struct.alloc(REGION_TABLE_SIZE, true);
    s.setU32(0, SIG_REGI).setU32(8, 2);
    // Required set on both, as Hyper-V writes them (QEMU writes 0; readers accept either).
    s.setBytes(16, BAT_REGION_GUID).setU64(32, this.batOffset).setU32(40, this.batLength).setU32(44, REGION_REQUIRED);
    s.setBytes(48, METADATA_REGION_GUID).setU64(64, this.metadataOffset).setU32(72, MiB).setU32(76, REGION_REQUIRED);
    s.setU32(4, crc32c(s.bytes));
    return s.bytes;
  }

  /** The metadata table and its five items, packed at +64 KiB (QEMU vhdx_create_new_metadata). */
  private metadata(): Uint8Array {
    const locator = this.cfg.parent ? parentLocator(this.cfg.parent) : undefined;
    const s = Struct.alloc(METADATA_TABLE_SIZE + 64 + (locator?.length ?? 0), true);
    s.setString(0, METADATA_SIGNATURE).setU16(10, locator ? 6 : 5);
    const req = META_FLAG_IS_REQUIRED;
    const vd = META_FLAG_IS_REQUIRED | META_FLAG_IS_VIRTUAL_DISK;
    const items: [Uint8Array, number, number][] = [
      [META_FILE_PARAMETERS, 8, req],
      [META_VIRTUAL_DISK_SIZE, 8, vd],
      [META_PAGE83, 16, vd],
      [META_LOGICAL_SECTOR, 4, vd],
      [META_PHYSICAL_SECTOR, 4, vd],
    ];
    if (locator) items.push([META_PARENT_LOCATOR, locator.length, req]);
    let at = METADATA_TABLE_SIZE;
    items.forEach(([id, len, flags], k) => {
      const o = 32 + k * 32;
      s.setBytes(o, id)
        .setU32(o + 16, at)
        .setU32(o + 20, len)
        .setU32(o + 24, flags);
      at += len;
    });
    const base = METADATA_TABLE_SIZE;
    s.setU32(base, this.cfg.blockSize).setU32(
      base + 4,
      this.cfg.parent ? PARAM_HAS_PARENT : this.cfg.fixed ? PARAM_LEAVE_BLOCKS_ALLOCATED : 0,
    );
    s.setU64(base + 8, this.cfg.virtualSize);
    s.setBytes(base + 16, this.cfg.ids.page83);
    s.setU32(base + 32, SECTOR).setU32(base + 36, SECTOR);
    if (locator) s.setBytes(base + 40, locator);
    return s.bytes;
  }
}

/** "vhdxfile" and the creator, UTF-16LE (MS-VHDX 2.2.1). */
function fileIdentifier(): Uint8Array {
  const s = Struct.alloc(8 + 512, true);
  s.setString(0, 'vhdxfile');
  const creator = 'DiskFerry';
  for (let i = 0; i < creator.length; i++) s.setU16(8 + 2 * i, creator.charCodeAt(i));
  return s.bytes;
}

/**
 * The parent locator item (MS-VHDX 2.6.2.6): VHDX type, parent_linkage = the parent's
 * DataWriteGuid in braces, relative_path in Windows form ("." + "\\" + name).
 */
function parentLocator(p: { name: string; dataWriteGuid: Uint8Array }): Uint8Array {
  const win = p.name.replace(/\//g, '\\');
  const entries: [string, string][] = [
    ['parent_linkage', `{${guidToString(p.dataWriteGuid)}}`],
    ['relative_path', /^([a-z]:)?\\/i.test(win) || win.startsWith('.') ? win : `.\\${win}`],
  ];
  const utf16 = (t: string) => {
    const b = new Uint8Array(t.length * 2);
    for (let i = 0; i < t.length; i++) new DataView(b.buffer).setUint16(2 * i, t.charCodeAt(i), true);
    return b;
  };
  const strings = entries.map(([k, v]) => [utf16(k), utf16(v)] as const);
  const head = 20 + 12 * entries.length;
  const total = head + strings.reduce((n, [k, v]) => n + k.length + v.length, 0);
  const s = Struct.alloc(total, true);
  s.setBytes(0, PARENT_TYPE_VHDX).setU16(18, entries.length);
  let at = head;
  strings.forEach(([k, v], i) => {
    const o = 20 + 12 * i;
    s.setU32(o, at)
      .setU32(o + 4, at + k.length)
      .setU16(o + 8, k.length)
      .setU16(o + 10, v.length);
    s.setBytes(at, k).setBytes(at + k.length, v);
    at += k.length + v.length;
  });
  return s.bytes;
}

/** Sets `count` bits from bit `first` (LSB-first), whole bytes at a time where it can. */
function setBits(bm: Uint8Array, first: number, count: number): void {
  let i = first;
  const end = first + count;
  for (; i < end && i % 8; i++) bm[i >>> 3]! |= 1 << (i & 7);
  if (end - i >= 8) {
    bm.fill(0xff, i >>> 3, end >>> 3);
    i = end - (end % 8);
  }
  for (; i < end; i++) bm[i >>> 3]! |= 1 << (i & 7);
}

function allBitsSet(bm: Uint8Array, first: number, count: number): boolean {
  for (let i = first; i < first + count; i++) if (!((bm[i >>> 3]! >>> (i & 7)) & 1)) return false;
  return true;
}
