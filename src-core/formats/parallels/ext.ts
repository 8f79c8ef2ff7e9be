import { readExact, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, UnsupportedError } from '../../io/errors.ts';
import { Struct, bytesEqual } from '../../io/struct.ts';
import { HASHES } from '../../codecs/crypto/hashes.ts';

/**
 * The Parallels Format Extension cluster (docs/interop/parallels.txt "Format Extension";
 * QEMU block/parallels-ext.c): magic, MD5 of the rest of the cluster, then feature sections.
 * QEMU reads it when it opens an image read-only and refuses the image if it is bad, so we
 * do too. Dirty bitmaps are checked for consistency and otherwise ignored (they say which
 * sectors changed, not what they hold).
 */
export const EXT_MAGIC = 0xab234cef23dcea87n;
export const FEATURE_END = 0n;
export const FEATURE_DIRTY_BITMAP = 0x20385fae252cb34an;

export interface PrlBitmap {
  /** The bitmap's id as a UUID string. */
  id: string;
  granularity: number;
  l1Size: number;
}

const uuidOf = (b: Uint8Array): string => {
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

export async function readPrlExtension(
  src: ByteSource,
  extOffBytes: number,
  clusterSize: number,
  totalSectors: number,
): Promise<PrlBitmap[]> {
  const file = src.name;
  if (extOffBytes + clusterSize > src.size)
    throw new CorruptImageError(file, `Parallels format extension at ${extOffBytes} ends past the end of the file`);
  const cluster = await readExact(src, extOffBytes, clusterSize);
  const s = new Struct(cluster, true);
  const magic = s.big64(0);
  if (magic !== EXT_MAGIC) throw new CorruptImageError(file, `wrong Parallels format extension magic 0x${magic.toString(16)}`);
  if (!bytesEqual(HASHES.md5.fn(cluster.subarray(24)), cluster.subarray(8, 24))) {
    throw new CorruptImageError(file, 'wrong checksum in the Parallels format extension (it is corrupted)');
  }
  const bitmaps: PrlBitmap[] = [];
  let pos = 24;
  for (;;) {
    if (clusterSize - pos < 24) throw new CorruptImageError(file, 'Parallels format extension has no end-of-features marker');
    const fMagic = s.big64(pos);
    const flags = s.big64(pos + 8);
    const dataSize = s.u32(pos + 16);
    pos += 24;
    if (flags) throw new UnsupportedError(file, 'Parallels format extension feature flags are not supported');
    const padded = Math.ceil(dataSize / 8) * 8;
    if (padded > clusterSize - pos) throw new CorruptImageError(file, 'Parallels format extension feature data runs past its cluster');
    if (fMagic === FEATURE_END) return bitmaps;
    if (fMagic !== FEATURE_DIRTY_BITMAP)
      throw new UnsupportedError(file, `unknown Parallels format extension feature 0x${fMagic.toString(16)}`);
    bitmaps.push(parseBitmap(file, cluster.subarray(pos, pos + dataSize), clusterSize, totalSectors));
    pos += padded;
  }
}

function parseBitmap(file: string, data: Uint8Array, clusterSize: number, totalSectors: number): PrlBitmap {
  if (data.length < 32) throw new CorruptImageError(file, `Parallels dirty bitmap feature of ${data.length} bytes is too small`);
  const s = new Struct(data, true);
  const size = s.big64(0);
  const granSectors = s.u32(24);
  const l1Size = s.u32(28);
  if (size !== BigInt(totalSectors))
    throw new CorruptImageError(file, `Parallels dirty bitmap size ${size} differs from the disk size in sectors ${totalSectors}`);
  const granularity = granSectors * 512;
  // Bounded before the bit test, so the bitwise operands stay below 2^31.
  if (granSectors === 0 || granularity > 0xffffffff || (granSectors & (granSectors - 1)) !== 0) {
    throw new CorruptImageError(file, `invalid Parallels dirty bitmap granularity ${granularity}`);
  }
  if (l1Size * 8 > data.length - 32) throw new CorruptImageError(file, 'Parallels dirty bitmap L1 table exceeds the feature data');
  // QEMU serialises a bitmap in 64-bit words, one bit per granule; the L1 table has one entry per cluster of that.
  const bytes = Math.ceil(Math.ceil((totalSectors * 512) / granularity) / 64) * 8;
  const want = Math.ceil(bytes / clusterSize);
  if (l1Size !== want)
    throw new CorruptImageError(
      file,
      `Parallels dirty bitmap table size ${l1Size} does not match the bitmap and cluster size (expected ${want})`,
    );
  return { id: uuidOf(s.bytesAt(8, 16)), granularity, l1Size };
}
