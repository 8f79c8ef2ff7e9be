import { readExact, type ByteSource } from '../../io/bytes.ts';
import { readBig64Table } from '../../io/struct.ts';
import { UnsupportedError } from '../../io/errors.ts';
import { DEFAULT_LIMITS, type CheckResult, type OpenContext } from '../../image/types.ts';
import { qedFileEnd, QED_ZERO_CLUSTER, tableEntries, validClusterOffset, validTableOffset } from './header.ts';
import { readQedMeta } from './reader.ts';

/**
 * qemu-img check for QED, counted as QEMU 7.2's qed_check does: every table and data cluster
 * offset must be valid and referenced once (corruptions), every cluster of the file past the
 * header must be referenced (else leaked). Allocation statistics as QEMU counts them: per L2
 * table, data entries (not zero clusters), fragmented when not right after the previous one.
 */
export async function checkQed(src: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  const { header: h, l1 } = await readQedMeta(src, ctx);
  const cs = h.clusterSize;
  const size = qedFileEnd(h, src.size);
  const nclusters = size / cs;
  const limits = ctx.limits ?? DEFAULT_LIMITS;
  if (nclusters / 8 > limits.maxTableBytes)
    throw new UnsupportedError(
      src.name,
      `checking ${nclusters} clusters needs a bitmap larger than the ${limits.maxTableBytes}-byte limit`,
    );
  const bits = new Uint8Array(Math.ceil(nclusters / 8) + 1);
  const used = {
    has: (c: number) => c < nclusters && (bits[Math.floor(c / 8)]! & (1 << (c % 8))) !== 0,
    // Offsets are checked to lie inside the file before they are marked.
    add: (c: number) => {
      if (c < nclusters) bits[Math.floor(c / 8)]! |= 1 << (c % 8);
    },
  };
  let corruptions = 0;
  let allocated = 0;
  let fragmented = 0;
  /** Marks clusters used; false (and a corruption per cluster) when one already was. */
  const use = (offset: number, n: number): boolean => {
    let dup = 0;
    for (let c = Math.floor(offset / cs), k = 0; k < n; k++, c++) {
      if (used.has(c)) dup++;
      else used.add(c);
    }
    corruptions += dup;
    return dup === 0;
  };
  use(h.l1TableOffset, h.tableSize);
  const entries = tableEntries(cs, h.tableSize);
  for (let i = 0; i < l1.length; i++) {
    const raw = l1[i]!;
    if (!raw) continue;
    const off = Number(raw);
    if (raw > BigInt(Number.MAX_SAFE_INTEGER) || !validTableOffset(h, off, size)) {
      corruptions++;
      continue;
    }
    if (!use(off, h.tableSize)) continue;
    const l2 = readBig64Table(await readExact(src, off, h.tableSize * cs), entries, true);
    let last = 0;
    for (let j = 0; j < l2.length; j++) {
      const e = l2[j]!;
      if (e === 0n || e === BigInt(QED_ZERO_CLUSTER)) continue;
      const at = e > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(e);
      allocated++;
      if (last && last + cs !== at) fragmented++;
      last = at;
      if (!validClusterOffset(h, at, size)) {
        corruptions++;
        continue;
      }
      use(at, 1);
    }
  }
  let leaks = 0;
  for (let c = h.headerSize; c < nclusters; c++) if (!used.has(c)) leaks++;
  const r: CheckResult = { filename: src.name, format: 'qed', 'check-errors': 0, messages: [] };
  if (corruptions) r.corruptions = corruptions;
  if (leaks) r.leaks = leaks;
  r['total-clusters'] = Math.ceil(h.imageSize / cs);
  if (allocated) r['allocated-clusters'] = allocated;
  if (fragmented) r['fragmented-clusters'] = fragmented;
  return r;
}
