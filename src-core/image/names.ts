import { dirName } from '../io/bytes.ts';

/** qemu-img's full-backing-filename: a relative name is joined to the image's folder, not normalised. */
export function fullBackingName(image: string, backing: string): string {
  if (backing.startsWith('/') || /^[a-z]+:/i.test(backing)) return backing;
  const dir = dirName(image);
  return dir ? `${dir}/${backing}` : backing;
}
