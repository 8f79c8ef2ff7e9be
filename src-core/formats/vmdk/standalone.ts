import { baseName, readPadded, type ByteSource } from '../../io/bytes.ts';
import { isDiskFerryError, PartOfImageError } from '../../io/errors.ts';
import type { OpenContext } from '../../image/types.ts';
import { decodeDescriptor, looksLikeDescriptor, MAX_DESCRIPTOR_BYTES, parseDescriptor } from './descriptor.ts';
import { SECTOR } from './sparseHeader.ts';

/**
 * A sparse (KDMV) or COWD file opened as the image itself must carry its own descriptor. QEMU's
 * rule (vmdk_open → vmdk_read_cid with desc_offset 0x200): the 20 sectors from byte 512 on, read
 * as a C string, must contain "CID" and "parentCID", each followed by one character and a hex
 * number. A piece of a split set (`-s001`), an extent whose embedded descriptor is blank, or a
 * COWD delta fails it, and qemu-img refuses the file ("Invalid argument").
 */
const DESC_AT = 0x200;
const DESC_SIZE = 20 * SECTOR;

function qemuCid(text: string, key: string): number | undefined {
  const i = text.indexOf(key);
  if (i < 0) return undefined;
  // sscanf("%x") after skipping the key and one character (the "=").
  const m = /^\s*[+-]?(?:0[xX])?([0-9a-fA-F]+)/.exec(text.slice(i + key.length + 1));
  return m ? parseInt(m[1]!.slice(-8), 16) : undefined;
}

export async function hasOwnDescriptor(src: ByteSource): Promise<boolean> {
  const b = await readPadded(src, DESC_AT, DESC_SIZE);
  const nul = b.indexOf(0);
  const text = String.fromCharCode(...b.subarray(0, nul < 0 ? DESC_SIZE - 1 : nul));
  return qemuCid(text, 'CID') !== undefined && qemuCid(text, 'parentCID') !== undefined;
}

/** Descriptor names VMware gives the pieces it lists: NAME-s001, NAME-f001, NAME-flat, NAME-delta, NAME-sesparse. */
export function likelyDescriptorName(file: string): string | undefined {
  const m = /^(.*)-(?:[sf]\d{3}|flat|delta|sesparse)(\.vmdk)$/i.exec(baseName(file));
  return m ? m[1]! + m[2]! : undefined;
}

/** Most sibling files looked at when searching the folder for the descriptor that lists an extent. */
const MAX_SIBLINGS = 256;

/** The descriptor file next to `src` that lists it as an extent, if the resolver can find one. */
async function owningDescriptor(src: ByteSource, ctx: OpenContext): Promise<string | undefined> {
  const resolver = ctx.resolver;
  if (!resolver) return undefined;
  const me = baseName(src.name);
  const names: string[] = [];
  const likely = likelyDescriptorName(src.name);
  if (likely) names.push(likely);
  if (resolver.list) {
    try {
      const siblings = (await resolver.list(src.name)).filter((n) => /\.vmdk$/i.test(n) && n !== me && n !== likely);
      names.push(...siblings.sort().slice(0, MAX_SIBLINGS));
    } catch (e) {
      if (!isDiskFerryError(e)) throw e;
    }
  }
  for (const name of names) {
    let f: ByteSource;
    try {
      f = await resolver.open(name, src.name);
    } catch (e) {
      if (isDiskFerryError(e)) continue;
      throw e;
    }
    try {
      if (f.size > MAX_DESCRIPTOR_BYTES) continue;
      const bytes = await f.read(0, f.size);
      if (!looksLikeDescriptor(bytes)) continue;
      const d = parseDescriptor(name, decodeDescriptor(bytes));
      if (d.extents.some((e) => e.file !== undefined && baseName(e.file.replace(/\\/g, '/')) === me)) return name;
    } catch (e) {
      if (!isDiskFerryError(e)) throw e;
    } finally {
      await f.close?.();
    }
  }
  return undefined;
}

/** The one-line refusal for an extent opened on its own, naming the descriptor to open when one is found. */
export async function standaloneExtentError(src: ByteSource, ctx: OpenContext, kind: string): Promise<PartOfImageError> {
  const what = `this is a ${kind} extent without a descriptor of its own (no CID)`;
  const desc = await owningDescriptor(src, ctx);
  if (desc) return new PartOfImageError(src.name, `${what}: it belongs to ${desc}; open ${desc} instead`, desc);
  const likely = likelyDescriptorName(src.name);
  return new PartOfImageError(
    src.name,
    likely ? `${what}: open its descriptor file (probably ${likely}) instead` : `${what}: open the descriptor file that lists it instead`,
  );
}
