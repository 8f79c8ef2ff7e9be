import { readExact } from '../../io/bytes.ts';
import { CorruptImageError, InvalidArgumentError, UnsupportedError } from '../../io/errors.ts';
import { bytesEqual, concatBytes, readBig64Table, utf8Decode, utf8Encode, writeBig64Table } from '../../io/struct.ts';
import { clusterType, decodeCompressed, l1Offset, l2Offset, OFLAG_COPIED } from './entries.ts';
import {
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  isQcow2,
  MAX_SNAPSHOTS,
  parseHeader,
  V2_HEADER_LENGTH,
  type Qcow2Header,
} from './header.ts';
import { entriesPerRefblock, refcountLayout, refcountMax, setRefcount } from './refcounts.ts';
import { readSnapshotTable, SNAPSHOT_FIXED, type Qcow2Snapshot } from './snapshots.ts';

/**
 * qemu-img snapshot -c/-a/-d on a qcow2 file, changed in place without ever leaving a broken
 * image: nothing the image uses is overwritten. The new L1 tables, the L2 tables whose COPIED
 * flags change, the snapshot table and a complete new set of refcount structures go into
 * clusters that neither the old nor the new image uses (or past the end of the file); they are
 * flushed; then the header, which points at all of them, is rewritten in one write of its first
 * bytes and flushed. Killed before that write the file is the old image plus unreferenced
 * clusters of refcount 0 (not leaks); after it, the new image.
 *
 * The refcounts are not adjusted but counted afresh, the way qemu-img check counts them: every
 * L1 table (active and snapshots) adds one to each L2 table it points to, and each of those L2
 * tables adds one to each data cluster it maps, once per L1 table that reaches it. So a cluster
 * shared by the image and a snapshot counts 2, and a later guest write copies it first.
 */

/** The image file, open for reading and writing in place. */
export interface ImageFile {
  readonly name: string;
  /** The length when opened. */
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Makes what was written so far durable (fsync). */
  sync(): Promise<void>;
}

export type SnapshotEdit =
  { op: 'create'; name: string; dateSec: number; dateNsec: number } | { op: 'apply'; name: string } | { op: 'delete'; name: string };

/** The snapshot named was not found (qemu-img's messages differ between -a and -d). */
export class SnapshotNotFoundError extends InvalidArgumentError {}

/** A cluster would need a refcount above what refcount_bits holds (qemu-img: EINVAL). */
export class RefcountOverflowError extends InvalidArgumentError {}

/** One snapshot as it will be written: its table entry and L1 table. */
interface SnapEntry {
  snap: Qcow2Snapshot;
  l1: BigUint64Array;
  /** Where its L1 table sits; undefined until allocated. */
  l1Offset?: number;
}

/** Cluster occupancy and counts over a growing range. */
class ClusterCounts {
  data = new Float64Array(1024);
  get(c: number): number {
    return c < this.data.length ? this.data[c]! : 0;
  }
  add(c: number, n = 1): void {
    if (c >= this.data.length) {
      const bigger = new Float64Array(Math.max(c + 1, this.data.length * 2));
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[c]! += n;
  }
  addRange(offset: number, length: number, cs: number, n = 1): void {
    if (length <= 0) return;
    for (let c = Math.floor(offset / cs); c <= Math.floor((offset + length - 1) / cs); c++) this.add(c, n);
  }
  highest(): number {
    for (let i = this.data.length - 1; i >= 0; i--) if (this.data[i]) return i;
    return -1;
  }
}

export interface SnapshotEditResult {
  /** The snapshot's id (create: the new one). */
  id: string;
}

export async function editQcow2Snapshots(file: ImageFile, edit: SnapshotEdit): Promise<SnapshotEditResult> {
  const head = await file.read(0, Math.min(file.size, 2 * 1024 * 1024));
  if (!isQcow2(head)) throw new UnsupportedError(file.name, 'not a qcow2 image');
  const clusterBits = new DataView(head.buffer, head.byteOffset).getUint32(20);
  const h = parseHeader(file.name, head.subarray(0, Math.min(head.length, 2 ** clusterBits)), file.size);
  refuseUnsupported(file.name, h);
  const cs = h.clusterSize;
  const bad = (m: string) => new CorruptImageError(file.name, `${m}; run qemu-img check -r all first`);
  const readTable = async (offset: number, entries: number) =>
    entries ? readBig64Table(await readExact(file, offset, entries * 8), entries) : new BigUint64Array(0);

  // ---- the image as it is
  const { snapshots, tableBytes } = h.nbSnapshots
    ? await readSnapshotTable(file.name, (o, l) => file.read(o, l), h.snapshotsOffset, h.nbSnapshots, cs, h.version)
    : { snapshots: [] as Qcow2Snapshot[], tableBytes: 0 };
  const oldActive = await readTable(h.l1TableOffset, h.l1Size);
  const oldSnaps: SnapEntry[] = [];
  for (const s of snapshots) oldSnaps.push({ snap: s, l1: await readTable(s.l1TableOffset, s.l1Size), l1Offset: s.l1TableOffset });

  // ---- the image as it will be
  let active: BigUint64Array;
  let size = h.size;
  let snaps: SnapEntry[];
  let id: string;
  if (edit.op === 'create') {
    if (oldSnaps.length >= MAX_SNAPSHOTS)
      throw new InvalidArgumentError(`Could not create snapshot '${edit.name}': File too large`, file.name);
    id = String(oldSnaps.reduce((m, s) => Math.max(m, leadingNumber(s.snap.id)), 0) + 1);
    // The old active L1 table is the snapshot's, where it is: its bytes do not change.
    const extra = new Uint8Array(24);
    const x = new DataView(extra.buffer);
    x.setBigUint64(8, BigInt(h.size));
    snaps = [
      ...oldSnaps,
      {
        snap: {
          l1TableOffset: h.l1TableOffset,
          l1Size: h.l1Size,
          id,
          // qemu-img keeps the first 255 bytes of the name (pstrcpy into a 256-byte buffer).
          name: utf8Decode(utf8Encode(edit.name).subarray(0, 255)),
          dateSec: edit.dateSec,
          dateNsec: edit.dateNsec,
          vmClockNsec: 0n,
          vmStateSize: 0,
          diskSize: h.size,
          icount: 0n,
          extraData: extra,
        },
        l1: oldActive,
        l1Offset: h.l1TableOffset,
      },
    ];
    active = oldActive.slice();
  } else {
    // -a looks for an id first, then a name; -d only for a name (qemu-img 7.2).
    const found =
      edit.op === 'apply'
        ? (oldSnaps.find((s) => s.snap.id === edit.name) ?? oldSnaps.find((s) => s.snap.name === edit.name))
        : oldSnaps.find((s) => s.snap.name === edit.name);
    if (!found) throw new SnapshotNotFoundError(edit.name, file.name);
    id = found.snap.id;
    if (edit.op === 'apply') {
      active = new BigUint64Array(Math.max(h.l1Size, found.l1.length));
      active.set(found.l1);
      if (found.snap.diskSize !== undefined) size = found.snap.diskSize;
      snaps = oldSnaps;
    } else {
      active = oldActive.slice();
      snaps = oldSnaps.filter((s) => s !== found);
    }
  }

  // ---- every L2 table either image uses, read once
  const l2Tables = new Map<number, BigUint64Array>();
  for (const l1 of [oldActive, ...oldSnaps.map((s) => s.l1)]) {
    for (const e of l1) {
      const off = l1Offset(e);
      if (!off || l2Tables.has(off)) continue;
      if (off % cs || off + cs > file.size) throw bad(`L2 table at 0x${off.toString(16)} is misplaced`);
      l2Tables.set(off, readBig64Table(await readExact(file, off, cs), cs / 8));
    }
  }
  const step = h.extendedL2 ? 2 : 1;
  /** Calls `each(offset, length)` for every host range an L2 table maps (data and compressed). */
  const mapped = (table: BigUint64Array, each: (offset: number, length: number) => void) => {
    for (let j = 0; j < table.length; j += step) {
      const entry = table[j]!;
      const type = clusterType(entry, h.version, h.extendedL2);
      if (type === 'compressed') {
        const c = decodeCompressed(entry, h.clusterBits);
        each(c.offset, c.maxLength);
      } else if (type === 'normal' || type === 'zero-alloc') {
        const off = l2Offset(entry);
        if (off % cs) throw bad(`data cluster at 0x${off.toString(16)} is not cluster aligned`);
        each(off, cs);
      }
    }
  };

  // ---- clusters the old image uses: never written to
  const oldUsed = new ClusterCounts();
  oldUsed.addRange(0, cs, cs);
  oldUsed.addRange(h.l1TableOffset, h.l1Size * 8, cs);
  for (const s of oldSnaps) oldUsed.addRange(s.l1Offset!, s.l1.length * 8, cs);
  if (h.nbSnapshots) oldUsed.addRange(h.snapshotsOffset, tableBytes, cs);
  for (const [off, table] of l2Tables) {
    oldUsed.addRange(off, cs, cs);
    mapped(table, (o, l) => oldUsed.addRange(o, l, cs));
  }
  oldUsed.addRange(h.refcountTableOffset, h.refcountTableClusters * cs, cs);
  const reftable = await readTable(h.refcountTableOffset, (h.refcountTableClusters * cs) / 8);
  for (const e of reftable) {
    const off = Number(e & ~0x1ffn);
    if (off) oldUsed.addRange(off, cs, cs);
  }
  if (h.crypto) oldUsed.addRange(h.crypto.offset, h.crypto.length, cs);

  // ---- references of the new image, counted per path as qemu-img check counts them
  const refs = new ClusterCounts();
  const l2Paths = new Map<number, number>();
  for (const l1 of [active, ...snaps.map((s) => s.l1)]) {
    for (const e of l1) {
      const off = l1Offset(e);
      if (off) l2Paths.set(off, (l2Paths.get(off) ?? 0) + 1);
    }
  }
  for (const [off, n] of l2Paths) {
    refs.add(off / cs, n);
    mapped(l2Tables.get(off)!, (o, l) => refs.addRange(o, l, cs, n));
  }

  // qemu-img -a counts the snapshot's references up before it counts the old active table's
  // down, and fails where that peak does not fit the refcount width: so does this.
  if (edit.op === 'apply') {
    const max = refcountMax(2 ** h.refcountOrder);
    const peak = new ClusterCounts();
    for (const l1 of [oldActive, ...oldSnaps.map((s) => s.l1), snaps.find((s) => s.snap.id === id)!.l1]) {
      for (const e of l1) {
        const off = l1Offset(e);
        if (!off) continue;
        peak.add(off / cs);
        mapped(l2Tables.get(off)!, (o, l) => peak.addRange(o, l, cs));
      }
    }
    for (let c = 0, last = peak.highest(); c <= last; c++)
      if (peak.get(c) > max) throw overflow(c, peak.get(c), 2 ** h.refcountOrder, file.name);
  }

  const newUsed = new ClusterCounts();
  for (let c = 0, last = refs.highest(); c <= last; c++) if (refs.get(c)) newUsed.add(c);
  let cursor = 1;
  /** First fit: `n` contiguous clusters used by neither image. */
  const allocate = (bytes: number): number => {
    const n = Math.max(1, Math.ceil(bytes / cs));
    for (let start = cursor; ; start++) {
      let k = 0;
      while (k < n && !oldUsed.get(start + k) && !newUsed.get(start + k)) k++;
      if (k === n) {
        for (let i = 0; i < n; i++) newUsed.add(start + i);
        if (n === 1) cursor = start + 1;
        return start * cs;
      }
      start += k;
    }
  };
  const writes: { offset: number; bytes: Uint8Array }[] = [];

  // ---- the active L2 tables: COPIED exactly where a data cluster's refcount is 1. A table whose
  // flags change is written to a new cluster (the old one may be a snapshot's, and is in use).
  for (let i = 0; i < active.length; i++) {
    const off = l1Offset(active[i]!);
    if (!off) continue;
    const table = l2Tables.get(off)!;
    const want = table.slice();
    for (let j = 0; j < want.length; j += step) {
      const entry = want[j]!;
      const type = clusterType(entry, h.version, h.extendedL2);
      if (type !== 'normal' && type !== 'zero-alloc') continue;
      const one = refs.get(l2Offset(entry) / cs) === 1;
      want[j] = one ? entry | OFLAG_COPIED : entry & ~OFLAG_COPIED;
    }
    let where = off;
    if (!bytesEqual(writeBig64Table(want), writeBig64Table(table))) {
      where = allocate(cs);
      refs.add(off / cs, -1);
      refs.add(where / cs);
      writes.push({ offset: where, bytes: writeBig64Table(want) });
    }
    active[i] = BigInt(where) | (refs.get(where / cs) === 1 ? OFLAG_COPIED : 0n);
  }

  // ---- the new active L1 table, the new snapshot table
  const activeOffset = allocate(active.length * 8);
  writes.push({ offset: activeOffset, bytes: writeBig64Table(active) });
  const table = encodeSnapshotTable(snaps);
  const snapshotsOffset = snaps.length ? allocate(table.length) : 0;
  if (snaps.length) writes.push({ offset: snapshotsOffset, bytes: table });

  // ---- refcounts of every cluster the new image uses
  const counts = new ClusterCounts();
  for (let c = 0, last = refs.highest(); c <= last; c++) if (refs.get(c)) counts.add(c, refs.get(c));
  counts.addRange(0, cs, cs);
  counts.addRange(activeOffset, active.length * 8, cs);
  for (const s of snaps) counts.addRange(s.l1Offset!, s.l1.length * 8, cs);
  if (snaps.length) counts.addRange(snapshotsOffset, table.length, cs);
  if (h.crypto) counts.addRange(h.crypto.offset, h.crypto.length, cs);
  // The refcount structures go past everything either image uses, and past the file's end.
  const bits = 2 ** h.refcountOrder;
  const perBlock = entriesPerRefblock(cs, bits);
  const start = Math.max(Math.ceil(file.size / cs), oldUsed.highest() + 1, newUsed.highest() + 1, counts.highest() + 1);
  const layout = refcountLayout(start, cs, bits);
  const blocksOffset = start * cs;
  const reftableOffset = blocksOffset + layout.blocks * cs;
  counts.addRange(blocksOffset, (layout.blocks + layout.tableClusters) * cs, cs);
  const max = refcountMax(bits);
  const blocks = new Uint8Array(layout.blocks * cs);
  for (let c = 0, last = counts.highest(); c <= last; c++) {
    const n = counts.get(c);
    if (!n) continue;
    if (n > max)
      throw new InvalidArgumentError(`cluster ${c} would be referenced ${n} times; refcount_bits=${bits} allows ${max}`, file.name);
    const b = Math.floor(c / perBlock);
    setRefcount(blocks.subarray(b * cs, (b + 1) * cs), c % perBlock, bits, n);
  }
  const newReftable = new BigUint64Array((layout.tableClusters * cs) / 8);
  for (let b = 0; b < layout.blocks; b++) newReftable[b] = BigInt(blocksOffset + b * cs);
  writes.push({ offset: blocksOffset, bytes: blocks }, { offset: reftableOffset, bytes: writeBig64Table(newReftable) });

  // ---- write everything the new header points at, flush, then the header in one write
  writes.sort((a, b) => a.offset - b.offset);
  for (const w of writes) await file.write(w.offset, w.bytes);
  await file.sync();
  const header = head.slice(0, h.version >= 3 ? 104 : V2_HEADER_LENGTH);
  const v = new DataView(header.buffer);
  if (size !== h.size) v.setBigUint64(24, BigInt(size));
  v.setUint32(36, active.length);
  v.setBigUint64(40, BigInt(activeOffset));
  v.setBigUint64(48, BigInt(reftableOffset));
  v.setUint32(56, layout.tableClusters);
  v.setUint32(60, snaps.length);
  v.setBigUint64(64, BigInt(snapshotsOffset));
  // Refcounts are exact now: a dirty (lazy refcounts) image is clean after this.
  if (h.version >= 3) v.setBigUint64(72, h.incompatible & ~INCOMPAT_DIRTY);
  await file.write(0, header);
  await file.sync();
  return { id };
}

function refuseUnsupported(name: string, h: Qcow2Header): void {
  if (h.incompatible & INCOMPAT_DATA_FILE)
    throw new UnsupportedError(name, 'has an external data file; internal snapshots are not supported with one (as in QEMU)');
  if (h.incompatible & INCOMPAT_CORRUPT) throw new CorruptImageError(name, 'is marked corrupt; run qemu-img check -r all first');
  if (h.bitmaps) throw new UnsupportedError(name, 'has persistent bitmaps, which DiskFerry does not carry through snapshot changes');
}

function overflow(cluster: number, n: number, bits: number, file: string): RefcountOverflowError {
  return new RefcountOverflowError(
    `cluster ${cluster} would be referenced ${n} times; refcount_bits=${bits} allows ${refcountMax(bits)}`,
    file,
  );
}

function leadingNumber(id: string): number {
  const m = /^\d+/.exec(id);
  return m ? Number(m[0]) : 0;
}

/** The snapshot table as qemu writes it (qcow2_write_snapshots): entries padded to 8 bytes. */
export function encodeSnapshotTable(snaps: SnapEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const { snap: s, l1Offset, l1 } of snaps) {
    const id = utf8Encode(s.id);
    const name = utf8Encode(s.name);
    const entryLen = SNAPSHOT_FIXED + s.extraData.length + id.length + name.length;
    const e = new Uint8Array(Math.ceil(entryLen / 8) * 8);
    const v = new DataView(e.buffer);
    v.setBigUint64(0, BigInt(l1Offset!));
    v.setUint32(8, l1.length);
    v.setUint16(12, id.length);
    v.setUint16(14, name.length);
    v.setUint32(16, s.dateSec);
    v.setUint32(20, s.dateNsec);
    v.setBigUint64(24, s.vmClockNsec);
    v.setUint32(32, s.vmStateSize % 2 ** 32);
    v.setUint32(36, s.extraData.length);
    e.set(s.extraData, SNAPSHOT_FIXED);
    e.set(id, SNAPSHOT_FIXED + s.extraData.length);
    e.set(name, SNAPSHOT_FIXED + s.extraData.length + id.length);
    parts.push(e);
  }
  return concatBytes(parts);
}
