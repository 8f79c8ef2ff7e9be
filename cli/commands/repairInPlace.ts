/**
 * check -r for Parallels and QED (below), as QEMU 7.2's parallels_co_check repairs it, in place: every step
 * leaves a valid image. BAT entries pointing past the end of the file are zeroed one 4-byte
 * write at a time (each entry stands alone), then the space past the last cluster is cut off
 * (one ftruncate), then the header's in-use mark is cleared (one 4-byte write).
 */
import { promises as fs } from 'node:fs';
import { INUSE_MAGIC, PRL_HEADER_BYTES, prlOffMultiplier } from '../../src-core/formats/parallels/header.ts';
import { readPrlMeta } from '../../src-core/formats/parallels/reader.ts';
import { nodeCodecs } from '../nodeCodecs.ts';
import { NodeFileSource } from '../nodeFiles.ts';
import { readExact } from '../../src-core/io/bytes.ts';
import { readBig64Table } from '../../src-core/io/struct.ts';
import { checkQed } from '../../src-core/formats/qed/check.ts';
import {
  QED_F_NEED_CHECK,
  QED_ZERO_CLUSTER,
  qedFileEnd,
  tableEntries,
  validClusterOffset,
  validTableOffset,
} from '../../src-core/formats/qed/header.ts';
import { readQedMeta } from '../../src-core/formats/qed/reader.ts';

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

/**
 * check -r all for QED, as QEMU 7.2's qed_check repairs it, in place: every L1 or L2 entry
 * pointing outside the file (or, for a table, past its end) is zeroed with one 8-byte write
 * (each entry stands alone, so every step is a valid image); clusters used twice are counted,
 * not fixed, as QEMU leaves them; when nothing is left, the header's need-check flag is
 * cleared (one 8-byte write). Leaked clusters stay: QED has no free-space map to return them to.
 */
export async function repairQed(file: string): Promise<{ leaks: number; corruptions: number }> {
  const src = await NodeFileSource.open(file);
  const fixes: number[] = [];
  let header;
  try {
    const { header: h, l1 } = await readQedMeta(src, { codecs: nodeCodecs });
    header = h;
    const size = qedFileEnd(h, src.size);
    const entries = tableEntries(h.clusterSize, h.tableSize);
    for (let i = 0; i < l1.length; i++) {
      const raw = l1[i]!;
      if (!raw) continue;
      const off = raw > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(raw);
      if (!validTableOffset(h, off, size)) {
        fixes.push(h.l1TableOffset + 8 * i);
        continue;
      }
      const l2 = readBig64Table(await readExact(src, off, h.tableSize * h.clusterSize), entries, true);
      for (let j = 0; j < l2.length; j++) {
        const e = l2[j]!;
        if (e === 0n || e === BigInt(QED_ZERO_CLUSTER)) continue;
        const at = e > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(e);
        if (!validClusterOffset(h, at, size)) fixes.push(off + 8 * j);
      }
    }
  } finally {
    await src.close();
  }
  const fh = await fs.open(file, 'r+');
  try {
    const zero = new Uint8Array(8);
    for (const at of fixes) await fh.write(zero, 0, 8, at);
    if (fixes.length) await fh.sync();
  } finally {
    await fh.close();
  }
  // Clusters used twice stay corrupt; only a clean image loses its need-check flag.
  const again = await checkAfter(file);
  if (!again.corruptions && header.features & QED_F_NEED_CHECK) {
    const fh2 = await fs.open(file, 'r+');
    try {
      const f = new Uint8Array(8);
      new DataView(f.buffer).setUint32(0, header.features & ~QED_F_NEED_CHECK, true);
      await fh2.write(f, 0, 8, 16);
      await fh2.sync();
    } finally {
      await fh2.close();
    }
  }
  return { leaks: 0, corruptions: fixes.length };
}

async function checkAfter(file: string) {
  const src = await NodeFileSource.open(file);
  try {
    return await checkQed(src, { codecs: nodeCodecs });
  } finally {
    await src.close();
  }
}
