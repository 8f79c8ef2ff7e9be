// Opening sources: dropped or picked files, an image on a web server, a compressed file unpacked,
// a file read as raw, the image chosen among them and its password. Everything here changes what
// is open and asks the long-lived inspector worker what it is, apart from the target form
// (targetForm.ts) and the conversion (job.ts), which work on whatever is open.
import { baseName } from '../../src-core/io/bytes.ts';
import { errorLine } from '../../src-core/io/errors.ts';
import type { PickedFile } from '../../workers/protocol.ts';
import { Comlink, inspectorWorker } from '../workerBridge.ts';
import { clearJobUnlessRunning } from './job.ts';
import { selectedImage, useApp } from './store.ts';

const set = useApp.setState;
const get = useApp.getState;

export async function loadFormats(): Promise<void> {
  const formats = await inspectorWorker().api.formats();
  set({ formats });
}

/**
 * New files join the open set, instead of replacing it, when they are files an open image names
 * and lacks (extents, a backing file): so "drop the missing ones" just works, anywhere on the page.
 */
export function completesOpenSet(files: readonly PickedFile[]): boolean {
  const i = get().inspection;
  // An image on a web server finds its companions there; dropped files start afresh.
  if (!i || get().remote) return false;
  const wanted = new Set(
    [...i.errors.flatMap((e) => e.missing ?? []), ...i.images.flatMap((im) => (im.missingBacking ? [im.missingBacking] : []))].map(
      baseNameOf,
    ),
  );
  return files.some((f) => wanted.has(baseNameOf(f.path)));
}

const baseNameOf = (p: string) => baseName(p.replace(/\\/g, '/')).toLowerCase();

/** New files from a drop, a picker, an input or the OS (launchQueue). */
export async function addFiles(files: PickedFile[], append = completesOpenSet(files)): Promise<void> {
  if (!files.length) return;
  const all = append ? mergeFiles(get().files, files) : files;
  const keepRaw = append ? get().rawPaths : [];
  set({
    files: all,
    remote: undefined,
    urlOpen: { state: 'idle' },
    rawPaths: keepRaw,
    inspection: undefined,
    inspectError: undefined,
    selected: undefined,
    unlock: { state: 'locked' },
  });
  clearJobUnlessRunning();
  await inspect();
}

export async function inspect(): Promise<void> {
  const { files, sourcePassword, rawPaths, remote } = get();
  set({ inspecting: true });
  try {
    const opts = { password: sourcePassword || undefined, treatAsRaw: rawPaths };
    let inspection;
    if (remote) {
      const r = await inspectorWorker().api.inspectUrl(remote.url, opts);
      // Something else was opened meanwhile: this answer describes nothing on the page.
      if (get().remote?.url !== remote.url) {
        set({ inspecting: false });
        return;
      }
      inspection = r.inspection;
      set({ remote: { url: r.url, fetched: r.fetched } });
    } else inspection = await inspectorWorker().api.inspect(files, opts);
    const keep = inspection.images.find((i) => i.path === get().selected);
    set({ inspection, selected: (keep ?? inspection.images[0])?.path, inspecting: false });
  } catch (e) {
    set({ inspecting: false, inspectError: errorLine(e) });
  }
}

/**
 * Opens an image on a web server instead of dropped files: the worker checks the URL, fetches
 * only the image's metadata (ranged GETs) and describes it. A URL that cannot be read (invalid,
 * refused by CORS, no Range support, missing) stays next to the field with the reason; what was
 * open stays open.
 */
export async function openUrl(text: string): Promise<void> {
  if (get().urlOpen.state === 'opening') return;
  const { sourcePassword } = get();
  set({ urlOpen: { state: 'opening', url: text } });
  const stillWanted = () => {
    const u = get().urlOpen;
    return u.state === 'opening' && u.url === text;
  };
  try {
    const r = await inspectorWorker().api.inspectUrl(text, { password: sourcePassword || undefined });
    if (!stillWanted()) return;
    set({
      files: [],
      remote: { url: r.url, fetched: r.fetched },
      urlOpen: { state: 'idle' },
      rawPaths: [],
      inspection: r.inspection,
      inspectError: undefined,
      selected: r.inspection.images[0]?.path,
      unlock: { state: 'locked' },
    });
    clearJobUnlessRunning();
  } catch (e) {
    if (stillWanted()) set({ urlOpen: { state: 'failed', error: errorLine(e) } });
  }
}

/**
 * Unpacks a compressed file (.gz .xz .zst .bz2 .zip) into private storage and opens the image
 * inside in its place. The unpacked copy stays on this computer and goes when the app next loads.
 */
export async function unpackCompressed(path: string): Promise<void> {
  const picked = get().files.find((f) => f.path === path);
  if (!picked || get().unpacking) return;
  set({ unpacking: { path, done: 0, total: picked.file.size } });
  const onProgress = (p: { done: number; total: number }) => {
    if (get().unpacking?.path === path) set({ unpacking: { path, done: p.done, total: p.total || picked.file.size } });
  };
  try {
    const inner = await inspectorWorker().api.unpack(picked, Comlink.proxy(onProgress));
    set({ unpacking: undefined, files: get().files.map((f) => (f.path === path ? inner : f)) });
    await inspect();
  } catch (e) {
    set({ unpacking: { path, done: 0, total: 0, error: errorLine(e) } });
  }
}

/** The user's explicit choice to read a file as a raw disk, whatever its name or contents say. */
export async function treatAsRaw(path: string): Promise<void> {
  set({ rawPaths: [...new Set([...get().rawPaths, path])], selected: path });
  await inspect();
  set({ selected: path });
}

export function selectImage(path: string): void {
  set({ selected: path, target: { ...get().target, snapshot: '' }, unlock: { state: 'locked' } });
  clearJobUnlessRunning();
}

export function setSourcePassword(p: string): void {
  set({ sourcePassword: p, unlock: { state: 'locked' } });
}

/** Checks the source password now, next to its field, instead of after the save dialog. */
export async function unlockSource(): Promise<boolean> {
  const s = get();
  const image = selectedImage(s);
  if (!image) return false;
  const tried = s.sourcePassword;
  set({ unlock: { state: 'checking' } });
  // An answer about a password the user has since changed says nothing about the new one.
  const current = () => get().sourcePassword === tried && selectedImage(get())?.path === image.path;
  try {
    await inspectorWorker().api.unlock(s.files, image.path, image.forcedRaw ? 'raw' : undefined, tried, s.remote?.url);
    if (current()) set({ unlock: { state: 'unlocked' } });
    return true;
  } catch (e) {
    if (current()) set({ unlock: { state: 'failed', error: errorLine(e) } });
    return false;
  }
}

function mergeFiles(a: PickedFile[], b: PickedFile[]): PickedFile[] {
  const byPath = new Map(a.map((f) => [f.path, f]));
  for (const f of b) byPath.set(f.path, f);
  return [...byPath.values()];
}
