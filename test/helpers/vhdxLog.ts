import { readFileSync, writeFileSync } from 'node:fs';
import { crc32c } from '../../src-core/codecs/crc32c.ts';

/**
 * Builds VHDX files with unapplied log entries, the way a host that crashed mid-update leaves
 * them (MS-VHDX 2.3): entries are written into the log region, the current header gets the
 * LogGuid, and nothing else is touched. qemu-img refuses such a file read-only and replays it
 * with `check -r all`, which makes it the oracle for our in-memory replay.
 */

export type LogOp = { data: Uint8Array; offset: number } | { zero: number; offset: number };

export interface DirtyEntry {
  sequence: bigint;
  ops: LogOp[];
  /** FlushedFileOffset; defaults to the file size. */
  flushed?: number;
  /** LastFileOffset; defaults to the end of the furthest write or the file size. */
  last?: number;
}

const SECTOR = 4096;
const u32 = (b: Buffer, o: number) => b.readUInt32LE(o);

/** The current header's offset: the valid one with the higher sequence number (CRC trusted here). */
function currentHeader(f: Buffer): number {
  const a = f.readBigUInt64LE(64 * 1024 + 8);
  const b = f.readBigUInt64LE(128 * 1024 + 8);
  return a >= b ? 64 * 1024 : 128 * 1024;
}

/** Splits each 4 KiB data write into the descriptor/sector pair the log stores. */
function encodeEntry(e: DirtyEntry, guid: Uint8Array, tail: number, fileSize: number): Buffer {
  const descs: Buffer[] = [];
  const sectors: Buffer[] = [];
  let furthest = fileSize;
  for (const op of e.ops) {
    if ('zero' in op) {
      const d = Buffer.alloc(32);
      d.write('zero', 0, 'latin1');
      d.writeBigUInt64LE(BigInt(op.zero), 8);
      d.writeBigUInt64LE(BigInt(op.offset), 16);
      d.writeBigUInt64LE(e.sequence, 24);
      descs.push(d);
      furthest = Math.max(furthest, op.offset + op.zero);
      continue;
    }
    if (op.data.length % SECTOR || op.offset % SECTOR) throw new Error('log data writes are whole 4 KiB sectors');
    for (let p = 0; p < op.data.length; p += SECTOR) {
      const raw = op.data.subarray(p, p + SECTOR);
      const d = Buffer.alloc(32);
      d.write('desc', 0, 'latin1');
      d.set(raw.subarray(4092, 4096), 4); // trailing bytes
      d.set(raw.subarray(0, 8), 8); // leading bytes
      d.writeBigUInt64LE(BigInt(op.offset + p), 16);
      d.writeBigUInt64LE(e.sequence, 24);
      descs.push(d);
      const s = Buffer.alloc(SECTOR);
      s.write('data', 0, 'latin1');
      s.writeUInt32LE(Number(e.sequence >> 32n), 4);
      s.set(raw.subarray(8, 4092), 8);
      s.writeUInt32LE(Number(e.sequence & 0xffffffffn), 4092);
      sectors.push(s);
    }
    furthest = Math.max(furthest, op.offset + op.data.length);
  }
  const descSectors = Math.ceil((descs.length + 2) / 128);
  const entry = Buffer.alloc((descSectors + sectors.length) * SECTOR);
  entry.write('loge', 0, 'latin1');
  entry.writeUInt32LE(entry.length, 8);
  entry.writeUInt32LE(tail, 12);
  entry.writeBigUInt64LE(e.sequence, 16);
  entry.writeUInt32LE(descs.length, 24);
  entry.set(guid, 32);
  entry.writeBigUInt64LE(BigInt(e.flushed ?? fileSize), 48);
  entry.writeBigUInt64LE(BigInt(e.last ?? furthest), 56);
  descs.forEach((d, i) => entry.set(d, 64 + 32 * i));
  sectors.forEach((s, i) => entry.set(s, (descSectors + i) * SECTOR));
  entry.writeUInt32LE(crc32c(entry), 4);
  return entry;
}

/**
 * Writes `entries` into the log of `file` (in place), consecutively from log sector `position`,
 * wrapping around the end of the log as a circular buffer does, and sets the LogGuid.
 */
export function makeDirty(file: string, entries: DirtyEntry[], position = 0): void {
  const f = readFileSync(file);
  const h = currentHeader(f);
  const logLength = u32(f, h + 68);
  const logOffset = Number(f.readBigUInt64LE(h + 72));
  const guid = new Uint8Array(16).map((_, i) => 0x10 + i * 7);
  let pos = position;
  const sectors = logLength / SECTOR;
  for (const e of entries) {
    // Tail: where the sequence this entry closes begins, i.e. the first entry written here.
    const bytes = encodeEntry(e, guid, (position % sectors) * SECTOR, f.length);
    for (let k = 0; k < bytes.length; k += SECTOR) {
      const at = logOffset + (pos % sectors) * SECTOR;
      bytes.copy(f, at, k, k + SECTOR);
      pos++;
    }
  }
  f.set(guid, h + 48);
  f.writeUInt32LE(0, h + 4);
  f.writeUInt32LE(crc32c(f.subarray(h, h + 4096)), h + 4);
  writeFileSync(file, f);
}

/** The BAT region's offset (first region table) and the file's 4 KiB sector holding entry `index`. */
export function batSector(file: string, index: number): { offset: number; bytes: Buffer } {
  const f = readFileSync(file);
  const rt = 192 * 1024;
  const count = u32(f, rt + 8);
  for (let i = 0; i < count; i++) {
    const o = rt + 16 + 32 * i;
    if (f.readUInt32LE(o) === 0x2dc27766) {
      const bat = Number(f.readBigUInt64LE(o + 16));
      const at = bat + Math.floor((index * 8) / SECTOR) * SECTOR;
      return { offset: at, bytes: Buffer.from(f.subarray(at, at + SECTOR)) };
    }
  }
  throw new Error('no BAT region');
}
