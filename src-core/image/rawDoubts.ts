import { baseName } from '../io/bytes.ts';
import type { FormatDriver } from './types.ts';

/**
 * Raw is what a file is when no format claims it, so "raw" can hide a mistake: a text file, a
 * truncated download, a `.vmdk` that is not one. qemu-img takes all of them as raw disks; a page
 * that shows "512 B raw disk" for a 38-byte note misleads. These are the reasons to ask the user
 * before treating a file as a raw disk. An empty file is never a disk.
 */
export type RawDoubt =
  | { kind: 'empty'; reason: string }
  | { kind: 'misnamed'; reason: string; claimed: string }
  | { kind: 'text'; reason: string }
  | { kind: 'tiny'; reason: string }
  | { kind: 'unknown'; reason: string };

/** A disk is at least one sector. */
const MIN_DISK_BYTES = 512;
/** How much of the head decides "plainly text". */
const TEXT_SAMPLE = 4096;

/** The lower-case extension of a file name ('' when there is none). */
export function extensionOf(name: string): string {
  const b = baseName(name);
  const i = b.lastIndexOf('.');
  return i <= 0 ? '' : b.slice(i + 1).toLowerCase();
}

/** The driver whose extension list names this file's extension, other than raw. */
export function claimedFormat(name: string, drivers: readonly FormatDriver[]): FormatDriver | undefined {
  const ext = extensionOf(name);
  // `.img` is raw's as much as anyone's (cloud qcow2 images use it too): it claims nothing.
  if (!ext || drivers.some((d) => d.name === 'raw' && d.extensions.includes(ext))) return undefined;
  return drivers.find((d) => d.extensions.includes(ext));
}

/**
 * True when the bytes are printable text (ASCII or UTF-8, with the usual white space) and hold
 * no NUL: a disk's first sectors almost always have zeros or binary tables.
 */
export function looksLikeText(head: Uint8Array): boolean {
  const n = Math.min(head.length, TEXT_SAMPLE);
  if (n === 0) return false;
  let printable = 0;
  for (let i = 0; i < n; i++) {
    const b = head[i]!;
    if (b === 0) return false;
    if (b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128) printable++;
  }
  return printable === n;
}

/**
 * Why a file that only raw claims should not silently be taken as a raw disk, or undefined
 * when raw is a fair reading (its name says raw/img/iso, or nothing argues against it).
 */
export function rawDoubt(
  head: Uint8Array,
  size: number,
  name: string,
  drivers: readonly FormatDriver[],
  alone: boolean,
): RawDoubt | undefined {
  if (size === 0) return { kind: 'empty', reason: 'the file is empty (0 bytes), so there is no disk to read' };
  const claimed = claimedFormat(name, drivers);
  if (claimed) {
    return {
      kind: 'misnamed',
      claimed: claimed.name,
      reason: `the name says ${claimed.label}, but the contents are not one (no ${claimed.name} header found); it may be damaged, or a different kind of file`,
    };
  }
  if (looksLikeText(head)) return { kind: 'text', reason: 'this is a text file, not a disk image' };
  if (size < MIN_DISK_BYTES)
    return { kind: 'tiny', reason: `only ${size} bytes: too small to be a disk image (a disk holds at least ${MIN_DISK_BYTES} bytes)` };
  const rawExts = drivers.find((d) => d.name === 'raw')?.extensions ?? [];
  if (rawExts.includes(extensionOf(name)) || alone) return undefined;
  return { kind: 'unknown', reason: 'not a disk image format DiskFerry recognises' };
}
