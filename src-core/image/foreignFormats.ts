import type { ByteSource } from '../io/bytes.ts';

/**
 * Formats qemu-img reads that DiskFerry has no driver for, recognised the way each QEMU driver's
 * probe recognises them (block/<name>.c). They exist so that probing never takes such a file
 * for raw and silently converts its metadata as if it were guest data: when raw is the best
 * driver but one of these names the bytes, `probe` refuses the file (image/open.ts).
 *
 * An entry stays harmless once its driver lands (a registered driver of the same name always
 * wins, and the entry is skipped), but it should then be deleted from this table.
 * vvfat is left out: it is a host folder, never a file.
 */
export interface ForeignFormat {
  /** qemu-img's format name. */
  readonly name: string;
  /** What the user is told the file is. */
  readonly label: string;
  matches(head: Uint8Array, size: number, src: ByteSource): boolean | Promise<boolean>;
}

function hasAscii(b: Uint8Array, at: number, text: string): boolean {
  if (b.length < at + text.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

const le32 = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true);
const be16 = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(at, false);

export const FOREIGN_FORMATS: readonly ForeignFormat[] = [
  {
    // parallels_probe: a 64-byte header, one of two 16-byte magics, version 2 (LE32 at 16).
    name: 'parallels',
    label: 'Parallels',
    matches: (h) => h.length >= 64 && (hasAscii(h, 0, 'WithoutFreeSpace') || hasAscii(h, 0, 'WithouFreSpacExt')) && le32(h, 16) === 2,
  },
  {
    // qed_probe: a 64-byte header whose LE32 magic is "QED\0".
    name: 'qed',
    label: 'QED',
    matches: (h) => h.length >= 64 && hasAscii(h, 0, 'QED\0'),
  },
  {
    // qcrypto_block_luks_has_format: the 592-byte LUKS header, magic "LUKS\xBA\xBE", BE16 version.
    // QEMU 7.2 accepts version 1 only; version 2 is named here too, since it is no more raw data.
    name: 'luks',
    label: 'LUKS',
    matches: (h) =>
      h.length >= 592 && hasAscii(h, 0, 'LUKS') && h[4] === 0xba && h[5] === 0xbe && (be16(h, 6) === 1 || be16(h, 6) === 2),
  },
];

/** The foreign format these bytes are, skipping any that a registered driver now reads. */
export async function identifyForeign(
  head: Uint8Array,
  size: number,
  src: ByteSource,
  driverNames: readonly string[],
): Promise<ForeignFormat | undefined> {
  for (const f of FOREIGN_FORMATS) {
    if (driverNames.includes(f.name)) continue;
    if (await f.matches(head, size, src)) return f;
  }
  return undefined;
}
