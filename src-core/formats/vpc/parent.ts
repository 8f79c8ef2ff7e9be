import { readExact, readPadded, type ByteSource } from '../../io/bytes.ts';
import { CorruptImageError, isDiskFerryError, MissingFileError } from '../../io/errors.ts';
import { bytesEqual, utf8Decode } from '../../io/struct.ts';
import { uuidToString } from '../../io/guid.ts';
import type { OpenContext } from '../../image/types.ts';
import { decodeUtf16, type DynamicHeader, type ParentLocator } from './dynamicHeader.ts';
import { FOOTER_SIZE, hasCookie } from './footer.ts';

/** Locator data is a path; anything longer than this is not one. */
const MAX_LOCATOR_BYTES = 64 * 1024;

/** Relative locators first: they survive moving the pair of files together. */
const PRIORITY = ['W2ru', 'Wi2r', 'MacX', 'W2ku', 'Wi2k'];

/** A Windows or URL path as a name our resolvers understand (forward slashes, no "./"). */
function normalizeName(p: string): string {
  let n = p.replace(/\\/g, '/');
  if (n.startsWith('file://')) n = decodeURIComponent(n.slice('file://'.length));
  while (n.startsWith('./')) n = n.slice(2);
  return n;
}

async function locatorText(src: ByteSource, loc: ParentLocator): Promise<string | undefined> {
  if (!loc.dataLength || loc.dataLength > MAX_LOCATOR_BYTES) return undefined;
  const b = await readExact(src, loc.dataOffset, loc.dataLength);
  switch (loc.code) {
    case 'W2ru':
    case 'W2ku':
      return decodeUtf16(b, true);
    case 'Wi2r':
    case 'Wi2k':
    case 'MacX': {
      const nul = b.indexOf(0);
      return utf8Decode(nul < 0 ? b : b.subarray(0, nul));
    }
    default:
      return undefined;
  }
}

/**
 * Candidate names for a differencing disk's parent, best first: the parent locators (VHD spec
 * §"Parent Locator Entries"), then the bare parent name the header stores, and the file name
 * alone of every absolute path (the usual case once files have moved to another machine).
 */
export async function parentCandidates(src: ByteSource, h: DynamicHeader): Promise<string[]> {
  const names: string[] = [];
  const add = (n: string | undefined) => {
    if (n && !names.includes(n)) names.push(n);
  };
  const locs = [...h.locators].sort((a, b) => rank(a.code) - rank(b.code));
  const texts: string[] = [];
  for (const loc of locs) {
    const t = await locatorText(src, loc);
    if (t) texts.push(normalizeName(t));
  }
  for (const t of texts) if (!/^[a-z]:\//i.test(t)) add(t);
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  if (h.parentName) add(base(normalizeName(h.parentName)));
  for (const t of texts) add(base(t));
  return names;
}

function rank(code: string): number {
  const i = PRIORITY.indexOf(code);
  return i < 0 ? PRIORITY.length : i;
}

/** The footer UUID of a VHD file: the copy at 0 for dynamic disks, else the trailing one. */
async function footerUuid(src: ByteSource): Promise<Uint8Array | undefined> {
  let f = await readPadded(src, 0, FOOTER_SIZE);
  if (!hasCookie(f) && src.size >= FOOTER_SIZE) f = await readPadded(src, src.size - FOOTER_SIZE, FOOTER_SIZE);
  return hasCookie(f) ? f.slice(68, 84) : undefined;
}

/**
 * Finds the parent through the resolver and checks that it is the disk the child was made
 * from: its footer UUID must equal the parent UUID in the child's dynamic header.
 */
export async function findParent(src: ByteSource, h: DynamicHeader, ctx: OpenContext): Promise<string> {
  const names = await parentCandidates(src, h);
  if (!names.length) throw new CorruptImageError(src.name, 'differencing VHD names no parent (no parent locator and no parent name)');
  if (ctx.noBacking || !ctx.resolver) return names[0]!;
  let wrong: { name: string; uuid: Uint8Array } | undefined;
  for (const name of names) {
    let parent: ByteSource;
    try {
      parent = await ctx.resolver.open(name, src.name);
    } catch (e) {
      if (isDiskFerryError(e)) continue;
      throw e;
    }
    try {
      const uuid = await footerUuid(parent);
      if (uuid && bytesEqual(uuid, h.parentUuid)) return name;
      if (uuid) wrong ??= { name, uuid };
    } finally {
      await parent.close?.();
    }
  }
  if (wrong) {
    throw new CorruptImageError(
      src.name,
      `parent "${wrong.name}" has UUID ${uuidToString(wrong.uuid)}, but this differencing disk was made from ${uuidToString(h.parentUuid)}`,
    );
  }
  throw new MissingFileError(src.name, names[0]!, 'parent VHD');
}
