import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import type { ByteSink, ByteSource, FileResolver } from '../src-core/io/bytes.ts';
import { canFindHoles, fileDataRuns } from './holes.ts';
import { DiskFerryError, ErrorCode, MissingFileError, UnsafePathError } from '../src-core/io/errors.ts';

/** A file read through a file descriptor: positioned reads, never the whole file. */
export class NodeFileSource implements ByteSource {
  private constructor(
    private readonly fh: fs.FileHandle,
    readonly name: string,
    readonly size: number,
    readonly allocatedSize: number,
  ) {}
  static async open(file: string, displayName = file): Promise<NodeFileSource> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, constants.O_RDONLY);
    } catch (e) {
      throw ioError(displayName, e);
    }
    const st = await fh.stat();
    if (st.isDirectory()) {
      await fh.close();
      throw new DiskFerryError(ErrorCode.InvalidArgument, displayName, 'is a folder, not an image file');
    }
    const source = new NodeFileSource(fh, displayName, st.size, st.blocks * 512);
    // A file with holes (fewer blocks than its length) on a file system that says where they are.
    if (st.isFile() && st.blocks * 512 < st.size && canFindHoles(fh.fd)) {
      source.dataRuns = (from: number, to: number) => fileDataRuns(fh.fd, from, to);
    }
    return source;
  }
  dataRuns?: (from: number, to: number) => Iterable<[number, number]>;
  async read(offset: number, length: number): Promise<Uint8Array> {
    const len = Math.max(0, Math.min(length, this.size - offset));
    // Not zero-filled first (every byte returned is read into it): a conversion reads GBs in
    // windows of several MiB, and clearing each one cost as much CPU as reading it. A plain
    // Uint8Array over the memory, not the Buffer: Buffer.slice() is a view, the core expects a copy.
    const mem = Buffer.allocUnsafeSlow(len);
    const buf = new Uint8Array(mem.buffer, mem.byteOffset, len);
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.fh.read(buf, done, len - done, offset + done);
      if (!bytesRead) break;
      done += bytesRead;
    }
    return done === len ? buf : buf.subarray(0, done);
  }
  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/**
 * Bytes per write(2). Linux 6.x (ext4 and others with large folios) sizes the page-cache folios
 * a write allocates by the write's length: a 4 MiB write takes 2 MiB folios, which come from the
 * high-order free blocks a VM's balloon has handed back to its host (free page reporting), and
 * the kernel's copy into them then faults on the host page after page. On this project's 2-core
 * VMs whole 4 MiB writes made `convert -O vhdx` take 2–4.6 s instead of 1.2–1.5 s at random
 * (after earlier output had been deleted). In `npm run bench` (5 runs each, qemu-img's median
 * 1.2–1.35 s): whole writes 0.99× / 1.63× (1.12–2.07 s) for -O qcow2 / -O vhdx; 128 KiB pieces
 * 1.16× / 1.10×; 256 KiB 1.15× / 1.01×, each within 0.15 s; 512 KiB 1.08× / 0.93× with a
 * 1.77 s outlier. qemu-img writes 64 KiB–2 MiB pieces. docs/performance.md, "Writes in pieces".
 */
const WRITE_PIECE = 256 * 1024;

/** Positioned writes into a file; every write's full length is checked. */
export class NodeFileSink implements ByteSink {
  /** libuv runs file writes on 4 threads: 4 runs queued keep them busy while we read and compress. */
  readonly queueDepth = 4;
  private closed = false;
  private constructor(
    private readonly fh: fs.FileHandle,
    readonly name: string,
    /** Bytes in the file (or block device) when it was opened. */
    readonly size = 0,
    /** Opened with openExisting: truncate() leaves the length alone. */
    private readonly keepLength = false,
  ) {}
  static async create(file: string): Promise<NodeFileSink> {
    try {
      return new NodeFileSink(await fs.open(file, 'w'), file);
    } catch (e) {
      throw ioError(file, e);
    }
  }
  /**
   * An existing file or block device, written in place: not created, not truncated, and its
   * length never changed (convert -n). A block device's size is found by seeking to its end.
   */
  static async openExisting(file: string): Promise<NodeFileSink> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, constants.O_RDWR);
    } catch (e) {
      throw ioError(file, e);
    }
    const st = await fh.stat();
    let size = st.size;
    if (st.isBlockDevice()) {
      const { getBlockDeviceSize } = await import('./blockDevice.ts');
      size = getBlockDeviceSize(fh.fd);
    }
    return new NodeFileSink(fh, file, size, true);
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const piece = Math.min(data.length - done, WRITE_PIECE);
      const { bytesWritten } = await this.fh.write(data, done, piece, offset + done).catch((e) => {
        throw ioError(this.name, e);
      });
      if (!bytesWritten)
        throw new DiskFerryError(ErrorCode.Io, this.name, `write at offset ${offset + done} made no progress (disk full?)`);
      done += bytesWritten;
    }
  }
  async truncate(size: number): Promise<void> {
    if (this.keepLength) return;
    await this.fh.truncate(size);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

export function ioError(file: string, e: unknown): DiskFerryError {
  const err = e as NodeJS.ErrnoException;
  const reason =
    err.code === 'ENOENT'
      ? 'no such file'
      : err.code === 'EACCES'
        ? 'permission denied'
        : err.code === 'ENOSPC'
          ? 'no space left on the device'
          : err.code === 'EISDIR'
            ? 'is a folder'
            : err.message;
  return new DiskFerryError(err.code === 'ENOENT' ? ErrorCode.MissingFile : ErrorCode.Io, file, reason);
}

/**
 * Opens companion files relative to the file that names them. Names that lead outside the
 * top image's folder are refused unless allowed (CVE-2024-32498: an image must not be able to
 * make us read an arbitrary host file).
 */
export class NodeResolver implements FileResolver {
  private readonly roots: string[];
  constructor(
    roots: string[],
    private readonly allowOutside = false,
  ) {
    this.roots = roots.map((r) => path.resolve(r));
  }
  resolve(name: string, relativeTo: string): string {
    return path.isAbsolute(name) ? path.normalize(name) : path.join(path.dirname(relativeTo), name);
  }
  async open(name: string, relativeTo: string): Promise<ByteSource> {
    const full = this.resolve(name, relativeTo);
    if (!this.allowOutside && !this.inside(full)) throw new UnsafePathError(relativeTo, name);
    try {
      return await NodeFileSource.open(full);
    } catch (e) {
      if (e instanceof DiskFerryError && e.code === ErrorCode.MissingFile) throw new MissingFileError(relativeTo, name);
      throw e;
    }
  }
  /** Companion files this resolver created, so a failed conversion can remove them. */
  readonly created: string[] = [];
  async create(name: string, relativeTo: string): Promise<ByteSink> {
    const full = this.resolve(name, relativeTo);
    const sink = await NodeFileSink.create(full);
    this.created.push(full);
    this.sinks.push(sink);
    return sink;
  }
  private readonly sinks: NodeFileSink[] = [];
  /** Closes every companion file still open (a writer that failed may leave them so). */
  async closeCreated(): Promise<void> {
    for (const s of this.sinks) await s.close().catch(() => {});
  }
  async list(relativeTo: string): Promise<string[]> {
    const dir = path.dirname(relativeTo);
    if (!this.allowOutside && !this.inside(dir)) return [];
    return fs.readdir(dir).catch(() => []);
  }
  private inside(p: string): boolean {
    const abs = path.resolve(p);
    return this.roots.some((r) => abs === r || abs.startsWith(r + path.sep));
  }
}
