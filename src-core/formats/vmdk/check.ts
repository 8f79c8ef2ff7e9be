import type { ByteSource } from '../../io/bytes.ts';
import type { CheckResult, OpenContext } from '../../image/types.ts';
import { VmdkDevice } from './reader.ts';
import { SeSparseExtent } from './seSparse.ts';
import { SparseExtent } from './sparseExtent.ts';

/**
 * qemu-img check for VMDK (vmdk_co_check): every allocated grain must lie inside its extent
 * file; the first one that does not is reported and the walk stops, as QEMU does. Tables that
 * cannot be read at all fail the open with their own error.
 */
export async function checkVmdk(src: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  const dev = await VmdkDevice.open(src, { ...ctx, noBacking: true });
  const r: CheckResult = { filename: src.name, format: 'vmdk', 'check-errors': 0, messages: [] };
  try {
    let start = 0;
    for (const p of dev.parts) {
      if (p instanceof SparseExtent || p instanceof SeSparseExtent) {
        const bad = await p.findGrainPastEof();
        if (bad !== undefined) {
          // QEMU fails the check (-EINVAL: "Check failed", exit 1) and counts the corruption.
          r['check-errors'] = 1;
          r.corruptions = 1;
          r.messages.push(`ERROR: cluster offset for sector ${(start + bad) / 512} points after EOF`);
          break;
        }
      }
      start += p.size;
    }
  } finally {
    await dev.close();
  }
  return r;
}
