import { baseName } from '../../src-core/io/bytes.ts';

/** The file name without its folder and last extension. */
export function stem(path: string): string {
  const base = baseName(path);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/**
 * The name the save dialog suggests. It never equals the name of a file the user dropped:
 * a conversion that keeps the extension (vmdk → stream vmdk, qcow2 → qcow2) would otherwise
 * offer the source's own name, and one "Replace" click later the source would be gone.
 * `qualifier` says what differs (e.g. "stream"); a number follows if even that is taken.
 */
export function suggestOutputName(sourcePath: string, extension: string, qualifier: string, taken: readonly string[]): string {
  const names = new Set(taken.map((t) => baseName(t).toLowerCase()));
  const base = stem(sourcePath);
  const plain = `${base}.${extension}`;
  if (!names.has(plain.toLowerCase())) return plain;
  for (let n = 1; ; n++) {
    const candidate = `${base}.${qualifier}${n > 1 ? `-${n}` : ''}.${extension}`;
    if (!names.has(candidate.toLowerCase())) return candidate;
  }
}
