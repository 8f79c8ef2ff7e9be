import { readPadded, type ByteSource } from '../../io/bytes.ts';
import { isDiskFerryError, MissingFileError } from '../../io/errors.ts';
import { guidToString, isNullGuid } from '../../io/guid.ts';
import { bytesEqual } from '../../io/struct.ts';
import type { OpenContext } from '../../image/types.ts';
import { isVdi, VDI_HEADER_BYTES, type VdiHeader } from './header.ts';

/** Folders of VirtualBox VMs are small; reading more headers than this is not a search but a scan. */
const MAX_CANDIDATES = 256;

export interface VdiParent {
  name: string;
  /** The parent's modification UUID differs from the one the child recorded: it changed after the snapshot. */
  modified: boolean;
}

/**
 * A differencing VDI stores no parent file name (VirtualBox keeps that in the .vbox XML), only the
 * parent's creation UUID (uuidLinkage) and modification UUID. We look for it through the
 * resolver: first `{uuid}.vdi`, VirtualBox's name for snapshot images, then every .vdi file in
 * the child's folder (FileResolver.list), and take the one whose uuidCreate is the linkage UUID.
 */
export async function findVdiParent(src: ByteSource, h: VdiHeader, ctx: OpenContext): Promise<VdiParent | undefined> {
  const resolver = ctx.resolver;
  if (!resolver) return undefined;
  const own = src.name.slice(src.name.lastIndexOf('/') + 1);
  const names = [`{${guidToString(h.uuidLinkage)}}.vdi`];
  if (resolver.list) {
    for (const n of await resolver.list(src.name)) if (/\.vdi$/i.test(n) && n !== own && !names.includes(n)) names.push(n);
  }
  for (const name of names.slice(0, MAX_CANDIDATES)) {
    let cand: ByteSource;
    try {
      cand = await resolver.open(name, src.name);
    } catch (e) {
      if (isDiskFerryError(e)) continue;
      throw e;
    }
    try {
      const head = await readPadded(cand, 0, VDI_HEADER_BYTES);
      if (!isVdi(head)) continue;
      if (bytesEqual(head.subarray(0x188, 0x198), h.uuidLinkage)) {
        const modified = !isNullGuid(h.uuidParentModify) && !bytesEqual(head.subarray(0x198, 0x1a8), h.uuidParentModify);
        return { name, modified };
      }
    } finally {
      await cand.close?.();
    }
  }
  return undefined;
}

export function missingParent(src: ByteSource, h: VdiHeader): MissingFileError {
  return new MissingFileError(
    src.name,
    `a VDI whose UUID is ${guidToString(h.uuidLinkage)} (put the parent image in the same folder)`,
    'parent image',
  );
}
