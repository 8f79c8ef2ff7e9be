import { drivers } from '../src-core/formats/registry.ts';
import { ExtentEndTracker, type Shortfall } from '../src-core/image/integrity.ts';
import { openImage, probeDetailed } from '../src-core/image/open.ts';
import { rawDoubt } from '../src-core/image/rawDoubts.ts';
import { detectContainer } from '../src-core/image/containers/index.ts';
import type { BlockDevice } from '../src-core/image/types.ts';
import { joinRelative, normalizePath, type ByteSource } from '../src-core/io/bytes.ts';
import { DiskFerryError, ErrorCode, errorLine, MissingFileError, PartOfImageError, UnsupportedError } from '../src-core/io/errors.ts';
import { humanSize, infoJson } from '../src-core/pipeline/info.ts';
import { gatherFacts } from '../src-core/pipeline/lint/index.ts';
import { FileSetResolver, type PickedFile } from './io/fileSet.ts';
import { inputFor, type InputFiles } from './io/inputFiles.ts';
import { allocationSummary } from './allocationMap.ts';
import { chooseCodecs } from './codecs.ts';
import type { CompressedFile, IgnoredFile, ImageSummary, InspectError, Inspection, InspectOptions } from './protocol.ts';

/** A dropped folder can hold anything; past this many files we stop probing. */
const MAX_PROBED_FILES = 256;

/**
 * Works out which of the dropped files are disk images and describes each one. Every file is
 * probed; an image is opened with a resolver over the whole set, and every file it pulls in
 * (extents, backing files) is a companion, not an image of its own. A file that only "raw"
 * claims is an image only when nothing argues against it (image/rawDoubts.ts) or the user
 * chose "treat as raw"; otherwise it is listed as ignored, with the reason.
 */
export async function inspectFiles(files: PickedFile[], opts: InspectOptions): Promise<Inspection> {
  const codecs = chooseCodecs();
  const probeSet = new FileSetResolver(files);
  const asRaw = new Set((opts.treatAsRaw ?? []).map(normalizePath));
  const candidates: { path: string; format?: string }[] = [];
  const ignored: IgnoredFile[] = [];
  const compressed: CompressedFile[] = [];
  const errors: InspectError[] = [];
  for (const f of files.slice(0, MAX_PROBED_FILES)) {
    const path = normalizePath(f.path);
    if (asRaw.has(path) && f.file.size > 0) {
      candidates.push({ path, format: 'raw' });
      continue;
    }
    try {
      const src = probeSet.source(path);
      const found = await classify(src, path, files.length === 1);
      if (found.as === 'image') candidates.push({ path });
      else if (found.as === 'compressed') compressed.push({ path, kind: found.kind, size: src.size });
      else ignored.push({ path, reason: found.reason, rawAllowed: found.rawAllowed });
    } catch (e) {
      errors.push(toInspectError(path, e));
    }
  }
  for (const f of files.slice(MAX_PROBED_FILES)) {
    ignored.push({
      path: normalizePath(f.path),
      reason: `not looked at: a drop is read up to ${MAX_PROBED_FILES} files`,
      rawAllowed: false,
    });
  }

  const images: ImageSummary[] = [];
  const companions = new Set<string>();
  /** Files an image that failed to open looked at: not set aside as "not a disk". */
  const lookedAt = new Set<string>();
  /** Pieces refused on their own, by the path of the image they belong to. */
  const owners = new Map<string, string>();
  for (const c of candidates) {
    const resolver = new FileSetResolver(files);
    try {
      const summary = await describe(c.path, c.format, resolver, opts, codecs);
      images.push(summary);
      // Only what the image keeps open: files merely looked at (parent candidates) stay images.
      for (const p of summary.companions) companions.add(p);
    } catch (e) {
      errors.push(toInspectError(c.path, e));
      for (const p of resolver.opened) if (p !== c.path) lookedAt.add(p);
      if (e instanceof PartOfImageError && e.owner) owners.set(c.path, joinRelative(c.path, e.owner));
    }
  }
  const isImage = (p: string) => !companions.has(p);
  // A piece whose image is among the dropped files is shown through that image (or its error).
  const candidatePaths = candidates.map((c) => c.path);
  const shownElsewhere = (p: string) => candidatePaths.includes(owners.get(p) ?? '');
  return {
    images: images.filter((i) => isImage(i.path)),
    compressed,
    errors: errors.filter((e) => isImage(e.path) && !shownElsewhere(e.path)),
    ignored: ignored.filter((i) => isImage(i.path) && !lookedAt.has(i.path)),
    companions: [...companions],
  };
}

export /** What a file is before it is opened: an image, a compressed file, or not a disk (and why). */
type Classified = { as: 'image' } | { as: 'compressed'; kind: string } | { as: 'ignored'; reason: string; rawAllowed: boolean };

/**
 * Probes one file. A format qemu-img knows and DiskFerry cannot read yet is refused by name;
 * a file only raw claims is an image only when nothing argues against it (image/rawDoubts.ts).
 * `name` is what its extension is judged by; `alone`: it is the only file given.
 */
export async function classify(src: ByteSource, name: string, alone: boolean): Promise<Classified> {
  const { scored, foreign, head } = await probeDetailed(src, drivers);
  if (foreign) throw new UnsupportedError(src.name, `this is a ${foreign.name} image, which DiskFerry cannot read yet`);
  const [best] = scored;
  if (best && best.driver.name !== 'raw') return { as: 'image' };
  // A .gz/.xz/.zst/.bz2/.zip: the image inside is read once it is unpacked.
  const kind = detectContainer(head);
  if (kind) return { as: 'compressed', kind };
  const doubt = rawDoubt(head, src.size, name, drivers, alone);
  if (!doubt) return { as: 'image' };
  return { as: 'ignored', reason: doubt.reason, rawAllowed: doubt.kind !== 'empty' };
}

export async function describe(
  path: string,
  format: string | undefined,
  resolver: InputFiles,
  opts: InspectOptions,
  codecs: ReturnType<typeof chooseCodecs>,
): Promise<ImageSummary> {
  const password = opts.password ? new TextEncoder().encode(opts.password) : undefined;
  const src = resolver.source(path);
  const warnings: string[] = [];
  let missingBacking: string | undefined;
  let dev: BlockDevice;
  try {
    dev = await openImage(src, drivers, { resolver, codecs, password, format });
  } catch (e) {
    // A missing backing file still leaves this layer worth showing; a missing extent does not.
    if (!(e instanceof MissingFileError)) throw e;
    dev = await openImage(src, drivers, { resolver, codecs, password, format, noBacking: true });
    if (!dev.backingRef) throw e;
    missingBacking = e.missing;
    warnings.push(
      `The backing file "${e.missing}" was not dropped with this image: add it (or drop the folder that holds both) to read the whole disk.`,
    );
  }
  try {
    const info = dev.info();
    const driver = drivers.find((d) => d.name === info.format);
    if (info['dirty-flag']) warnings.push('The image was not closed cleanly (dirty flag set); it may be inconsistent.');
    const fsData = info['format-specific']?.data;
    if (fsData?.corrupt === true) warnings.push('The image is marked corrupt by its writer.');
    const companionPaths = resolver.inUse.filter((p) => p !== path);
    // qemu-img info reads only headers; the map reads the tables too, so damage may show only here.
    const ends = new ExtentEndTracker(dev.filename);
    const map = await allocationSummary(dev, undefined, undefined, (e) => ends.add(e)).catch((e: unknown) => {
      warnings.push(`The allocation map could not be read, so this image is damaged: ${errorLine(e)}`);
      return undefined;
    });
    const sizes = new Map([path, ...companionPaths].map((p) => [normalizePath(p), resolver.source(p).size] as const));
    const shortfalls = ends.shortfalls((name) => sizes.get(normalizePath(name)));
    for (const s of shortfalls) warnings.push(incompleteMessage(s, normalizePath(path)));
    let filesBytes = 0;
    for (const size of sizes.values()) filesBytes += size;
    // The pre-flight check's facts (pipeline/lint); a damaged image simply has none.
    const facts = await gatherFacts(path, dev, src).catch(() => undefined);
    return {
      path,
      format: info.format,
      label: driver?.label ?? info.format,
      info,
      json: infoJson(info),
      virtualSize: dev.virtualSize,
      filesBytes,
      companions: companionPaths,
      snapshots: info.snapshots ?? [],
      warnings,
      incomplete: shortfalls.length > 0,
      missingBacking,
      forcedRaw: format === 'raw',
      map,
      facts,
    };
  } finally {
    await dev.close();
  }
}

function incompleteMessage(s: Shortfall, image: string): string {
  const which = normalizePath(s.file) === image ? 'This file' : `Its file "${s.file}"`;
  return `${which} is incomplete (${humanSize(s.size)} of ~${humanSize(s.expected)}) — was the copy interrupted? The missing part cannot be converted; copy the file again.`;
}

export function toInspectError(path: string, e: unknown): InspectError {
  const code = e instanceof DiskFerryError ? e.code : ErrorCode.Io;
  return { path, code, message: errorLine(e), missing: e instanceof MissingFileError ? e.names : undefined };
}

/**
 * Opens an encrypted image with its password, and closes it again: a wrong LUKS password fails
 * here (no key slot opens), so the page can say so next to the password field. Legacy AES has no
 * key check (in QEMU either): any password "unlocks" it.
 */
export async function unlockImage(
  files: PickedFile[],
  path: string,
  format: string | undefined,
  password: string,
  url?: string,
): Promise<void> {
  const codecs = chooseCodecs();
  const resolver = inputFor({ files, url });
  await resolver.ready?.();
  const dev = await openImage(resolver.source(path), drivers, {
    resolver,
    codecs,
    format,
    password: new TextEncoder().encode(password),
    noBacking: true,
  });
  await dev.close();
}
