import { CorruptImageError } from '../../io/errors.ts';
import { Struct, utf8Decode } from '../../io/struct.ts';
import type { SnapshotInfo } from '../../image/types.ts';
import { MAX_L1_BYTES, MAX_SNAPSHOT_EXTRA, MAX_SNAPSHOT_TABLE_BYTES } from './header.ts';

// Snapshot table entry: qcow2.txt "Snapshots". Each entry is padded to 8 bytes.
export interface Qcow2Snapshot {
  l1TableOffset: number;
  l1Size: number;
  id: string;
  name: string;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: bigint;
  vmStateSize: number;
  /** Guest disk size at the snapshot (extra data), when recorded. */
  diskSize?: number;
  icount?: bigint;
  extraData: Uint8Array;
}

/** Bytes of the fixed part of an entry; id, name and extra data follow. */
export const SNAPSHOT_FIXED = 40;

export interface SnapshotTableReader {
  (offset: number, length: number): Promise<Uint8Array>;
}

export async function readSnapshotTable(
  file: string,
  read: SnapshotTableReader,
  offset: number,
  count: number,
  clusterSize: number,
  version: number,
): Promise<{ snapshots: Qcow2Snapshot[]; tableBytes: number }> {
  const bad = (m: string) => new CorruptImageError(file, `qcow2 snapshot table: ${m}`);
  const snapshots: Qcow2Snapshot[] = [];
  let pos = 0;
  // Read in growing windows so a small table costs one read and a huge one stays bounded.
  let buf: Uint8Array = new Uint8Array(0);
  const ensure = async (end: number) => {
    if (end > MAX_SNAPSHOT_TABLE_BYTES) throw bad('table exceeds 64 MiB');
    if (end <= buf.length) return;
    const want = Math.max(end, Math.min(MAX_SNAPSHOT_TABLE_BYTES, buf.length * 2, count * 1024 + 4096));
    const b = await read(offset, want);
    if (b.length < end) throw bad('file ends inside the table');
    buf = b;
  };
  for (let i = 0; i < count; i++) {
    await ensure(pos + SNAPSHOT_FIXED);
    const s = new Struct(buf.subarray(pos));
    const l1TableOffset = s.u64(0, 'snapshot L1 offset');
    const l1Size = s.u32(8);
    const idLen = s.u16(12);
    const nameLen = s.u16(14);
    const extraLen = s.u32(36);
    if (extraLen > MAX_SNAPSHOT_EXTRA) throw bad(`entry ${i} has ${extraLen} bytes of extra data`);
    if (version >= 3 && extraLen < 16) throw bad(`entry ${i} lacks the extra data version 3 requires`);
    if (l1TableOffset % clusterSize !== 0) throw bad(`entry ${i} L1 table is not cluster aligned`);
    if (l1Size * 8 > MAX_L1_BYTES) throw bad(`entry ${i} L1 table is too large`);
    const entryLen = SNAPSHOT_FIXED + extraLen + idLen + nameLen;
    await ensure(pos + entryLen);
    const e = new Struct(buf.subarray(pos, pos + entryLen));
    const extra = e.bytesAt(SNAPSHOT_FIXED, extraLen).slice();
    const x = new Struct(extra);
    const snap: Qcow2Snapshot = {
      l1TableOffset,
      l1Size,
      id: utf8Decode(e.bytesAt(SNAPSHOT_FIXED + extraLen, idLen)),
      name: utf8Decode(e.bytesAt(SNAPSHOT_FIXED + extraLen + idLen, nameLen)),
      dateSec: e.u32(16),
      dateNsec: e.u32(20),
      vmClockNsec: e.big64(24),
      vmStateSize: e.u32(32),
      extraData: extra,
    };
    if (extraLen >= 8) snap.vmStateSize = x.u64(0, 'snapshot VM state size');
    if (extraLen >= 16) snap.diskSize = x.u64(8, 'snapshot disk size');
    if (extraLen >= 24) snap.icount = x.big64(16);
    snapshots.push(snap);
    pos += Math.ceil(entryLen / 8) * 8;
  }
  return { snapshots, tableBytes: pos };
}

export function snapshotInfo(s: Qcow2Snapshot): SnapshotInfo {
  const clockSec = s.vmClockNsec / 1_000_000_000n;
  const out: SnapshotInfo = {
    id: s.id,
    name: s.name,
    'vm-state-size': s.vmStateSize,
    'date-sec': s.dateSec,
    'date-nsec': s.dateNsec,
    'vm-clock-sec': Number(clockSec),
    'vm-clock-nsec': Number(s.vmClockNsec - clockSec * 1_000_000_000n),
  };
  if (s.icount !== undefined) out.icount = s.icount === 0xffffffffffffffffn ? -1 : Number(s.icount);
  return out;
}

export function findSnapshot(snaps: Qcow2Snapshot[], sel: { id?: string; name?: string }): Qcow2Snapshot | undefined {
  if (sel.id !== undefined) return snaps.find((s) => s.id === sel.id && (sel.name === undefined || s.name === sel.name));
  // qemu-img -l NAME matches an id first, then a name.
  return snaps.find((s) => s.name === sel.name) ?? snaps.find((s) => s.id === sel.name);
}
