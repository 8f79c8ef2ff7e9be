import { CorruptImageError, MissingFileError } from './errors.ts';

/**
 * Where image bytes come from and go to. Every platform (Blob in the browser, fd in Node,
 * memory in tests) implements these three small interfaces; nothing else in the core knows
 * which platform it runs on.
 */

/** Random-access reads of a file. Reads past the end return only the bytes that exist. */
export interface ByteSource {
  /** File name as the user knows it; used in error messages. */
  readonly name: string;
  readonly size: number;
  /** Bytes the file occupies on disk (st_blocks·512), where the platform knows it. */
  readonly allocatedSize?: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Where the file holds data, on platforms whose file system can tell (lseek SEEK_DATA in the
   * CLI): the data runs within [from, to), in order; everything else is a hole that reads as
   * zeros. Absent where nobody can tell; then every byte counts as data and is read.
   */
  dataRuns?(from: number, to: number): Iterable<[number, number]>;
  close?(): Promise<void>;
}

/**
 * Positioned writes into an output file.
 *
 * Whoever opens a sink closes it: an ImageWriter never closes the sink it was given (its
 * caller does, after finish(), or aborts/removes it on failure), and closes in finish() only
 * the companion sinks it created itself through `FileResolver.create()`. A sink that holds
 * writes back (SinkBuffer, the page's WritableSink) writes them out in its own close().
 */
export interface ByteSink {
  readonly name: string;
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Like write(), for bytes the caller gives away (never changes again): a sink that holds
   * writes for later may keep them without a copy.
   */
  writeOwned?(offset: number, data: Uint8Array): Promise<void>;
  /** Sets the final length (extends with zeros or cuts). */
  truncate?(size: number): Promise<void>;
  /**
   * Writes worth having in flight at once (positioned writes on a thread pool: the CLI's
   * files). SinkBuffer queues that many runs without waiting, never two that overlap. Absent: 1.
   */
  readonly queueDepth?: number;
  /** Makes the file complete (flushes what is held); called once, by the code that opened the sink. */
  close(): Promise<void>;
}

/** Opens companion files (extents, backing files, OVA members) by the name an image gives. */
export interface FileResolver {
  /** `name` is as written in the image; `relativeTo` is the name of the file that referenced it. */
  open(name: string, relativeTo: string): Promise<ByteSource>;
  /** Creates a sibling output file (split VMDK extents, descriptors); the writer that creates one closes it. */
  create?(name: string, relativeTo: string): Promise<ByteSink>;
  /**
   * Names of the files in the folder of `relativeTo`, for formats that find a companion by its
   * content rather than its name (a differencing VDI names its parent only by UUID).
   */
  list?(relativeTo: string): Promise<string[]>;
}

/** Reads exactly `length` bytes or fails: for metadata that must be complete. */
export async function readExact(src: ByteSource, offset: number, length: number): Promise<Uint8Array> {
  const b = await src.read(offset, length);
  if (b.length < length) {
    throw new CorruptImageError(
      src.name,
      `file ends at ${src.size} bytes but ${length} bytes are needed at offset ${offset} (truncated file?)`,
    );
  }
  return b;
}

/** Reads `length` bytes, filling with zeros past the end of the file. */
export async function readPadded(src: ByteSource, offset: number, length: number): Promise<Uint8Array> {
  const b = await src.read(offset, length);
  if (b.length === length) return b;
  const out = new Uint8Array(length);
  out.set(b);
  return out;
}

export class MemorySource implements ByteSource {
  constructor(
    readonly bytes: Uint8Array,
    readonly name = 'memory',
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.bytes.length, offset + length);
    return offset >= end ? new Uint8Array(0) : this.bytes.slice(offset, end);
  }
}

/** A byte range of another source, e.g. a member of an OVA tar. */
export class SliceSource implements ByteSource {
  constructor(
    private readonly inner: ByteSource,
    private readonly start: number,
    readonly size: number,
    readonly name: string,
  ) {}
  read(offset: number, length: number): Promise<Uint8Array> {
    const len = Math.max(0, Math.min(length, this.size - offset));
    return this.inner.read(this.start + offset, len);
  }
}

/** A growable in-memory sink, for tests and small metadata files. */
export class MemorySink implements ByteSink {
  private buf = new Uint8Array(1 << 16);
  private len = 0;
  closed = false;
  constructor(readonly name = 'memory') {}
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.ensure(offset + data.length);
    this.buf.set(data, offset);
    this.len = Math.max(this.len, offset + data.length);
  }
  async truncate(size: number): Promise<void> {
    this.ensure(size);
    if (size < this.len) this.buf.fill(0, size, this.len);
    this.len = size;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  get bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}

/** Resolves names against a map of in-memory files (tests, dropped file sets). */
export class MapResolver implements FileResolver {
  constructor(private readonly files: Map<string, ByteSource>) {}
  async open(name: string, relativeTo: string): Promise<ByteSource> {
    const key = joinRelative(relativeTo, name);
    const src = this.files.get(key) ?? this.files.get(name) ?? this.files.get(baseName(name));
    if (!src) {
      throw new MissingFileError(relativeTo, name);
    }
    return src;
  }
  async list(relativeTo: string): Promise<string[]> {
    const dir = dirName(relativeTo);
    const out: string[] = [];
    for (const key of this.files.keys()) if (dirName(key) === dir) out.push(baseName(key));
    return out;
  }
}

export function baseName(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

export function dirName(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** `name` interpreted relative to the folder of `relativeTo` (POSIX separators). */
export function joinRelative(relativeTo: string, name: string): string {
  if (name.startsWith('/')) return normalizePath(name);
  const dir = dirName(relativeTo);
  return normalizePath(dir ? `${dir}/${name}` : name);
}

export function normalizePath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length && out[out.length - 1] !== '..') out.pop();
    else if (part === '..' && abs) continue;
    else out.push(part);
  }
  return (abs ? '/' : '') + out.join('/');
}
