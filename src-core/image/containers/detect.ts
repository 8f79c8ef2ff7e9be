/** Compressed single-file containers DiskFerry unpacks on the fly, recognised by magic. */
export type ContainerKind = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'zip';

/** The file suffix each kind usually carries, for names and messages. */
export const CONTAINER_SUFFIX: Record<ContainerKind, string> = { gzip: '.gz', xz: '.xz', zstd: '.zst', bzip2: '.bz2', zip: '.zip' };

const starts = (b: Uint8Array, magic: number[]) => b.length >= magic.length && magic.every((m, i) => b[i] === m);

/**
 * Which container `head` (the first bytes of a file; 16 are enough) starts, by magic only:
 *   gzip  1F 8B 08 (deflate)          xz    FD 37 7A 58 5A 00
 *   zstd  28 B5 2F FD (a frame), or a skippable frame 5?-2A-4D-18 followed by anything
 *   bzip2 "BZh" '1'…'9' then a block (31 41 59 26 53 59) or end-of-stream (17 72 45 38 50 90) magic
 *   zip   "PK" 03 04 (a local file header)
 */
export function detectContainer(head: Uint8Array): ContainerKind | undefined {
  if (starts(head, [0x1f, 0x8b, 0x08])) return 'gzip';
  if (starts(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (starts(head, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return 'zstd';
  if (starts(head, [0x42, 0x5a, 0x68]) && head.length >= 10 && head[3]! >= 0x31 && head[3]! <= 0x39) {
    const m = head.subarray(4, 10);
    if (starts(m, [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]) || starts(m, [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])) return 'bzip2';
  }
  if (starts(head, [0x50, 0x4b, 0x03, 0x04])) return 'zip';
  return undefined;
}
