import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError } from '../../io/errors.ts';
import { readU32Table, Struct } from '../../io/struct.ts';
import { DEFAULT_LIMITS, type Limits } from '../../image/types.ts';
import type { Codecs } from '../../codecs/types.ts';
import { SparseExtent } from './sparseExtent.ts';
import { COWD, SECTOR, type SparseHeader } from './sparseHeader.ts';

/** COWD grain tables always hold 4096 entries (vmdk_open_vmfs_sparse). */
const COWD_GTES = 4096;
const MAX_GRAIN_SECTORS = 0x200000;

/**
 * A VMFSSPARSE ("COWD", ESX 2/3 redo log) extent. Its header (VMDK3Header in vmdk.c) is all
 * 32-bit: capacity, granularity, grain directory sector and size. Grain tables and entries are
 * the same shape as a hosted sparse extent's, so the lookup is SparseExtent's.
 */
export async function openCowdExtent(
  src: ByteSource,
  opts: { codecs: Codecs; limits?: Limits; infoName: string; typeName: string; isMainFile: boolean },
): Promise<SparseExtent> {
  const s = new Struct(await readExact(src, 0, SECTOR), true);
  if (s.u32(0) !== COWD) throw new CorruptImageError(src.name, 'VMFSSPARSE extent has no COWD magic');
  const capacity = s.u32(12);
  const grainSectors = s.u32(16);
  const gdSector = s.u32(20);
  const gdSize = s.u32(24);
  if (grainSectors === 0 || grainSectors > MAX_GRAIN_SECTORS)
    throw new CorruptImageError(src.name, `COWD granularity of ${grainSectors} sectors is invalid`);
  const needed = Math.ceil(capacity / (grainSectors * COWD_GTES));
  if (gdSize < needed) throw new CorruptImageError(src.name, `COWD grain directory has ${gdSize} entries, ${needed} are needed`);
  const limits = opts.limits ?? DEFAULT_LIMITS;
  if (gdSize * 4 > limits.maxTableBytes)
    throw new CorruptImageError(src.name, `COWD grain directory of ${gdSize} entries exceeds the table limit`);
  const gd = readU32Table(await readExact(src, gdSector * SECTOR, gdSize * 4), gdSize, true);
  const header: SparseHeader = {
    version: s.u32(4),
    flags: 0,
    capacity,
    grainSectors,
    descriptorOffset: 0,
    descriptorSize: 0,
    gtesPerGt: COWD_GTES,
    rgdOffset: 0,
    gdOffset: gdSector,
    overhead: 0,
    uncleanShutdown: false,
    compressAlgorithm: 0,
  };
  return new SparseExtent(src, header, gd, opts.codecs, opts.infoName, opts.typeName, opts.isMainFile);
}
