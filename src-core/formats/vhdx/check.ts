import type { ByteSource } from '../../io/bytes.ts';
import type { CheckResult, OpenContext } from '../../image/types.ts';
import { entryOffset, entryState, payloadIndex } from './bat.ts';
import { BAT } from './layout.ts';
import { batProblems, readStructure } from './reader.ts';

/**
 * qemu-img check for VHDX (QEMU vhdx_co_check → vhdx_check_bat_entries): every present payload
 * block must lie inside the file and outside the header section, log, BAT and metadata. We also
 * count two payload entries sharing one block (QEMU 7.2 does not look) and an unreplayed log
 * (QEMU refuses to open it without -r; we replay it in memory, check the result, and count it).
 */
export async function checkVhdx(src: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  const s = await readStructure(src, ctx);
  const messages: string[] = [];
  let corruptions = 0;
  if (s.replay) {
    corruptions++;
    messages.push(
      `the log holds ${s.replay.entries.length} unapplied entr${s.replay.entries.length === 1 ? 'y' : 'ies'} (checked as replayed in memory; qemu-img check -r all would replay them into the file)`,
    );
  }
  for (const p of batProblems(s, s.source.size)) {
    corruptions++;
    messages.push(`ERROR ${p.message}`);
  }
  const g = s.geometry;
  const owner = new Map<number, number>();
  for (let block = 0; block < g.payloadBlocks; block++) {
    const e = s.bat[payloadIndex(g, block)]!;
    const state = entryState(e);
    if (state !== BAT.FULLY_PRESENT && state !== BAT.PARTIALLY_PRESENT) continue;
    const off = entryOffset(e);
    const prev = owner.get(off);
    if (prev !== undefined) {
      corruptions++;
      messages.push(`ERROR blocks ${prev} and ${block} both point at file offset ${off}`);
    } else owner.set(off, block);
  }
  const r: CheckResult = { filename: src.name, format: 'vhdx', 'check-errors': 0, messages };
  if (corruptions) r.corruptions = corruptions;
  return r;
}
