import { alignUp } from '../../io/int64.ts';
import type { BlockDevice, CreateOptions, MeasureResult } from '../../image/types.ts';
import { allocatedUnits } from '../../image/extents.ts';
import { parseQcow2Options } from './createOptions.ts';
import { luksAreaBytes } from '../../codecs/crypto/index.ts';

/** Refcount table + blocks for `clusters` clusters (qcow2_refcount_metadata_size, no slack). */
function refcountMetadataSize(clusters: number, clusterSize: number, refcountBits: number): number {
  const perTableCluster = clusterSize / 8;
  const perBlock = (clusterSize * 8) / refcountBits;
  let table = 0;
  let blocks = 0;
  let n = 0;
  let last: number;
  do {
    last = n;
    blocks = Math.ceil((clusters + table + blocks) / perBlock);
    table = Math.ceil(blocks / perTableCluster);
    n = clusters + blocks + table;
  } while (n !== last);
  return (blocks + table) * clusterSize;
}

/** qcow2_calc_prealloc_size: header, all L2 and L1 tables, refcounts, and every data cluster. */
export function qcow2PreallocSize(size: number, clusterSize: number, refcountBits: number, extendedL2: boolean): number {
  const l2eSize = extendedL2 ? 16 : 8;
  const alignedTotal = alignUp(size, clusterSize);
  let meta = clusterSize;
  const nl2e = alignUp(alignedTotal / clusterSize, clusterSize / l2eSize);
  meta += nl2e * l2eSize;
  const nl1e = alignUp((nl2e * l2eSize) / clusterSize, clusterSize / 8);
  meta += nl1e * 8;
  meta += refcountMetadataSize((meta + alignedTotal) / clusterSize, clusterSize, refcountBits);
  return meta + alignedTotal;
}

export async function measureQcow2(opts: CreateOptions, source: BlockDevice | undefined): Promise<MeasureResult> {
  const cfg = parseQcow2Options(opts);
  const cs = 2 ** cfg.clusterBits;
  const virtualSize = alignUp(source?.virtualSize ?? opts.virtualSize, cs);
  const required = source ? await allocatedUnits(source, cs) : 0;
  let full = qcow2PreallocSize(virtualSize, cs, cfg.refcountBits, cfg.extendedL2);
  // qcow2_measure adds the LUKS area (header + 8 key slots), in whole clusters.
  const enc = cfg.encryption;
  if (enc?.format === 'luks') full += alignUp(luksAreaBytes(enc.luks.cipherAlg, enc.luks.mode), cs);
  const out: MeasureResult = { required: full - virtualSize + required, 'fully-allocated': full };
  // qemu-img shows bitmaps only when both sides support persistent bitmaps (qcow2 v3 ← qcow2).
  if (cfg.version === 3 && source?.format === 'qcow2') out.bitmaps = 0;
  return out;
}
