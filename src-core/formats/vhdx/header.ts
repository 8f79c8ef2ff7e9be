import { CorruptImageError, NotThisFormatError, UnsupportedError } from '../../io/errors.ts';
import { Struct } from '../../io/struct.ts';
import { crc32cWithZeroField } from '../../codecs/crc32c.ts';
import { guidEqual } from '../../io/guid.ts';
import {
  ALIGNMENT,
  BAT_REGION_GUID,
  FILE_SIGNATURE,
  HEADER1_OFFSET,
  HEADER2_OFFSET,
  HEADER_SECTION_END,
  HEADER_SIZE,
  MAX_REGION_ENTRIES,
  METADATA_REGION_GUID,
  REGION_REQUIRED,
  REGION_TABLE1_OFFSET,
  REGION_TABLE2_OFFSET,
  REGION_TABLE_SIZE,
  SIG_HEAD,
  SIG_REGI,
} from './layout.ts';

/** The bytes every read of the header section needs: identifier, headers and region tables. */
export const HEAD_BYTES = REGION_TABLE2_OFFSET + REGION_TABLE_SIZE;

export function isVhdx(head: Uint8Array): boolean {
  if (head.length < 8) return false;
  for (let i = 0; i < 8; i++) if (head[i] !== FILE_SIGNATURE.charCodeAt(i)) return false;
  return true;
}

/** The creator string after the signature: UTF-16LE, up to 256 code units, NUL-terminated. */
export function parseCreator(head: Uint8Array): string {
  const s = new Struct(head.subarray(8, 8 + 512), true);
  let out = '';
  for (let i = 0; i + 1 < s.length; i += 2) {
    const c = s.u16(i);
    if (!c) break;
    out += String.fromCharCode(c);
  }
  return out;
}

export interface VhdxHeader {
  /** 1 or 2: which copy is current. */
  index: 1 | 2;
  sequence: bigint;
  fileWriteGuid: Uint8Array;
  dataWriteGuid: Uint8Array;
  logGuid: Uint8Array;
  logVersion: number;
  version: number;
  logLength: number;
  logOffset: number;
}

type HeaderVerdict = { ok: true; header: VhdxHeader; raw: Uint8Array } | { ok: false; why: string };

function readHeader(raw: Uint8Array, index: 1 | 2): HeaderVerdict {
  const s = new Struct(raw, true);
  if (s.u32(0) !== SIG_HEAD) return { ok: false, why: `header ${index} has no "head" signature` };
  const stored = s.u32(4);
  const computed = crc32cWithZeroField(raw, 4);
  if (stored !== computed) {
    return { ok: false, why: `header ${index} checksum mismatch (CRC-32C stored 0x${hex(stored)}, computed 0x${hex(computed)})` };
  }
  // QEMU (vhdx_parse_header) also requires version 1 before it calls a header valid.
  const version = s.u16(66);
  if (version !== 1) return { ok: false, why: `header ${index} has version ${version}, not 1` };
  return {
    ok: true,
    raw,
    header: {
      index,
      sequence: s.big64(8),
      fileWriteGuid: raw.slice(16, 32),
      dataWriteGuid: raw.slice(32, 48),
      logGuid: raw.slice(48, 64),
      logVersion: s.u16(64),
      version,
      logLength: s.u32(68),
      logOffset: s.u64(72, 'VHDX log offset'),
    },
  };
}

const hex = (n: number) => n.toString(16).padStart(8, '0');

/**
 * The current header: the valid one with the higher sequence number (MS-VHDX 2.2.2.1). Equal
 * numbers are accepted only when both headers are identical, as QEMU allows for Disk2vhd files.
 */
export function pickHeader(name: string, head: Uint8Array): VhdxHeader {
  const h1 = readHeader(head.subarray(HEADER1_OFFSET, HEADER1_OFFSET + HEADER_SIZE), 1);
  const h2 = readHeader(head.subarray(HEADER2_OFFSET, HEADER2_OFFSET + HEADER_SIZE), 2);
  let cur: VhdxHeader;
  if (h1.ok && h2.ok) {
    if (h1.header.sequence === h2.header.sequence) {
      const a = h1.raw.subarray(4, 80);
      const b = h2.raw.subarray(4, 80);
      if (!a.every((x, i) => x === b[i]))
        throw new CorruptImageError(name, 'both VHDX headers are valid but have the same sequence number and differ');
      cur = h1.header;
    } else cur = h1.header.sequence > h2.header.sequence ? h1.header : h2.header;
  } else if (h1.ok) cur = h1.header;
  else if (h2.ok) cur = h2.header;
  else throw new CorruptImageError(name, `no valid VHDX header: ${(h1 as { why: string }).why}; ${(h2 as { why: string }).why}`);
  // QEMU vhdx_parse_log: the log must sit at a 1 MiB multiple past the header section.
  if (cur.logOffset < HEADER_SECTION_END || cur.logOffset % ALIGNMENT) {
    throw new CorruptImageError(name, `VHDX log offset ${cur.logOffset} is not a multiple of 1 MiB past the header section`);
  }
  if (cur.logLength % ALIGNMENT) throw new CorruptImageError(name, `VHDX log length ${cur.logLength} is not a multiple of 1 MiB`);
  if (cur.logVersion !== 0) throw new UnsupportedError(name, `VHDX log version ${cur.logVersion} is not supported (only 0)`);
  return cur;
}

export interface Region {
  offset: number;
  length: number;
}

export interface RegionTable {
  bat: Region;
  metadata: Region;
  /** Which copy was used (QEMU reads only the first; we fall back to the second). */
  copy: 1 | 2;
}

type TableVerdict = { ok: true; table: RegionTable } | { ok: false; why: string; fatal?: boolean };

function readRegionTable(raw: Uint8Array, copy: 1 | 2): TableVerdict {
  const s = new Struct(raw, true);
  if (s.u32(0) !== SIG_REGI) return { ok: false, why: `region table ${copy} has no "regi" signature` };
  const stored = s.u32(4);
  const computed = crc32cWithZeroField(raw, 4);
  if (stored !== computed) {
    return { ok: false, why: `region table ${copy} checksum mismatch (CRC-32C stored 0x${hex(stored)}, computed 0x${hex(computed)})` };
  }
  const count = s.u32(8);
  if (count > MAX_REGION_ENTRIES) return { ok: false, why: `region table ${copy} claims ${count} entries (at most ${MAX_REGION_ENTRIES})` };
  let bat: Region | undefined;
  let metadata: Region | undefined;
  const seen: Region[] = [];
  for (let i = 0; i < count; i++) {
    const o = 16 + i * 32;
    const guid = raw.subarray(o, o + 16);
    const r: Region = { offset: s.u64(o + 16, 'VHDX region offset'), length: s.u32(o + 24) };
    const flags = s.u32(o + 28);
    if (r.offset < HEADER_SECTION_END || r.offset % ALIGNMENT || r.length % ALIGNMENT) {
      return { ok: false, why: `region ${i} at ${r.offset} (${r.length} bytes) is not 1 MiB aligned past the header section` };
    }
    // QEMU vhdx_region_check: regions may not overlap each other.
    if (seen.some((x) => r.offset < x.offset + x.length && x.offset < r.offset + r.length)) {
      return { ok: false, why: `region ${i} overlaps another region` };
    }
    seen.push(r);
    if (guidEqual(guid, BAT_REGION_GUID)) {
      if (bat) return { ok: false, why: 'two BAT regions' };
      bat = r;
    } else if (guidEqual(guid, METADATA_REGION_GUID)) {
      if (metadata) return { ok: false, why: 'two metadata regions' };
      metadata = r;
    } else if (flags & REGION_REQUIRED) {
      return { ok: false, fatal: true, why: `an unknown region marked required (MS-VHDX says such a file must not be opened)` };
    }
  }
  if (!bat || !metadata) return { ok: false, why: `region table ${copy} lacks the ${bat ? 'metadata' : 'BAT'} region` };
  return { ok: true, table: { bat, metadata, copy } };
}

/**
 * The region table: the first copy, or the second when the first is damaged (MS-VHDX 2.2.3
 * keeps two for that reason; QEMU reads only the first and refuses the file).
 */
export function parseRegionTables(name: string, head: Uint8Array): RegionTable {
  const t1 = readRegionTable(head.subarray(REGION_TABLE1_OFFSET, REGION_TABLE1_OFFSET + REGION_TABLE_SIZE), 1);
  if (t1.ok) return t1.table;
  if (t1.fatal) throw new UnsupportedError(name, t1.why);
  const t2 = readRegionTable(head.subarray(REGION_TABLE2_OFFSET, REGION_TABLE2_OFFSET + REGION_TABLE_SIZE), 2);
  if (t2.ok) return t2.table;
  if (t2.fatal) throw new UnsupportedError(name, t2.why);
  throw new CorruptImageError(name, `no valid VHDX region table: ${t1.why}; ${t2.why}`);
}

export function assertVhdx(name: string, head: Uint8Array): void {
  if (!isVhdx(head)) throw new NotThisFormatError(name, 'not a VHDX image (no "vhdxfile" signature)');
  if (head.length < HEAD_BYTES) throw new CorruptImageError(name, `file ends at ${head.length} bytes, inside the VHDX header section`);
}
