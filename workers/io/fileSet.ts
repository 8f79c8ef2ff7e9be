import type { ByteSource, FileResolver } from '../../src-core/io/bytes.ts';
import { baseName, dirName, joinRelative, normalizePath } from '../../src-core/io/bytes.ts';
import { MissingFileError } from '../../src-core/io/errors.ts';
import { BlobSource } from './blobSource.ts';

/** One file the user gave us, with its path inside the dropped folder (or just its name). */
export interface PickedFile {
  file: File;
  /** POSIX relative path: `webkitRelativePath`, the path walked from a dropped folder, or the name. */
  path: string;
  /** The file's handle, when it came through File System Access (pickers, trusted drops, the OS): lets the page tell it apart from an output. */
  handle?: FileSystemFileHandle;
}

/**
 * Finds companion files (VMDK extents, backing files, OVA members) among the files the user
 * dropped or picked. A name is looked up relative to the file that refers to it first, as QEMU
 * does on disk; when the user picked loose files instead of a folder, paths mean nothing, so the
 * base name decides (preferring a file in the referring file's folder when several share it).
 */
export class FileSetResolver implements FileResolver {
  private readonly byPath = new Map<string, PickedFile>();
  private readonly byBase = new Map<string, PickedFile[]>();
  private readonly sources = new Map<string, BlobSource>();
  /** Paths handed out through `open`, even if only looked at. */
  readonly opened = new Set<string>();
  /** Opens not yet closed, by path: what an open image holds. */
  private readonly holds = new Map<string, number>();

  constructor(
    readonly files: readonly PickedFile[],
    /** Read-ahead of each file's source (BlobSource): none for a reader that jumps. */
    private readonly readAhead?: number,
  ) {
    for (const f of files) {
      const p = normalizePath(f.path);
      this.byPath.set(p, f);
      const b = baseName(p);
      this.byBase.set(b, [...(this.byBase.get(b) ?? []), f]);
    }
  }

  /** The source for a picked file by its path (one BlobSource per file, reused). */
  source(path: string): ByteSource {
    const p = normalizePath(path);
    let s = this.sources.get(p);
    if (!s) {
      const f = this.byPath.get(p);
      if (!f) throw new MissingFileError('', path);
      s = new BlobSource(f.file, p, this.readAhead);
      this.sources.set(p, s);
    }
    return s;
  }

  async open(name: string, relativeTo: string): Promise<ByteSource> {
    const hit = this.lookup(name, relativeTo);
    if (!hit) throw new MissingFileError(relativeTo, name, 'companion file');
    const p = normalizePath(hit.path);
    this.opened.add(p);
    this.holds.set(p, (this.holds.get(p) ?? 0) + 1);
    const s = this.source(p);
    let closed = false;
    // Each open gets its own handle, so a file that was only looked at (a parent candidate that
    // did not match, a descriptor searched for) is told apart from one the image keeps open.
    return {
      name: s.name,
      get size() {
        return s.size;
      },
      read: (offset, length) => s.read(offset, length),
      close: async () => {
        if (closed) return;
        closed = true;
        this.holds.set(p, this.holds.get(p)! - 1);
      },
    };
  }

  /** Companions the opened images hold now: files opened through `open` and not closed since. */
  get inUse(): string[] {
    return [...this.holds].filter(([, n]) => n > 0).map(([p]) => p);
  }

  /** Names of the picked files in the folder of `relativeTo` (a differencing VDI finds its parent by UUID). */
  async list(relativeTo: string): Promise<string[]> {
    const dir = dirName(normalizePath(relativeTo));
    return [...this.byPath.keys()].filter((p) => dirName(p) === dir).map((p) => baseName(p));
  }

  private lookup(name: string, relativeTo: string): PickedFile | undefined {
    const unixName = name.replace(/\\/g, '/');
    const exact = this.byPath.get(joinRelative(relativeTo, unixName)) ?? this.byPath.get(normalizePath(unixName));
    if (exact) return exact;
    const same = this.byBase.get(baseName(unixName));
    if (!same?.length) return undefined;
    const dir = dirName(normalizePath(relativeTo));
    return same.find((f) => dirName(normalizePath(f.path)) === dir) ?? same[0];
  }
}
