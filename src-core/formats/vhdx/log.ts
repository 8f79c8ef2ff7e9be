import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { alignUp } from '../../io/int64.ts';
import { Struct } from '../../io/struct.ts';
import { crc32cWithZeroField } from '../../codecs/crc32c.ts';
import { guidEqual } from '../../io/guid.ts';
import type { VhdxHeader } from './header.ts';
import { ALIGNMENT, LOG_DESCRIPTOR_SIZE, LOG_ENTRY_HEADER_SIZE, LOG_SECTOR, SIG_DESC, SIG_LOGE, SIG_ZERO } from './layout.ts';
import { OverlaySource } from './overlay.ts';

/** One write a log entry asks for. */
export type LogWrite = { kind: 'data'; fileOffset: number; data: Uint8Array } | { kind: 'zero'; fileOffset: number; length: number };

export interface LogEntry {
  sequence: bigint;
  /** Byte offset in the log where the sequence this entry closes begins. */
  tail: number;
  /** Sector index of the entry in the log. */
  position: number;
  sectors: number;
  flushedFileOffset: number;
  lastFileOffset: number;
  writes: LogWrite[];
}

export interface LogReplay {
  entries: LogEntry[];
  source: OverlaySource;
}

/** Sectors the header and `n` descriptors take: 126 fit the first sector, 128 each later one. */
export function descriptorSectors(n: number): number {
  return Math.ceil((n + 2) / 128);
}

/**
 * Finds the active log sequence (MS-VHDX 2.3.3): the head is the valid entry (signature, LogGuid,
 * CRC-32C, descriptors) with the highest sequence number; its Tail field names where the
 * sequence starts, and the entries from there to the head must be valid and consecutive. Returns
 * them in order, or [] when nothing is to be replayed.
 *
 * QEMU (vhdx-log.c vhdx_log_search) scans runs of consecutive entries from sector 0 and keeps
 * the run whose *first* entry has the highest number, ignoring Tail. The two agree on every log
 * QEMU and Hyper-V write in practice (QEMU flushes each entry alone, so Tail is the entry itself);
 * they differ only for a multi-entry sequence that wraps around the end of the log, where QEMU
 * replays just the part after the wrap.
 */
export function findActiveSequence(log: Uint8Array, logGuid: Uint8Array): LogEntry[] {
  const sectors = log.length / LOG_SECTOR;
  let head: LogEntry | undefined;
  for (let pos = 0; pos < sectors; pos++) {
    const e = readEntry(log, pos, logGuid);
    if (e && (!head || e.sequence > head.sequence)) head = e;
  }
  if (!head) return [];
  const tail = head.tail % LOG_SECTOR === 0 && head.tail < log.length ? head.tail / LOG_SECTOR : head.position;
  const run: LogEntry[] = [];
  let pos = tail;
  let walked = 0;
  while (walked < sectors) {
    const e: LogEntry | undefined = pos === head.position ? head : readEntry(log, pos, logGuid);
    if (!e || (run.length && e.sequence !== run[run.length - 1]!.sequence + 1n)) return [head];
    run.push(e);
    if (e === head) return run;
    walked += e.sectors;
    pos = (pos + e.sectors) % sectors;
  }
  return [head];
}

/** `length` bytes of the circular log from sector `pos`. */
function circular(log: Uint8Array, pos: number, length: number): Uint8Array {
  const start = pos * LOG_SECTOR;
  if (start + length <= log.length) return log.subarray(start, start + length);
  const out = new Uint8Array(length);
  const first = log.length - start;
  out.set(log.subarray(start), 0);
  out.set(log.subarray(0, length - first), first);
  return out;
}

/** The entry at sector `pos` if it is valid (QEMU vhdx_log_hdr_is_valid, vhdx_log_desc_is_valid, CRC). */
function readEntry(log: Uint8Array, pos: number, logGuid: Uint8Array): LogEntry | undefined {
  const h = new Struct(log.subarray(pos * LOG_SECTOR, pos * LOG_SECTOR + LOG_ENTRY_HEADER_SIZE), true);
  if (h.u32(0) !== SIG_LOGE) return undefined;
  const entryLength = h.u32(8);
  const sequence = h.big64(16);
  const count = h.u32(24);
  if (!entryLength || entryLength % LOG_SECTOR || entryLength > log.length || sequence === 0n) return undefined;
  if (!guidEqual(h.bytesAt(32, 16), logGuid)) return undefined;
  const descSectors = descriptorSectors(count);
  const sectors = entryLength / LOG_SECTOR;
  if (descSectors > sectors) return undefined;
  const entry = circular(log, pos, entryLength);
  const e = new Struct(entry, true);
  if (e.u32(4) !== crc32cWithZeroField(entry, 4)) return undefined;
  const writes: LogWrite[] = [];
  let dataSector = descSectors;
  for (let i = 0; i < count; i++) {
    const o = LOG_ENTRY_HEADER_SIZE + i * LOG_DESCRIPTOR_SIZE;
    const sig = e.u32(o);
    const fileOffset = e.u64(o + 16, 'VHDX log descriptor file offset');
    if (e.big64(o + 24) !== sequence || fileOffset % LOG_SECTOR) return undefined;
    if (sig === SIG_ZERO) {
      const length = e.u64(o + 8, 'VHDX log zero length');
      if (length % LOG_SECTOR) return undefined;
      writes.push({ kind: 'zero', fileOffset, length });
    } else if (sig === SIG_DESC) {
      // A data sector: 8 leading bytes from the descriptor, 4084 from the sector, 4 trailing.
      if (dataSector >= sectors) return undefined;
      const sec = entry.subarray(dataSector * LOG_SECTOR, (dataSector + 1) * LOG_SECTOR);
      const ss = new Struct(sec, true);
      const seq = (BigInt(ss.u32(4)) << 32n) | BigInt(ss.u32(4092));
      if (seq !== sequence) return undefined;
      const data = new Uint8Array(LOG_SECTOR);
      data.set(entry.subarray(o + 8, o + 16), 0);
      data.set(sec.subarray(8, 4092), 8);
      data.set(entry.subarray(o + 4, o + 8), 4092);
      writes.push({ kind: 'data', fileOffset, data });
      dataSector++;
    } else return undefined;
  }
  return {
    sequence,
    tail: h.u32(12),
    position: pos,
    sectors,
    flushedFileOffset: h.u64(48, 'VHDX log FlushedFileOffset'),
    lastFileOffset: h.u64(56, 'VHDX log LastFileOffset'),
    writes,
  };
}

/**
 * Replays the log in memory when the current header names one (LogGuid ≠ 0) and it holds an
 * active sequence. The source is never written: the result is an overlay that every later read
 * of the region tables, metadata, BAT and data goes through — the file as QEMU sees it after
 * `qemu-img check -r all`.
 */
export async function replayLog(src: ByteSource, header: VhdxHeader, maxBytes: number): Promise<LogReplay | undefined> {
  if (header.logGuid.every((b) => b === 0) || header.logLength === 0) return undefined;
  if (header.logLength > maxBytes) {
    throw new UnsupportedError(
      src.name,
      `VHDX log of ${header.logLength} bytes is larger than the ${maxBytes}-byte limit for replaying it in memory`,
    );
  }
  const log = await readExact(src, header.logOffset, header.logLength);
  const entries = findActiveSequence(log, header.logGuid);
  if (!entries.length) return undefined;
  const overlay = new OverlaySource(src);
  for (const e of entries) {
    // QEMU vhdx_log_flush: a file shorter than FlushedFileOffset has been truncated.
    if (e.flushedFileOffset > src.size) {
      throw new CorruptImageError(
        src.name,
        `VHDX log entry ${e.sequence} expects the file to be at least ${e.flushedFileOffset} bytes, but it is ${src.size} (truncated?)`,
      );
    }
    for (const w of e.writes) {
      if (w.kind === 'data') overlay.write(w.fileOffset, w.data);
      else overlay.writeZeroes(w.fileOffset, w.length);
    }
    if (e.lastFileOffset > overlay.size) overlay.extendTo(alignUp(e.lastFileOffset, ALIGNMENT));
  }
  return { entries, source: overlay };
}
