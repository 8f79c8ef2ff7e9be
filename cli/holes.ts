import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** lseek(SEEK_DATA/SEEK_HOLE) from cli/native/holes.c: the next offset, or -1 when there is none. */
type Seek = (fd: number, offset: number, wantData: boolean) => number;

let loaded: Seek | null | undefined;

/**
 * The native lseek, when it was built for this platform: beside the bundle (dist/cli, as the
 * package ships it) or in .cache/native (a checkout run through tsx). Undefined otherwise, and
 * then sparse files are read whole (correct, only slower). DISKFERRY_NO_NATIVE=1 turns it off.
 */
function nativeSeek(): Seek | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  if (process.env.DISKFERRY_NO_NATIVE) return undefined;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const file = `holes-${process.platform}-${process.arch}.node`;
  const found = [path.join(here, file), path.join(here, '..', '.cache', 'native', file)].find((f) => existsSync(f));
  if (!found) return undefined;
  try {
    loaded = (createRequire(import.meta.url)(found) as { seek: Seek }).seek;
  } catch {
    loaded = null; // built for another libc or Node: read instead
  }
  return loaded ?? undefined;
}

/**
 * The data runs of an open file within [from, to), as the file system reports them; undefined
 * when it cannot tell (no native lseek, or a file system without SEEK_DATA), so the caller
 * reads everything. Holes read as zeros: skipping them is what qemu-img's file driver does.
 */
export function* fileDataRuns(fd: number, from: number, to: number): Generator<[number, number]> {
  const seek = nativeSeek()!;
  let pos = from;
  while (pos < to) {
    const data = seek(fd, pos, true);
    if (data < 0 || data >= to) return;
    const hole = seek(fd, data, false);
    const end = hole < 0 ? to : Math.min(hole, to);
    yield [data, end];
    pos = end;
  }
}

/** Whether fileDataRuns can answer for this file: the native lseek is there and the file system supports it. */
export function canFindHoles(fd: number): boolean {
  const seek = nativeSeek();
  if (!seek) return false;
  try {
    seek(fd, 0, true);
    return true;
  } catch {
    return false; // EINVAL: the file system has no SEEK_DATA
  }
}
