import type { PickedFile } from '../../workers/protocol.ts';

/** The file the user chose in the save dialog, and whether the dialog made it. */
export interface PickedOutput {
  handle: FileSystemFileHandle;
  /**
   * True when the file did not exist before the dialog (it is empty and brand new). Only such a
   * file may be removed when the conversion fails or is cancelled; a file the user chose to
   * replace keeps its old content (the staged write is aborted instead).
   */
  createdByDialog: boolean;
}

/** A file the dialog created is empty and was modified while the dialog was open (clock skew allowed). */
const CLOCK_SLACK_MS = 2000;

/** The save dialog; null when the user closed it. */
export async function pickOutputFile(options: SaveFilePickerOptions): Promise<PickedOutput | null> {
  const opened = Date.now();
  let handle: FileSystemFileHandle;
  try {
    handle = await window.showSaveFilePicker!(options);
  } catch (e) {
    if ((e as DOMException).name === 'AbortError') return null;
    throw e;
  }
  const file = await handle.getFile();
  return { handle, createdByDialog: file.size === 0 && file.lastModified >= opened - CLOCK_SLACK_MS };
}

/**
 * The dropped file that `handle` is, if any: the same entry (File System Access knows), or for
 * files that came without a handle (an <input>, a plain drop), the same name, size and
 * modification time — as close as a page can get to "the same file".
 */
export async function sameFileAsSource(handle: FileSystemFileHandle, sources: readonly PickedFile[]): Promise<PickedFile | undefined> {
  for (const s of sources) {
    if (s.handle && (await s.handle.isSameEntry(handle).catch(() => false))) return s;
  }
  const picked = await handle.getFile().catch(() => undefined);
  if (!picked || picked.size === 0) return undefined;
  return sources.find(
    (s) => !s.handle && s.file.name === picked.name && s.file.size === picked.size && s.file.lastModified === picked.lastModified,
  );
}
