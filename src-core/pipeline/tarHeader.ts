import { InvalidArgumentError } from '../io/errors.ts';

/**
 * Tar member headers for the archives DiskFerry writes: GNU `oldgnu` (Google Cloud's image
 * tarball) and POSIX `ustar` (OVA, OVF 1.0 §5.3). One 512-byte block per regular file; the
 * reader side is `formats/ova/tar.ts`.
 */

export const TAR_BLOCK = 512;
/** GNU tar's default record: 20 blocks. An archive ends with two zero blocks, padded to a record. */
export const TAR_RECORD = 20 * TAR_BLOCK;

export type TarFlavour = 'oldgnu' | 'ustar';

function putString(h: Uint8Array, at: number, len: number, s: string): void {
  for (let i = 0; i < s.length && i < len; i++) h[at + i] = s.charCodeAt(i) & 0xff;
}

function putOctal(h: Uint8Array, at: number, len: number, n: number): void {
  putString(h, at, len - 1, n.toString(8).padStart(len - 1, '0'));
}

/**
 * A numeric field: octal where it fits (sizes below 8 GiB), else GNU's base-256 (first byte
 * 0x80, big-endian), which GNU tar, bsdtar and Python's tarfile read in either flavour.
 */
function putNumber(h: Uint8Array, at: number, len: number, n: number): void {
  if (n < 8 ** (len - 1)) return putOctal(h, at, len, n);
  let v = BigInt(n);
  for (let i = len - 1; i > 0; i--) {
    h[at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  h[at] = 0x80;
}

/** One header block for a regular file of `size` bytes, mode 0644, owned by root. */
export function tarHeader(name: string, size: number, mtime: number, flavour: TarFlavour): Uint8Array {
  if (name.length > 100) throw new InvalidArgumentError(`tar member name longer than 100 bytes: ${name}`);
  if (!/^[\x20-\x7e]+$/.test(name)) throw new InvalidArgumentError(`tar member name must be printable ASCII: ${name}`);
  const h = new Uint8Array(TAR_BLOCK);
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, 0o644);
  putOctal(h, 108, 8, 0);
  putOctal(h, 116, 8, 0);
  putNumber(h, 124, 12, size);
  putOctal(h, 136, 12, Math.max(0, Math.floor(mtime)));
  h[156] = 0x30; // '0': regular file
  // oldgnu: "ustar  \0" (magic and version run together); ustar: "ustar\0" then version "00".
  putString(h, 257, 8, flavour === 'oldgnu' ? 'ustar  \0' : 'ustar\x0000');
  putString(h, 265, 32, 'root');
  putString(h, 297, 32, 'root');
  // The checksum is computed with its own field as spaces, then stored as 6 digits, NUL, space.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  putString(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** Bytes a member of `size` bytes takes after its header: the data padded to a block. */
export function tarPadded(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

/** Where an archive whose last member ends at `dataEnd` ends: two zero blocks, then a whole record. */
export function tarArchiveEnd(dataEnd: number): number {
  return Math.ceil((tarPadded(dataEnd) + 2 * TAR_BLOCK) / TAR_RECORD) * TAR_RECORD;
}
