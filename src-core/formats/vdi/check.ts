import type { ByteSource } from '../../io/bytes.ts';
import type { CheckResult, OpenContext } from '../../image/types.ts';
import { BLOCK_ZERO } from './header.ts';
import { readVdiMeta } from './reader.ts';

/**
 * qemu-img check for VDI, counted as QEMU's vdi_co_check does: every map index must be below the
 * block count and used once, and the allocated count must equal the header's. QEMU reports no
 * leaks and no cluster statistics for VDI, so neither do we.
 */
export async function checkVdi(src: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  const { header, map } = await readVdiMeta(src, ctx);
  const messages: string[] = [];
  let corruptions = 0;
  const owner = new Map<number, number>();
  let allocated = 0;
  for (let block = 0; block < header.blocks; block++) {
    const entry = map[block]!;
    if (entry >= BLOCK_ZERO) continue;
    if (entry >= header.blocks) {
      messages.push(`ERROR: block index ${block} too large, is ${entry}`);
      corruptions++;
      continue;
    }
    allocated++;
    const prev = owner.get(entry);
    if (prev === undefined) owner.set(entry, block);
    else {
      messages.push(`ERROR: block index ${entry} also used by ${block} (first used by ${prev})`);
      corruptions++;
    }
  }
  if (allocated !== header.blocksAllocated) {
    messages.push(`ERROR: allocated blocks mismatch, is ${allocated}, should be ${header.blocksAllocated}`);
    corruptions++;
  }
  const r: CheckResult = { filename: src.name, format: 'vdi', 'check-errors': 0, messages };
  if (corruptions) r.corruptions = corruptions;
  return r;
}
