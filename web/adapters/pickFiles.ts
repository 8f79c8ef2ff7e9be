import type { PickedFile } from '../../workers/protocol.ts';

/**
 * Turning the browser's many ways of handing over files (drop, <input>, File System Access
 * pickers, the installed app's launchQueue) into one list of files with relative paths, so a
 * folder holding a multi-file VMDK or a backing chain resolves by path.
 */

/** Files from an `<input type=file>`; `webkitdirectory` inputs carry the folder path. */
export function filesFromInput(list: FileList | null): PickedFile[] {
  return Array.from(list ?? [], (file) => ({ file, path: file.webkitRelativePath || file.name }));
}

/**
 * Files from a drop. Items must be read before the first `await`: the DataTransfer is emptied
 * when the event handler returns. `getAsFileSystemHandle()` is used only on trusted (real)
 * drops; on a script-built DataTransfer it crashed Chromium's browser process (docs/browser.md, Reading dropped files).
 */
export async function filesFromDrop(e: DragEvent): Promise<PickedFile[]> {
  const dt = e.dataTransfer;
  if (!dt) return [];
  const items = Array.from(dt.items).filter((i) => i.kind === 'file');
  const loose = Array.from(dt.files);
  if (e.isTrusted && items.length && typeof items[0]!.getAsFileSystemHandle === 'function') {
    const handles = await Promise.all(items.map((i) => i.getAsFileSystemHandle!()));
    if (handles.every((h) => h)) return filesFromHandles(handles as FileSystemHandle[]);
  }
  const entries = items.map((i) => i.webkitGetAsEntry?.() ?? null);
  if (entries.length && entries.every((x) => x) && entries.some((x) => x!.isDirectory)) {
    const out: PickedFile[] = [];
    for (const entry of entries) await walkEntry(entry!, '', out);
    return out;
  }
  return loose.map((file) => ({ file, path: file.name }));
}

/** Files from File System Access handles (pickers, trusted drops, launchQueue), folders walked. */
export async function filesFromHandles(handles: readonly FileSystemHandle[]): Promise<PickedFile[]> {
  const out: PickedFile[] = [];
  for (const h of handles) await walkHandle(h, '', out);
  return out;
}

async function walkHandle(h: FileSystemHandle, prefix: string, out: PickedFile[]): Promise<void> {
  const path = prefix ? `${prefix}/${h.name}` : h.name;
  if (h.kind === 'file') {
    out.push({ file: await (h as FileSystemFileHandle).getFile(), path, handle: h as FileSystemFileHandle });
    return;
  }
  for await (const child of (h as FileSystemDirectoryHandle).values()) await walkHandle(child, path, out);
}

async function walkEntry(entry: FileSystemEntry, prefix: string, out: PickedFile[]): Promise<void> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ file, path });
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries returns at most ~100 entries per call; an empty batch means the end.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) await walkEntry(child, path, out);
  }
}

/** Open-file dialog through File System Access; null when the user closed it. */
export async function pickFilesNative(): Promise<PickedFile[] | null> {
  try {
    const handles = await window.showOpenFilePicker!({ multiple: true, id: 'diskferry-open' });
    return filesFromHandles(handles);
  } catch (e) {
    if ((e as DOMException).name === 'AbortError') return null;
    throw e;
  }
}

/** Open-folder dialog through File System Access; null when the user closed it. */
export async function pickFolderNative(): Promise<PickedFile[] | null> {
  try {
    const dir = await window.showDirectoryPicker!({ id: 'diskferry-open', mode: 'read' });
    return filesFromHandles([dir]);
  } catch (e) {
    if ((e as DOMException).name === 'AbortError') return null;
    throw e;
  }
}
