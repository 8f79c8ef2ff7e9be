/**
 * check -r for Parallels, as QEMU 7.2's parallels_co_check repairs it, in place: every step
 * leaves a valid image. BAT entries pointing past the end of the file are zeroed one 4-byte
 * write at a time (each entry stands alone), then the space past the last cluster is cut off
 * (one ftruncate), then the header's in-use mark is cleared (one 4-byte write).
 */
import { promises as fs } from 'node:fs';
import { INUSE_MAGIC, PRL_HEADER_BYTES, prlOffMultiplier } from '../../src-core/formats/parallels/header.ts';
import { readPrlMeta } from '../../src-core/formats/parallels/reader.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSource } from '../nodeFiles.ts';

/** Offset of the header's `inuse` field. */
const INUSE_AT = 44;

export async function repairParallels(file: string, mode: 'leaks' | 'all'): Promise<{ leaks: number; corruptions: number }> {
  const src = await NodeFileSource.open(file);
  let meta;
  try {
    meta = await readPrlMeta(src, { codecs: nodeCodecs });
  } finally {
    await src.close();
  }
  const { header, bat, clusterSize } = meta;
  const mult = prlOffMultiplier(header);
  const fh = await fs.open(file, 'r+');
  let corruptions = 0;
  let leaks = 0;
  try {
    const size = (await fh.stat()).size;
    const zero = new Uint8Array(4);
    let high = 0;
    for (let i = 0; i < bat.length; i++) {
      const off = bat[i]! * mult;
      if (off > size && mode === 'all') {
        await fh.write(zero, 0, 4, PRL_HEADER_BYTES + 4 * i);
        corruptions++;
        continue;
      }
      if (off > high) high = off;
    }
    if (corruptions) await fh.sync();
    const end = high + clusterSize;
    if (size > end) {
      leaks = Math.ceil((size - end) / clusterSize);
      await fh.truncate(end);
      await fh.sync();
    }
    if (mode === 'all' && header.inuse === INUSE_MAGIC) {
      await fh.write(zero, 0, 4, INUSE_AT);
      await fh.sync();
      corruptions++;
    }
  } finally {
    await fh.close();
  }
  return { leaks, corruptions };
}

/** The formats qemu-img 7.2 repairs (check -r); for the others it answers 63, as for a format without a check. */
export const REPAIRABLE = new Set(['qcow2', 'qed', 'vhdx', 'parallels']);
