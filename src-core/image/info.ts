import type { ByteSource } from '../io/bytes.ts';
import { fullBackingName } from './names.ts';
import type { ImageInfo } from './types.ts';

/**
 * The keys every driver's info starts with, in qemu-img's order. The actual size is what the
 * file takes on disk where the platform knows it (a sparse file takes less), else its length.
 */
export function infoBasics(src: ByteSource, format: string, virtualSize: number): ImageInfo {
  return { filename: src.name, format, 'virtual-size': virtualSize, 'actual-size': src.allocatedSize ?? src.size };
}

/** The backing file keys qemu-img prints: the name as stored, the name as opened, and the format when the image records one. */
export function setBackingInfo(info: ImageInfo, imageName: string, backingName: string, backingFormat?: string): void {
  info['backing-filename'] = backingName;
  info['full-backing-filename'] = fullBackingName(imageName, backingName);
  if (backingFormat) info['backing-filename-format'] = backingFormat;
}
