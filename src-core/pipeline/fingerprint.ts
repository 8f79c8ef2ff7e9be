import { sha256 } from '@noble/hashes/sha2.js';
import { utf8Encode } from '../io/struct.ts';
import type { BlockDevice, ReproducibleSeed } from '../image/types.ts';

const MiB = 1024 * 1024;
/** The head holds the partition table, the boot loader and the first file system's superblock and UUID. */
const HEAD = 4 * MiB;
/** The tail holds GPT's backup header and the last partition's end. */
const TAIL = MiB;

/**
 * What `--reproducible` derives ids from besides the settings (image/identity.ts): the disk's
 * size, its first 4 MiB and its last MiB. Cheap on any source (a remote one too), and different
 * for two different installed disks (their partition tables and file system UUIDs differ). Two
 * disks equal in those ranges get equal ids: give each its own `-o uuid=` then.
 */
export async function sourceFingerprint(source: BlockDevice): Promise<ReproducibleSeed> {
  const size = source.virtualSize;
  const headLen = Math.min(HEAD, size);
  const tailFrom = Math.max(headLen, size - TAIL);
  const parts = [utf8Encode(`${size}\n`), await source.read(0, headLen)];
  if (tailFrom < size) parts.push(await source.read(tailFrom, size - tailFrom));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return { source: sha256(all) };
}
