import { errorLine } from '../../src-core/io/errors.ts';
import type { ConvertRequest, OutputTarget, PickedFile, ProgressReport } from '../../workers/protocol.ts';
import { nativeSaveSupported, opfsSupported } from '../capabilities.ts';
import { removeOpfsOutputs } from '../adapters/opfsCleanup.ts';
import { Comlink, inspectorWorker, startDiskWorker, type DiskWorker } from '../workerBridge.ts';
import { PRESETS } from './presets.ts';
import { initialTarget, selectedImage, useApp, type TargetChoice } from './store.ts';

const set = useApp.setState;
const get = useApp.getState;

/** After a soft cancel, how long the worker may take to close its file before it is killed. */
const HARD_ABORT_MS = 5000;
/** How often the page repaints progress (ms). */
const UI_PROGRESS_MS = 300;

export async function loadFormats(): Promise<void> {
  const formats = await inspectorWorker().api.formats();
  set({ formats });
}

/** New files from a drop, a picker, an input or the OS (launchQueue). */
export async function addFiles(files: PickedFile[], append = false): Promise<void> {
  if (!files.length) return;
  const all = append ? mergeFiles(get().files, files) : files;
  set({ files: all, inspection: undefined, inspectError: undefined, selected: undefined });
  // A running conversion keeps its status panel; it owns its own copy of the request.
  if (!running) resetJob();
  await inspect();
}

export async function inspect(): Promise<void> {
  const { files, sourcePassword } = get();
  set({ inspecting: true });
  try {
    const inspection = await inspectorWorker().api.inspect(files, { password: sourcePassword || undefined });
    const keep = inspection.images.find((i) => i.path === get().selected);
    set({ inspection, selected: (keep ?? inspection.images[0])?.path, inspecting: false });
  } catch (e) {
    set({ inspecting: false, inspectError: errorLine(e) });
  }
}

export function selectImage(path: string): void {
  set({ selected: path, target: { ...get().target, snapshot: '' } });
  if (!running) resetJob();
}

export function setSourcePassword(p: string): void {
  set({ sourcePassword: p });
}

export function updateTarget(patch: Partial<TargetChoice>): void {
  set({ target: { ...get().target, ...patch, preset: patch.preset } });
}

export function setTargetFormat(format: string): void {
  // Options belong to a format: a new format starts from its defaults.
  set({ target: { ...get().target, format, options: {}, preset: undefined } });
}

export function setOption(name: string, value: string | undefined): void {
  const options = { ...get().target.options };
  if (value === undefined || value === '') delete options[name];
  else options[name] = value;
  set({ target: { ...get().target, options, preset: undefined } });
}

export function applyPreset(id: string): void {
  const p = PRESETS.find((x) => x.id === id);
  const fmt = get().formats.find((f) => f.name === p?.target);
  if (!p || !fmt) return;
  // Only options the target's writer declares: a preset must never make the writer refuse.
  const known = new Set(fmt.createOptions.map((o) => o.name));
  const options = Object.fromEntries(Object.entries(p.options).filter(([k]) => known.has(k)));
  set({ target: { ...initialTarget, format: p.target, options, compress: p.compress, preset: id, snapshot: get().target.snapshot, verify: get().target.verify } });
}

function resetJob(): void {
  const o = get().job.outcome;
  if (o?.downloadUrl) URL.revokeObjectURL(o.downloadUrl);
  for (const x of o?.extraDownloads ?? []) URL.revokeObjectURL(x.url);
  set({ job: { state: 'idle' } });
}

let running: { worker: DiskWorker; controller: AbortController; output: OutputTarget } | undefined;
/** Set while the save dialog is open: a second click must not start a second conversion. */
let starting = false;

export async function startConvert(): Promise<void> {
  if (starting || running) return;
  starting = true;
  try {
    await convertSelected();
  } finally {
    starting = false;
  }
}

async function convertSelected(): Promise<void> {
  const s = get();
  const image = selectedImage(s);
  const fmt = s.formats.find((f) => f.name === s.target.format);
  if (!image || !fmt) return;
  const outputName = `${stem(image.path)}.${fmt.extensions[0] ?? fmt.name}`;
  resetJob();

  let output: OutputTarget;
  if (nativeSaveSupported) {
    try {
      const handle = await window.showSaveFilePicker!({
        suggestedName: outputName,
        types: [{ description: fmt.label, accept: { 'application/octet-stream': fmt.extensions.map((e) => `.${e}`) } }],
      });
      output = { kind: 'fsa', handle };
    } catch (e) {
      if ((e as DOMException).name === 'AbortError') return; // The user closed the dialog.
      set({ job: { state: 'error', error: errorLine(e) } });
      return;
    }
  } else if (opfsSupported) {
    await removeOpfsOutputs();
    const prefix = `${Date.now()}-`;
    output = { kind: 'opfs', name: `${prefix}${outputName}`, prefix };
  } else {
    set({ job: { state: 'error', error: 'This browser can neither save files directly nor use private storage; try Chrome, Edge, Firefox or Safari 16.4+.' } });
    return;
  }

  const req: ConvertRequest = {
    files: s.files,
    path: image.path,
    target: fmt.name,
    options: s.target.options,
    compress: s.target.compress,
    verify: s.target.verify,
    password: s.sourcePassword || undefined,
    outputPassword: s.target.outputPassword || undefined,
    snapshot: s.target.snapshot ? { id: s.target.snapshot } : undefined,
    outputName,
    output,
  };
  const worker = startDiskWorker();
  const controller = new AbortController();
  running = { worker, controller, output };
  set({ job: { state: 'running', viaDownload: output.kind === 'opfs' } });
  let shownAt = 0;
  const onProgress = (p: ProgressReport) => {
    if (running?.controller !== controller || controller.signal.aborted) return;
    // Every repaint takes CPU from the compression workers (at 10 Hz with an animated bar, ~3 s
    // of a 20 s `-c` job): a few updates a second are enough, but a new phase shows at once.
    const now = performance.now();
    if (p.phase === get().job.progress?.phase && now - shownAt < UI_PROGRESS_MS) return;
    shownAt = now;
    set({ job: { ...get().job, state: p.phase === 'finalizing' ? 'finalizing' : 'running', progress: p } });
  };
  try {
    const outcome = await worker.api.convert(req, Comlink.proxy(onProgress), controller.signal);
    let downloadUrl: string | undefined;
    const extraDownloads: { name: string; url: string }[] = [];
    if (outcome.file) {
      downloadUrl = URL.createObjectURL(outcome.file);
      triggerDownload(downloadUrl, outputName);
      for (const x of outcome.extraFiles ?? []) {
        const url = URL.createObjectURL(x.file);
        extraDownloads.push({ name: x.name, url });
        triggerDownload(url, x.name);
      }
    }
    set({ job: { ...get().job, state: 'done', outcome: { ...outcome, downloadUrl, extraDownloads } } });
  } catch (e) {
    const cancelled = (e as Error).name === 'cancelled' || controller.signal.aborted;
    set({ job: cancelled ? { state: 'cancelled' } : { state: 'error', error: errorLine(e) } });
  } finally {
    if (running?.controller === controller) running = undefined;
    worker.terminate();
  }
}

/**
 * Soft cancel first: the worker sees the signal between batches, aborts the staged file and
 * deletes it. If it does not answer in time (a long compression call), kill it and clean up here.
 */
export function cancelConvert(): void {
  const r = running;
  if (!r) return;
  set({ job: { ...get().job, state: 'cancelling' } });
  r.controller.abort();
  setTimeout(() => {
    if (running !== r) return;
    running = undefined;
    r.worker.terminate();
    if (r.output.kind === 'fsa') void r.output.handle.remove?.().catch(() => {});
    else void removeOpfsOutputs();
    set({ job: { state: 'cancelled' } });
  }, HARD_ABORT_MS);
}

function triggerDownload(url: string, name: string): void {
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
}

function stem(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

function mergeFiles(a: PickedFile[], b: PickedFile[]): PickedFile[] {
  const byPath = new Map(a.map((f) => [f.path, f]));
  for (const f of b) byPath.set(f.path, f);
  return [...byPath.values()];
}
