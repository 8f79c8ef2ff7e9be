import { CorruptImageError, NotThisFormatError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { Struct } from '../../io/struct.ts';

/**
 * The VirtualBox VDI 1.1 header (VirtualBox VDICore.h VDIHEADER1; QEMU block/vdi.c VdiHeader):
 * 512 bytes at offset 0, little-endian, after a 64-byte text line.
 */
export const VDI_HEADER_BYTES = 512;
export const VDI_SIGNATURE = 0xbeda107f;
export const VDI_VERSION_1_1 = 0x00010001;
/** QEMU writes 0x180; VirtualBox 0x190, which adds the LCHS geometry. */
export const VDI_HEADER_SIZE_QEMU = 0x180;
export const VDI_HEADER_SIZE_VBOX = 0x190;

export const VDI_TYPE_NORMAL = 1;
export const VDI_TYPE_FIXED = 2;
export const VDI_TYPE_UNDO = 3;
export const VDI_TYPE_DIFF = 4;

/** Block map values that are not indexes (VDICore.h VDI_IMAGE_BLOCK_FREE / _ZERO). */
export const BLOCK_FREE = 0xffffffff;
export const BLOCK_ZERO = 0xfffffffe;

/** QEMU's limit on blocks (VDI_BLOCKS_IN_IMAGE_MAX): the map must fit in INT_MAX bytes. */
export const VDI_MAX_BLOCKS = 0x1fffff80;

export const TYPE_NAMES: Record<number, string> = { 1: 'normal', 2: 'fixed', 3: 'undo', 4: 'diff' };

export interface VdiHeader {
  text: string;
  version: number;
  headerSize: number;
  type: number;
  flags: number;
  comment: string;
  offBlocks: number;
  offData: number;
  sectorSize: number;
  /** Bytes, as stored (QEMU rounds odd sizes up to 512 when it opens them). */
  diskSize: number;
  blockSize: number;
  blockExtra: number;
  blocks: number;
  blocksAllocated: number;
  uuidCreate: Uint8Array;
  uuidModify: Uint8Array;
  uuidLinkage: Uint8Array;
  uuidParentModify: Uint8Array;
}

export function isVdi(head: Uint8Array): boolean {
  return (
    head.length >= VDI_HEADER_BYTES && new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0x40, true) === VDI_SIGNATURE
  );
}

export function parseVdiHeader(file: string, buf: Uint8Array, fileSize: number): VdiHeader {
  if (!isVdi(buf)) throw new NotThisFormatError(file, 'not a VDI image (no signature 0xbeda107f at offset 0x40)');
  const s = new Struct(buf.subarray(0, VDI_HEADER_BYTES), true);
  const version = s.u32(0x44);
  if (version !== VDI_VERSION_1_1)
    throw new UnsupportedError(file, `VDI version ${version >>> 16}.${version & 0xffff} is not supported (only 1.1)`);
  const h: VdiHeader = {
    text: s.cstring(0, 64).replace(/\n$/, ''),
    version,
    headerSize: s.u32(0x48),
    type: s.u32(0x4c),
    flags: s.u32(0x50),
    comment: s.cstring(0x54, 256),
    offBlocks: s.u32(0x154),
    offData: s.u32(0x158),
    sectorSize: s.u32(0x168),
    diskSize: s.u64(0x170, 'VDI disk size'),
    blockSize: s.u32(0x178),
    blockExtra: s.u32(0x17c),
    blocks: s.u32(0x180),
    blocksAllocated: s.u32(0x184),
    uuidCreate: s.bytesAt(0x188, 16).slice(),
    uuidModify: s.bytesAt(0x198, 16).slice(),
    uuidLinkage: s.bytesAt(0x1a8, 16).slice(),
    uuidParentModify: s.bytesAt(0x1b8, 16).slice(),
  };
  if (h.headerSize < VDI_HEADER_SIZE_QEMU)
    throw new CorruptImageError(file, `VDI header size 0x${h.headerSize.toString(16)} is below 0x180`);
  if (!TYPE_NAMES[h.type]) throw new UnsupportedError(file, `VDI image type ${h.type} is unknown`);
  if (h.sectorSize !== 512) throw new UnsupportedError(file, `VDI sector size ${h.sectorSize} is not 512`);
  // QEMU accepts only 1 MiB blocks; VirtualBox's format allows other sizes, so any sane one is read.
  if (h.blockSize < 512 || h.blockSize % 512 !== 0 || h.blockSize > 256 * 1024 * 1024) {
    throw new UnsupportedError(file, `VDI block size ${h.blockSize} is not a multiple of 512 up to 256 MiB`);
  }
  if (h.blockExtra % 512 !== 0) throw new UnsupportedError(file, `VDI block extra ${h.blockExtra} is not a multiple of 512`);
  if (h.offBlocks % 512 !== 0 || h.offData % 512 !== 0) {
    throw new UnsupportedError(
      file,
      `VDI block map (0x${h.offBlocks.toString(16)}) or data (0x${h.offData.toString(16)}) is not sector aligned`,
    );
  }
  if (h.blocks > VDI_MAX_BLOCKS)
    throw new UnsupportedError(file, `VDI has ${h.blocks} blocks, more than the ${VDI_MAX_BLOCKS} QEMU allows`);
  if (h.diskSize > h.blocks * h.blockSize) {
    throw new CorruptImageError(file, `VDI disk size ${h.diskSize} is larger than its ${h.blocks} blocks of ${h.blockSize} bytes`);
  }
  if (h.offBlocks + h.blocks * 4 > fileSize)
    throw new CorruptImageError(file, `VDI block map ends past the end of the file (truncated file?)`);
  return h;
}

/** Guest size as QEMU reports it: odd sizes from `VBoxManage convertfromraw` round up to 512. */
export function vdiVirtualSize(h: VdiHeader): number {
  return alignUp(h.diskSize, 512);
}

export interface VdiHeaderFields {
  type: number;
  offBlocks: number;
  offData: number;
  diskSize: number;
  blockSize: number;
  blocks: number;
  blocksAllocated: number;
  uuidCreate: Uint8Array;
  uuidModify: Uint8Array;
  /** A differencing image: the parent's uuidCreate and uuidModify, and VirtualBox's 0x190 header. */
  parent?: { uuidLinkage: Uint8Array; uuidParentModify: Uint8Array };
}

export function buildVdiHeader(f: VdiHeaderFields): Uint8Array {
  const s = Struct.alloc(VDI_HEADER_BYTES, true);
  s.setString(0, '<<< DiskFerry VM Virtual Disk Image >>>\n');
  s.setU32(0x40, VDI_SIGNATURE)
    .setU32(0x44, VDI_VERSION_1_1)
    .setU32(0x48, f.parent ? VDI_HEADER_SIZE_VBOX : VDI_HEADER_SIZE_QEMU);
  if (f.parent) {
    s.setBytes(0x1a8, f.parent.uuidLinkage).setBytes(0x1b8, f.parent.uuidParentModify);
    // VirtualBox's LCHS geometry: unset (0/0/0), 512-byte sectors (what VBoxManage writes for a snapshot).
    s.setU32(0x1d4, 512);
  }
  s.setU32(0x4c, f.type).setU32(0x50, 0);
  s.setU32(0x154, f.offBlocks).setU32(0x158, f.offData);
  // Legacy geometry left zero (as QEMU writes it); VirtualBox computes its own.
  s.setU32(0x168, 512);
  s.setU64(0x170, f.diskSize).setU32(0x178, f.blockSize).setU32(0x17c, 0);
  s.setU32(0x180, f.blocks).setU32(0x184, f.blocksAllocated);
  s.setBytes(0x188, f.uuidCreate).setBytes(0x198, f.uuidModify);
  return s.bytes;
}
