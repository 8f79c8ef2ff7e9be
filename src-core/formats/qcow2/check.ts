import { readExact, type ByteSource } from '../../io/bytes.ts';
import { readBig64Table } from '../../io/struct.ts';
import type { CheckResult, OpenContext } from '../../image/types.ts';
import { clusterType, decodeCompressed, L1E_RESERVED_MASK, l1Offset, L2E_RESERVED_MASK, l2Offset, OFLAG_COPIED } from './entries.ts';
import { INCOMPAT_DATA_FILE } from './header.ts';
import { Qcow2Device } from './reader.ts';
import { getRefcount } from './refcounts.ts';

/** Past this many clusters referenced beyond the end of the file, counting goes to a map. */
const DENSE_LIMIT = 1 << 26;

/** Expected refcounts, dense for clusters inside the file and sparse for references past it. */
class RefCounter {
  readonly dense: Uint32Array;
  readonly sparse = new Map<number, number>();
  constructor(readonly clusters: number) {
    this.dense = new Uint32Array(Math.min(clusters, DENSE_LIMIT));
  }
  add(cluster: number): void {
    if (cluster < this.dense.length) this.dense[cluster]!++;
    else this.sparse.set(cluster, (this.sparse.get(cluster) ?? 0) + 1);
  }
  get(cluster: number): number {
    return cluster < this.dense.length ? this.dense[cluster]! : (this.sparse.get(cluster) ?? 0);
  }
  highest(): number {
    let h = -1;
    for (const k of this.sparse.keys()) h = Math.max(h, k);
    if (h >= 0) return h;
    for (let i = this.dense.length - 1; i >= 0; i--) if (this.dense[i]) return i;
    return -1;
  }
}

/**
 * qemu-img check for qcow2 (qcow2_check_refcounts): recounts every reference the metadata makes
 * and compares with the stored refcounts. More than stored is corruption; fewer is a leak.
 */
export async function checkQcow2(src: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  const dev = await Qcow2Device.open(src, { ...ctx, noBacking: true, snapshot: undefined, password: undefined });
  const h = dev.header;
  const cs = h.clusterSize;
  const fileClusters = Math.ceil(src.size / cs);
  const refs = new RefCounter(fileClusters);
  const messages: string[] = [];
  let corruptions = 0;
  const corrupt = (m: string) => {
    corruptions++;
    messages.push(`ERROR ${m}`);
  };
  const inc = (offset: number, length: number) => {
    if (length <= 0) return;
    for (let c = Math.floor(offset / cs); c <= Math.floor((offset + length - 1) / cs); c++) refs.add(c);
  };
  const externalData = !!(h.incompatible & INCOMPAT_DATA_FILE);
  const stats = { allocated: 0, fragmented: 0, compressed: 0 };

  inc(0, cs);
  inc(h.l1TableOffset, h.l1Size * 8);

  const walkL1 = async (l1: BigUint64Array, active: boolean) => {
    for (let i = 0; i < l1.length; i++) {
      const e = l1[i]!;
      if (!e) continue;
      if (e & L1E_RESERVED_MASK) corrupt(`L1 entry ${i} has reserved bits set: 0x${e.toString(16)}`);
      const l2off = l1Offset(e);
      if (!l2off) continue;
      if (l2off % cs) {
        corrupt(`L2 table offset 0x${l2off.toString(16)} in L1 entry ${i} is not cluster aligned`);
        continue;
      }
      inc(l2off, cs);
      if (l2off + cs > src.size) {
        corrupt(`L2 table at 0x${l2off.toString(16)} lies beyond the end of the file`);
        continue;
      }
      const table = readBig64Table(await readExact(src, l2off, cs), cs / 8);
      const step = h.extendedL2 ? 2 : 1;
      // Fragmentation is judged within one L2 table, as check_refcounts_l2 does.
      let nextContiguous = 0;
      for (let j = 0; j < table.length; j += step) {
        const entry = table[j]!;
        const bitmap = h.extendedL2 ? table[j + 1]! : 0n;
        const type = clusterType(entry, h.version, h.extendedL2, externalData);
        if (type === 'compressed') {
          if (entry & OFLAG_COPIED) corrupt(`compressed cluster has QCOW_OFLAG_COPIED set: 0x${entry.toString(16)}`);
          const c = decodeCompressed(entry, h.clusterBits);
          inc(c.offset, c.maxLength);
          if (active) {
            stats.allocated++;
            stats.compressed++;
            stats.fragmented++;
          }
          continue;
        }
        if (type === 'normal' || type === 'zero-alloc') {
          if (entry & L2E_RESERVED_MASK & ~1n) corrupt(`L2 entry has reserved bits set: 0x${entry.toString(16)}`);
          if ((bitmap >> 32n) & bitmap) corrupt(`cluster has a corrupted subcluster allocation bitmap: 0x${bitmap.toString(16)}`);
          const off = l2Offset(entry);
          if (off % cs) {
            corrupt(`cluster at offset 0x${off.toString(16)} is not cluster aligned`);
            continue;
          }
          if (active) {
            stats.allocated++;
            if (nextContiguous && off !== nextContiguous) stats.fragmented++;
            nextContiguous = off + cs;
          }
          if (!externalData) inc(off, cs);
        } else if (type === 'unallocated' && bitmap & 0xffffffffn) {
          corrupt(`unallocated cluster has allocated subclusters: 0x${bitmap.toString(16)}`);
        }
      }
    }
  };

  await walkL1(dev.l1, true);
  if (h.nbSnapshots) {
    for (const s of dev.snapshots) {
      inc(s.l1TableOffset, s.l1Size * 8);
      const l1 = s.l1Size ? readBig64Table(await readExact(src, s.l1TableOffset, s.l1Size * 8), s.l1Size) : new BigUint64Array(0);
      await walkL1(l1, false);
    }
    inc(h.snapshotsOffset, dev.snapshotTableBytes);
  }
  const reftableBytes = h.refcountTableClusters * cs;
  inc(h.refcountTableOffset, reftableBytes);
  const reftable = readBig64Table(await readExact(src, h.refcountTableOffset, reftableBytes), reftableBytes / 8);
  const bits = 2 ** h.refcountOrder;
  const perBlock = (cs * 8) / bits;
  const blocks = new Map<number, Uint8Array>();
  for (let i = 0; i < reftable.length; i++) {
    const off = Number(reftable[i]! & ~0x1ffn);
    if (!off) continue;
    if (off % cs) {
      corrupt(`refcount block ${i} is not cluster aligned`);
      continue;
    }
    inc(off, cs);
    if (off + cs > src.size) {
      corrupt(`refcount block ${i} lies beyond the end of the file`);
      continue;
    }
    blocks.set(i, await readExact(src, off, cs));
  }
  if (h.crypto) inc(h.crypto.offset, h.crypto.length);
  if (h.bitmaps) messages.push('note: persistent bitmaps are not counted; their clusters may show as leaks');

  const stored = (cluster: number): number => {
    const b = blocks.get(Math.floor(cluster / perBlock));
    return b ? getRefcount(b, cluster % perBlock, bits) : 0;
  };

  let leaks = 0;
  const last = Math.max(fileClusters, refs.highest() + 1);
  for (let c = 0; c < last; c++) {
    const want = refs.get(c);
    const have = stored(c);
    if (want === have) continue;
    if (have < want) corrupt(`cluster ${c} refcount=${have} reference=${want}`);
    else if (c < fileClusters) {
      leaks++;
      messages.push(`Leaked cluster ${c} refcount=${have} reference=${want}`);
    }
  }
  // COPIED must be set exactly where the refcount is 1, in the active tables only.
  for (let i = 0; i < dev.l1.length; i++) {
    const e = dev.l1[i]!;
    const l2off = l1Offset(e);
    if (!l2off || l2off % cs || l2off + cs > src.size) continue;
    const rc = stored(l2off / cs);
    if ((rc === 1) !== !!(e & OFLAG_COPIED)) corrupt(`OFLAG_COPIED L2 cluster: l1_index=${i} l1_entry=${e.toString(16)} refcount=${rc}`);
    const table = await dev.l2Table(l2off);
    const step = h.extendedL2 ? 2 : 1;
    for (let j = 0; j < table.length; j += step) {
      const entry = table[j]!;
      const type = clusterType(entry, h.version, h.extendedL2, externalData);
      if (type !== 'normal' && type !== 'zero-alloc') continue;
      const off = l2Offset(entry);
      if (off % cs || externalData) continue;
      const drc = stored(off / cs);
      if ((drc === 1) !== !!(entry & OFLAG_COPIED)) corrupt(`OFLAG_COPIED data cluster: l2_entry=${entry.toString(16)} refcount=${drc}`);
    }
  }
  const highest = refs.highest();
  const result: CheckResult = {
    filename: src.name,
    format: 'qcow2',
    'check-errors': 0,
    messages,
  };
  if (highest >= 0) result['image-end-offset'] = (highest + 1) * cs;
  const total = Math.ceil(dev.virtualSize / cs);
  if (total) result['total-clusters'] = total;
  if (stats.allocated) result['allocated-clusters'] = stats.allocated;
  if (stats.fragmented) result['fragmented-clusters'] = stats.fragmented;
  if (stats.compressed) result['compressed-clusters'] = stats.compressed;
  if (corruptions) result.corruptions = corruptions;
  if (leaks) result.leaks = leaks;
  await dev.close();
  return result;
}
