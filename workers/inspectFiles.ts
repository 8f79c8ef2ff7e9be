import { drivers } from '../src-core/formats/registry.ts';
import { probeAll, openImage } from '../src-core/image/open.ts';
import type { BlockDevice } from '../src-core/image/types.ts';
import { baseName, joinRelative, normalizePath } from '../src-core/io/bytes.ts';
import { DiskFerryError, ErrorCode, errorLine, MissingFileError, PartOfImageError } from '../src-core/io/errors.ts';
import { infoJson } from '../src-core/pipeline/info.ts';
import { FileSetResolver, type PickedFile } from '../web/adapters/fileSet.ts';
import { allocationSummary } from './allocationMap.ts';
import { chooseCodecs } from './codecs.ts';
import type { ImageSummary, InspectError, Inspection, InspectOptions } from './protocol.ts';

/** A dropped folder can hold anything; past this many files we stop probing. */
const MAX_PROBED_FILES = 256;

/**
 * Works out which of the dropped files are disk images and describes each one. Every file is
 * probed; an image is opened with a resolver over the whole set, and every file it pulls in
 * (extents, backing files) is a companion, not an image of its own. A file that only "raw"
 * claims counts as an image only when its name looks like one, or when it came alone.
 */
export async function inspectFiles(files: PickedFile[], opts: InspectOptions): Promise<Inspection> {
  const codecs = chooseCodecs();
  const probeSet = new FileSetResolver(files);
  const candidates: string[] = [];
  const others: string[] = [];
  const errors: InspectError[] = [];
  const rawExts = drivers.find((d) => d.name === 'raw')?.extensions ?? [];
  for (const f of files.slice(0, MAX_PROBED_FILES)) {
    const path = normalizePath(f.path);
    try {
      const [best] = await probeAll(probeSet.source(path), drivers);
      const looksRaw = rawExts.includes(extension(path)) || files.length === 1;
      if (best && (best.driver.name !== 'raw' || looksRaw)) candidates.push(path);
      else others.push(path);
    } catch (e) {
      errors.push(toInspectError(path, e));
    }
  }
  others.push(...files.slice(MAX_PROBED_FILES).map((f) => normalizePath(f.path)));

  const images: ImageSummary[] = [];
  const companions = new Set<string>();
  /** Pieces refused on their own, by the path of the image they belong to. */
  const owners = new Map<string, string>();
  for (const path of candidates) {
    const resolver = new FileSetResolver(files);
    try {
      const summary = await describe(path, resolver, opts, codecs);
      images.push(summary);
      // Only what the image keeps open: files merely looked at (parent candidates) stay images.
      for (const c of summary.companions) companions.add(c);
    } catch (e) {
      errors.push(toInspectError(path, e));
      if (e instanceof PartOfImageError && e.owner) owners.set(path, joinRelative(path, e.owner));
    }
  }
  const isImage = (p: string) => !companions.has(p);
  // A piece whose image is among the dropped files is shown through that image (or its error).
  const shownElsewhere = (p: string) => candidates.includes(owners.get(p) ?? '');
  return {
    images: images.filter((i) => isImage(i.path)),
    errors: errors.filter((e) => isImage(e.path) && !shownElsewhere(e.path)),
    others: [...others, ...candidates.filter((p) => !isImage(p))],
  };
}

async function describe(path: string, resolver: FileSetResolver, opts: InspectOptions, codecs: ReturnType<typeof chooseCodecs>): Promise<ImageSummary> {
  const password = opts.password ? new TextEncoder().encode(opts.password) : undefined;
  const src = resolver.source(path);
  const warnings: string[] = [];
  let dev: BlockDevice;
  try {
    dev = await openImage(src, drivers, { resolver, codecs, password });
  } catch (e) {
    // A missing backing file still leaves this layer worth showing; a missing extent does not.
    if (!(e instanceof MissingFileError)) throw e;
    dev = await openImage(src, drivers, { resolver, codecs, password, noBacking: true });
    if (!dev.backingRef) throw e;
    warnings.push(`The backing file "${dev.backingRef.name}" was not dropped with this image: drop the folder that holds both to read the whole disk.`);
  }
  try {
    const info = dev.info();
    const driver = drivers.find((d) => d.name === info.format);
    if (info['dirty-flag']) warnings.push('The image was not closed cleanly (dirty flag set); it may be inconsistent.');
    const fsData = info['format-specific']?.data;
    if (fsData?.corrupt === true) warnings.push('The image is marked corrupt by its writer.');
    const companionPaths = resolver.inUse.filter((p) => p !== path);
    // qemu-img info reads only headers; the map reads the tables too, so damage may show only here.
    const map = await allocationSummary(dev).catch((e: unknown) => {
      warnings.push(`The allocation map could not be read, so this image is damaged: ${errorLine(e)}`);
      return undefined;
    });
    let filesBytes = src.size;
    for (const c of companionPaths) filesBytes += resolver.source(c).size;
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
      map,
    };
  } finally {
    await dev.close();
  }
}

function extension(path: string): string {
  const b = baseName(path);
  const i = b.lastIndexOf('.');
  return i < 0 ? '' : b.slice(i + 1).toLowerCase();
}

export function toInspectError(path: string, e: unknown): InspectError {
  const code = e instanceof DiskFerryError ? e.code : ErrorCode.Io;
  return { path, code, message: errorLine(e) };
}
