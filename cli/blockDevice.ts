import { readSync } from 'node:fs';

/**
 * A block device's size: Node has no BLKGETSIZE64 and stat() says 0, so binary-search the
 * last readable byte (a read past the end returns 0 bytes). ~40 one-byte reads.
 */
export function getBlockDeviceSize(fd: number): number {
  const one = Buffer.alloc(1);
  const readable = (pos: number) => readSync(fd, one, 0, 1, pos) === 1;
  if (!readable(0)) return 0;
  let lo = 0;
  let hi = 1;
  while (readable(hi)) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (readable(mid)) lo = mid;
    else hi = mid;
  }
  return lo + 1;
}
