import { CONTAINER_SUFFIX, openContainer } from '../../src-core/image/containers/index.ts';
import { assertNotAborted, DiskFerryError, ErrorCode } from '../../src-core/io/errors.ts';
import type { PickedFile } from './fileSet.ts';
import { BlobSource } from './blobSource.ts';

/** Folder in the origin-private file system that holds unpacked images while the page uses them. */
export const OPFS_SCRATCH_DIR = 'diskferry-unpacked';

/** Where the unpack is: compressed bytes read of the total, bytes written. */
export interface UnpackProgress {
  done: number;
  total: number;
  written: number;
}

/**
 * Unpacks a compressed container (.gz .xz .zst .bz2 .zip) into an OPFS file, streaming: memory
 * holds a chunk at a time, whatever the image's size. The result is a disk-backed File the page
 * opens like any other; it is named as the image inside (disk.qcow2.xz → disk.qcow2) and
 * deleted when the app next loads.
 */
export async function unpackToOpfs(picked: PickedFile, onProgress: (p: UnpackProgress) => void, signal?: AbortSignal): Promise<PickedFile> {
  const src = new BlobSource(picked.file, picked.path);
  const container = await openContainer(src);
  if (!container) throw new DiskFerryError(ErrorCode.InvalidArgument, picked.path, 'not a compressed file');
  const suffix = CONTAINER_SUFFIX[container.kind];
  const innerName =
    container.member ?? (picked.path.toLowerCase().endsWith(suffix) ? picked.path.slice(0, -suffix.length) : `${picked.path}.unpacked`);
  const base = innerName.slice(innerName.lastIndexOf('/') + 1);
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle(OPFS_SCRATCH_DIR, { create: true });
  const entry = `${Date.now()}-${base}`;
  const handle = await dir.getFileHandle(entry, { create: true });
  if (!handle.createSyncAccessHandle)
    throw new DiskFerryError(ErrorCode.Unsupported, base, 'this browser cannot write files in a worker (no OPFS sync access handles)');
  const access = await handle.createSyncAccessHandle();
  let written = 0;
  let ok = false;
  try {
    access.truncate(0);
    for await (const chunk of container.decode({
      signal,
      onProgress: (p) => onProgress({ done: p.compressedDone, total: p.compressedTotal, written: p.bytesOut }),
    })) {
      assertNotAborted(signal);
      let at = 0;
      while (at < chunk.length) {
        const n = access.write(chunk.subarray(at), { at: written + at });
        // A full (or in-memory) OPFS reports failure as a bogus count rather than throwing.
        if (!(n > 0 && n <= chunk.length - at))
          throw new DiskFerryError(ErrorCode.Io, base, 'not enough space in the browser storage to unpack this file');
        at += n;
      }
      written += chunk.length;
    }
    access.flush();
    ok = true;
  } finally {
    access.close();
    if (!ok) await dir.removeEntry(entry).catch(() => {});
  }
  const file = await handle.getFile();
  const dirPart = picked.path.includes('/') ? picked.path.slice(0, picked.path.lastIndexOf('/') + 1) : '';
  return { file: new File([file], base), path: `${dirPart}${base}` };
}

/** Deletes images unpacked by earlier visits. */
export async function removeUnpacked(): Promise<void> {
  try {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry(OPFS_SCRATCH_DIR, { recursive: true });
  } catch {
    // Nothing unpacked, or no OPFS.
  }
}
