import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { isPowerOfTwo } from '../../io/int64.ts';
import { Struct } from '../../io/struct.ts';
import type { Region } from './header.ts';
import { guidEqual, guidToString } from '../../io/guid.ts';
import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  METADATA_MAX_ENTRIES,
  METADATA_SIGNATURE,
  METADATA_TABLE_SIZE,
  META_FILE_PARAMETERS,
  META_FLAG_IS_REQUIRED,
  META_LOGICAL_SECTOR,
  META_PAGE83,
  META_PARENT_LOCATOR,
  META_PHYSICAL_SECTOR,
  META_VIRTUAL_DISK_SIZE,
  MAX_VIRTUAL_SIZE,
  PARAM_HAS_PARENT,
  PARAM_LEAVE_BLOCKS_ALLOCATED,
  PARENT_TYPE_VHDX,
} from './layout.ts';

export interface ParentLocator {
  /** Locator type GUID as text (VHDX parents: B04AEFB7-…). */
  type: string;
  /** Key/value pairs as stored (parent_linkage, relative_path, absolute_win32_path, …). */
  entries: Record<string, string>;
}

export interface VhdxMetadata {
  blockSize: number;
  leaveBlocksAllocated: boolean;
  hasParent: boolean;
  virtualSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  page83: string;
  parent?: ParentLocator;
}

/** Largest metadata item MS-VHDX allows; also bounds what a hostile file can make us read. */
const METADATA_ITEM_MAX = 1024 * 1024;

interface Item {
  offset: number;
  length: number;
}

const KNOWN = [META_FILE_PARAMETERS, META_VIRTUAL_DISK_SIZE, META_PAGE83, META_LOGICAL_SECTOR, META_PHYSICAL_SECTOR, META_PARENT_LOCATOR];

/**
 * Reads the metadata region: its 64 KiB table, then each item (MS-VHDX 2.6; QEMU
 * vhdx_parse_metadata). Items we do not know are skipped unless marked required.
 */
export async function readMetadata(name: string, src: ByteSource, region: Region): Promise<VhdxMetadata> {
  const table = new Struct(await readExact(src, region.offset, METADATA_TABLE_SIZE), true);
  if (table.cstring(0, 8) !== METADATA_SIGNATURE) throw new CorruptImageError(name, 'VHDX metadata table has no "metadata" signature');
  const count = table.u16(10);
  if (count > METADATA_MAX_ENTRIES)
    throw new CorruptImageError(name, `VHDX metadata table claims ${count} entries (at most ${METADATA_MAX_ENTRIES})`);
  const items: (Item | undefined)[] = KNOWN.map(() => undefined);
  for (let i = 0; i < count; i++) {
    const o = 32 + i * 32;
    const id = table.bytesAt(o, 16);
    const item: Item = { offset: table.u32(o + 16), length: table.u32(o + 20) };
    const flags = table.u32(o + 24);
    const k = KNOWN.findIndex((g) => guidEqual(g, id));
    if (k < 0) {
      if (flags & META_FLAG_IS_REQUIRED) throw new UnsupportedError(name, `VHDX metadata item ${guidToString(id)} is required but unknown`);
      continue;
    }
    if (items[k]) throw new CorruptImageError(name, `VHDX metadata item ${guidToString(id)} appears twice`);
    // MS-VHDX 2.6.1.2: items lie past the 64 KiB table, inside the region, and are at most 1 MiB.
    if (
      item.offset + item.length > region.length ||
      (item.length && item.offset < METADATA_TABLE_SIZE) ||
      item.length > METADATA_ITEM_MAX
    ) {
      throw new CorruptImageError(name, `VHDX metadata item ${guidToString(id)} lies outside its region`);
    }
    items[k] = item;
  }
  const [fp, vs, p83, ls, ps, pl] = items;
  const need = (it: Item | undefined, what: string, min: number): Promise<Struct> => {
    if (!it) throw new CorruptImageError(name, `VHDX metadata lacks the ${what} item`);
    if (it.length < min) throw new CorruptImageError(name, `VHDX ${what} item is ${it.length} bytes (needs ${min})`);
    return readExact(src, region.offset + it.offset, it.length).then((b) => new Struct(b, true));
  };
  const params = await need(fp, 'file parameters', 8);
  const blockSize = params.u32(0);
  const bits = params.u32(4);
  const virtualSize = (await need(vs, 'virtual disk size', 8)).u64(0, 'VHDX virtual disk size');
  const page83 = guidToString((await need(p83, 'page 83 data', 16)).bytesAt(0, 16));
  const logicalSectorSize = (await need(ls, 'logical sector size', 4)).u32(0);
  const physicalSectorSize = (await need(ps, 'physical sector size', 4)).u32(0);

  if (blockSize < BLOCK_SIZE_MIN || blockSize > BLOCK_SIZE_MAX || !isPowerOfTwo(blockSize)) {
    throw new CorruptImageError(name, `VHDX block size ${blockSize} is not a power of two between 1 MiB and 256 MiB`);
  }
  if (logicalSectorSize !== 512 && logicalSectorSize !== 4096)
    throw new CorruptImageError(name, `VHDX logical sector size ${logicalSectorSize} is neither 512 nor 4096`);
  if (physicalSectorSize !== 512 && physicalSectorSize !== 4096)
    throw new CorruptImageError(name, `VHDX physical sector size ${physicalSectorSize} is neither 512 nor 4096`);
  if (virtualSize > MAX_VIRTUAL_SIZE) throw new CorruptImageError(name, `VHDX virtual size ${virtualSize} exceeds 64 TiB`);
  if (virtualSize % logicalSectorSize)
    throw new CorruptImageError(name, `VHDX virtual size ${virtualSize} is not a multiple of the ${logicalSectorSize}-byte sector`);

  const hasParent = !!(bits & PARAM_HAS_PARENT);
  const md: VhdxMetadata = {
    blockSize,
    leaveBlocksAllocated: !!(bits & PARAM_LEAVE_BLOCKS_ALLOCATED),
    hasParent,
    virtualSize,
    logicalSectorSize,
    physicalSectorSize,
    page83,
  };
  if (hasParent) {
    if (!pl) throw new CorruptImageError(name, 'VHDX file says it has a parent but has no parent locator');
    md.parent = parseParentLocator(name, (await need(pl, 'parent locator', 20)).bytes);
  }
  return md;
}

/** Parent locator (MS-VHDX 2.6.2.6): a 20-byte header, 12-byte entries, UTF-16LE keys and values. */
export function parseParentLocator(name: string, b: Uint8Array): ParentLocator {
  const s = new Struct(b, true);
  const type = b.subarray(0, 16);
  const count = s.u16(18);
  if (20 + count * 12 > b.length) throw new CorruptImageError(name, `VHDX parent locator claims ${count} entries but is ${b.length} bytes`);
  const text = (off: number, len: number, what: string): string => {
    if (off + len > b.length || len % 2) throw new CorruptImageError(name, `VHDX parent locator ${what} lies outside the item`);
    let out = '';
    for (let i = 0; i < len; i += 2) out += String.fromCharCode(s.u16(off + i));
    return out;
  };
  const entries: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const o = 20 + i * 12;
    const key = text(s.u32(o), s.u16(o + 8), 'key');
    entries[key] = text(s.u32(o + 4), s.u16(o + 10), `value of ${key}`);
  }
  if (!guidEqual(type, PARENT_TYPE_VHDX)) {
    throw new UnsupportedError(name, `VHDX parent locator type ${guidToString(type)} is not a VHDX parent`);
  }
  return { type: guidToString(type), entries };
}

/**
 * The parent's file names to try, in the order MS-VHDX gives (relative, volume, absolute),
 * as POSIX-style names relative to the child. Windows paths keep only what can be resolved here:
 * a relative path as it is, absolute ones by their last component (the parent beside the child).
 */
export function parentCandidates(p: ParentLocator): string[] {
  const out: string[] = [];
  const add = (n: string | undefined) => {
    if (n && !out.includes(n)) out.push(n);
  };
  const rel = p.entries.relative_path;
  if (rel) add(rel.replace(/\\/g, '/').replace(/^(\.\/)+/, ''));
  for (const key of ['volume_path', 'absolute_win32_path']) {
    const v = p.entries[key];
    if (!v) continue;
    const posix = v.replace(/\\/g, '/');
    add(posix.slice(posix.lastIndexOf('/') + 1));
  }
  return out;
}
