/**
 * The resizes that change a file in place with one step that cannot leave it half done:
 * raw and LUKS are one ftruncate (a LUKS header holds no size: the payload runs to the end of
 * the file), QED is one 8-byte write of the header's image size (its L1 table always covers
 * the largest size its cluster and table sizes allow, so nothing else moves).
 */
import { promises as fs } from 'node:fs';
import { InvalidArgumentError, UnsupportedError } from '../../src-core/io/errors.ts';
import { maxImageSize, parseQedHeader, QED_HEADER_BYTES } from '../../src-core/formats/qed/header.ts';

/** Formats qemu-img 7.2 opens read-only (or not at all): every command that writes is refused as it refuses them. */
export function refuseUnwritable(format: string, file: string): void {
  if (format === 'cow') throw new UnsupportedError(file, "Unknown driver 'cow' (qemu-img 7.2 has no cow driver)");
  if (['cloop', 'bochs', 'dmg'].includes(format)) throw new UnsupportedError(file, `Could not open '${file}': Image is read-only`);
}

/**
 * The file cut or extended to `end` bytes (one ftruncate); with falloc or full, zeros written
 * into the new part from `from` (as qemu-img does for LUKS too, where they read back as noise).
 */
export async function truncateFile(file: string, end: number, from: number, prealloc: string): Promise<void> {
  const fh = await fs.open(file, 'r+');
  try {
    await fh.truncate(end);
    if (prealloc === 'falloc' || prealloc === 'full') {
      const zeros = new Uint8Array(1 << 20);
      for (let pos = from; pos < end; pos += zeros.length) await fh.write(zeros, 0, Math.min(zeros.length, end - pos), pos);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** QEMU's bdrv_qed_co_truncate: grows only, to a multiple of 512 the L1 table can map. */
export async function resizeQed(file: string, size: number, prealloc: string): Promise<void> {
  if (prealloc !== 'off') throw new UnsupportedError(file, `Unsupported preallocation mode '${prealloc}'`);
  const fh = await fs.open(file, 'r+');
  try {
    const head = new Uint8Array(QED_HEADER_BYTES);
    await fh.read(head, 0, QED_HEADER_BYTES, 0);
    const h = parseQedHeader(file, head, (await fh.stat()).size);
    if (size % 512 || size > maxImageSize(h.clusterSize, h.tableSize)) throw new InvalidArgumentError('Invalid image size specified', file);
    if (size < h.imageSize) throw new UnsupportedError(file, 'Shrinking images is currently not supported');
    const field = new Uint8Array(8);
    new DataView(field.buffer).setBigUint64(0, BigInt(size), true);
    // The image_size field (offset 48): one aligned write inside the first sector.
    await fh.write(field, 0, 8, 48);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
