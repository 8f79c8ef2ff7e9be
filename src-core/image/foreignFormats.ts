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

/**
 * Empty today: parallels, qed and luks (the entries this table started with) have drivers now,
 * and every other format qemu-img 7.2 opens from a file has one too (vvfat reads a folder).
 * A LUKS2 volume is claimed by the luks driver and refused by name there.
 */
export const FOREIGN_FORMATS: readonly ForeignFormat[] = [];

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
