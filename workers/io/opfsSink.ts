import type { ByteSink } from '../../src-core/io/bytes.ts';
import { DiskFerryError, ErrorCode } from '../../src-core/io/errors.ts';
import { guard } from './writableSink.ts';

/** Folder in the origin-private file system that holds finished outputs until they are downloaded. */
export const OPFS_OUTPUT_DIR = 'diskferry-output';

/**
 * An output file in the origin-private file system, written through a sync access handle.
 * Only dedicated workers may open one. It is the one positional-write API in every engine,
 * and it writes at disk speed (251 MB/s measured, docs/browser.md, Private storage). When it is done the page offers
 * the file as a download and then deletes it.
 */
export class OpfsSink implements ByteSink {
  size = 0;
  private closed = false;

  private constructor(
    private readonly dir: FileSystemDirectoryHandle,
    private readonly handle: FileSystemFileHandle,
    private readonly access: FileSystemSyncAccessHandle,
    readonly name: string,
  ) {}

  /** `storageName` is the entry in OPFS; `name` is what the user will call the file (for messages). */
  static async create(storageName: string, name = storageName): Promise<OpfsSink> {
    const root = await navigator.storage.getDirectory();
    const dir = await root.getDirectoryHandle(OPFS_OUTPUT_DIR, { create: true });
    const handle = await dir.getFileHandle(storageName, { create: true });
    if (!handle.createSyncAccessHandle) {
      throw new DiskFerryError(ErrorCode.Unsupported, name, 'this browser cannot write files in a worker (no OPFS sync access handles)');
    }
    const access = await guard(name, () => handle.createSyncAccessHandle!());
    access.truncate(0);
    return new OpfsSink(dir, handle, access, name);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      let n: number;
      try {
        n = this.access.write(data.subarray(done), { at: offset + done });
      } catch (e) {
        throw this.fullError(e);
      }
      // A full in-memory OPFS (incognito) returns -8 as an unsigned number instead of throwing
      // (docs/browser.md, Private storage): anything but progress within the request is a failed write.
      if (!(n > 0 && n <= data.length - done)) throw this.fullError();
      done += n;
    }
    this.size = Math.max(this.size, offset + data.length);
  }

  async truncate(size: number): Promise<void> {
    try {
      this.access.truncate(size);
    } catch (e) {
      throw this.fullError(e);
    }
    this.size = size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.access.flush();
    this.access.close();
  }

  /** The finished file, for the page to download (a disk-backed File, not a copy in memory). */
  async file(): Promise<File> {
    await this.close();
    return this.handle.getFile();
  }

  async remove(): Promise<void> {
    await this.close().catch(() => {});
    await this.dir.removeEntry(this.handle.name).catch(() => {});
  }

  private fullError(cause?: unknown): DiskFerryError {
    const why = cause instanceof Error ? ` (${cause.name}: ${cause.message})` : '';
    return new DiskFerryError(ErrorCode.Io, this.name, `write failed: the disk is full or the browser storage quota is exhausted${why}`);
  }
}
