import { baseName } from '../../src-core/io/bytes.ts';
import { errorLine } from '../../src-core/io/errors.ts';
import type { ConvertOutcome, ConvertPlan, OutputTarget, PickedFile, ProgressReport } from '../../workers/protocol.ts';
import { nativeSaveSupported, opfsSupported } from '../capabilities.ts';
import { pickOutputFile, sameFileAsSource } from '../adapters/pickOutput.ts';
import { Comlink, inspectorWorker, startDiskWorker, type DiskWorker } from '../workerBridge.ts';
import { optionApplies } from './formats.ts';
import { suggestOutputName } from './outputName.ts';
import { PRESETS, sizingPreset } from './presets.ts';
import { initialTarget, selectedImage, useApp, type TargetChoice } from './store.ts';

const set = useApp.setState;
const get = useApp.getState;

/** After a soft cancel, how long the worker may take to close its file before it is killed. */
const HARD_ABORT_MS = 5000;
/** How often the page repaints progress (ms). */
const UI_PROGRESS_MS = 300;
/** Error codes the worker uses for a source password that is missing or wrong. */
const PASSWORD_CODES = new Set(['wrong-password', 'needs-password']);

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
  // A running conversion keeps its status panel; it owns its own copy of the request.
  if (!running) resetJob();
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
    if (!running) resetJob();
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
  if (!running) resetJob();
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

/** Options and presets change the target; verify and the output password do not undo a preset. */
export function updateTarget(patch: Partial<TargetChoice>): void {
  set({ target: { ...get().target, ...patch } });
}

export function setCompress(compress: boolean): void {
  set({ target: { ...get().target, compress, preset: undefined } });
}

export function setTargetFormat(format: string): void {
  // Options belong to a format: a new format starts from its defaults, uncompressed.
  set({ target: { ...get().target, format, options: {}, compress: false, preset: undefined } });
}

export function setOption(name: string, value: string | undefined): void {
  const options = { ...get().target.options };
  if (value === undefined || value === '') delete options[name];
  else options[name] = value;
  // Options that mean nothing any more (encryption details once encryption is off) go too.
  for (const k of Object.keys(options)) if (!optionApplies(k, options)) delete options[k];
  const target = { ...get().target, options, preset: undefined };
  // A subformat that cannot be compressed (VMDK other than streamOptimized) unticks Compress.
  if (!compressAllowed(target)) target.compress = false;
  set({ target });
}

/** Whether the target as chosen can be compressed (qemu-img -c). */
export function compressAllowed(t: TargetChoice): boolean {
  const c = get().formats.find((f) => f.name === t.format)?.compression;
  if (!c) return false;
  return !c.subformat || !t.options.subformat || t.options.subformat === c.subformat;
}

/** The output keeps the source's encryption: qcow2 with LUKS, the one format QEMU boots encrypted. */
export function encryptOutput(): void {
  const t = get().target;
  set({ target: { ...t, format: 'qcow2', options: { 'encrypt.format': 'luks' }, compress: false, preset: undefined } });
}

export function applyPreset(id: string): void {
  const p = PRESETS.find((x) => x.id === id);
  const fmt = get().formats.find((f) => f.name === p?.target);
  if (!p || !fmt) return;
  // Only options the target's writer declares: a preset must never make the writer refuse.
  const known = new Set(fmt.createOptions.map((o) => o.name));
  const options = Object.fromEntries(Object.entries(p.options).filter(([k]) => known.has(k)));
  const t = get().target;
  set({
    target: {
      ...initialTarget,
      format: p.target,
      options,
      compress: p.compress,
      preset: id,
      destination: p.destination,
      snapshot: t.snapshot,
      verify: t.verify,
      reproducible: t.reproducible,
      outputPassword: t.outputPassword,
    },
  });
}

/** "Convert this disk to another format": the result goes, the disk and the form stay. */
export function convertAgain(): void {
  resetJob();
  document.getElementById('target-panel')?.scrollIntoView({ block: 'start', behavior: 'smooth' });
  document.querySelector<HTMLElement>('[data-testid="target-format"]')?.focus();
}

function resetJob(): void {
  const o = get().job.outcome;
  if (o?.downloadUrl) URL.revokeObjectURL(o.downloadUrl);
  for (const x of o?.extraDownloads ?? []) URL.revokeObjectURL(x.url);
  set({ job: { state: 'idle' } });
}

let running: { worker: DiskWorker; controller: AbortController; output: OutputTarget } | undefined;
/** Set while the checks run and the save dialog is open: a second click must not start a second conversion. */
let starting = false;

/** Closing the tab mid-conversion asks first: the output would be lost. */
function warnBeforeLeaving(e: BeforeUnloadEvent): void {
  e.preventDefault();
  e.returnValue = '';
}

export async function startConvert(): Promise<void> {
  if (starting || running) return;
  starting = true;
  set({ job: { state: 'checking' } });
  try {
    await convertSelected();
  } finally {
    starting = false;
    if (get().job.state === 'checking') set({ job: { state: 'idle' } });
  }
}

/** The plan for the selected image as the form stands, or undefined when nothing is selected. */
export function currentPlan(): ConvertPlan | undefined {
  const s = get();
  const image = selectedImage(s);
  const fmt = s.formats.find((f) => f.name === s.target.format);
  if (!image || !fmt) return undefined;
  const qualifier = s.target.options.subformat === 'streamOptimized' ? 'stream' : 'converted';
  const sourceName = s.remote ? urlPath(image.path) : image.path;
  return {
    files: s.files,
    url: s.remote?.url,
    path: image.path,
    format: image.forcedRaw ? 'raw' : undefined,
    target: fmt.name,
    options: s.target.options,
    compress: s.target.compress,
    verify: s.target.verify,
    password: s.sourcePassword || undefined,
    outputPassword: s.target.outputPassword || undefined,
    snapshot: s.target.snapshot ? { id: s.target.snapshot } : undefined,
    reproducible: s.target.reproducible || undefined,
    // The preset's destination: its size rule applies in the worker, as --target=NAME applies it.
    destination: sizingPreset(s.target)?.destination,
    outputName: suggestOutputName(
      sourceName,
      fmt.extensions[0] ?? fmt.name,
      qualifier,
      // A URL's own name is taken too: the user may well have downloaded it beside the output.
      s.remote ? [sourceName] : s.files.map((f) => f.path),
    ),
  };
}

async function convertSelected(): Promise<void> {
  const plan = currentPlan();
  if (!plan) return;
  const fmt = get().formats.find((f) => f.name === plan.target)!;
  const o = get().job.outcome;
  if (o?.downloadUrl) URL.revokeObjectURL(o.downloadUrl);
  if (!nativeSaveSupported && !opfsSupported) {
    fail('This browser can neither save files directly nor use private storage; try Chrome, Edge, Firefox or Safari 16.4+.');
    return;
  }

  // Everything that can fail before a byte is written fails here, before the save dialog.
  // A save picker gives one file; an output of several files (a datastore pair, split pieces)
  // is built in private storage and arrives as one download per file, wherever OPFS exists.
  let viaPicker = nativeSaveSupported;
  try {
    const check = await inspectorWorker().api.check(plan, !nativeSaveSupported || opfsSupported);
    if (check.companions.length) viaPicker = false;
    if (!viaPicker && check.requiredBytes !== undefined) {
      const shortBy = await privateStorageShortfall(check.requiredBytes);
      if (shortBy > 0) {
        fail(
          `Not enough space: the output may need up to ${mib(check.requiredBytes)} and the browser can store about ${mib(check.requiredBytes - shortBy)} more. Free some disk space and try again.`,
        );
        return;
      }
    }
  } catch (e) {
    if (PASSWORD_CODES.has((e as Error).name)) {
      // Said next to the password field (unless the user has typed another one meanwhile).
      const same = (get().sourcePassword || undefined) === plan.password;
      set({ ...(same && { unlock: { state: 'failed', error: errorLine(e) } }), job: { state: 'idle' } });
      return;
    }
    fail(errorLine(e), 'check');
    return;
  }
  if (plan.password) set({ unlock: { state: 'unlocked' } });

  let output: OutputTarget;
  if (viaPicker) {
    let picked;
    try {
      picked = await pickOutputFile({
        suggestedName: plan.outputName,
        types: [{ description: fmt.label, accept: { 'application/octet-stream': fmt.extensions.map((e) => `.${e}`) } }],
      });
    } catch (e) {
      fail(errorLine(e), 'check');
      return;
    }
    if (!picked) return; // The user closed the dialog.
    const source = await sameFileAsSource(picked.handle, plan.files);
    if (source) {
      fail(
        `"${picked.handle.name}" is one of the files being converted (${source.path}). Choose another name: DiskFerry never writes over its source.`,
        'check',
      );
      return;
    }
    output = { kind: 'fsa', handle: picked.handle, createdByDialog: picked.createdByDialog };
    plan.outputName = picked.handle.name;
  } else {
    await inspectorWorker().api.removeStaleOutputs();
    const prefix = `${Date.now()}-`;
    output = { kind: 'opfs', name: `${prefix}${plan.outputName}`, prefix };
  }
  await runJob(plan, output);
}

async function runJob(plan: ConvertPlan, output: OutputTarget): Promise<void> {
  const worker = startDiskWorker();
  const controller = new AbortController();
  running = { worker, controller, output };
  window.addEventListener('beforeunload', warnBeforeLeaving);
  set({
    job: {
      state: 'running',
      viaDownload: output.kind === 'opfs',
      sourceBytes: selectedImage(get())?.filesBytes,
      format: plan.target,
      preset: get().target.preset,
      destination: get().target.destination,
    },
  });
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
    const outcome = await worker.api.convert({ ...plan, output }, Comlink.proxy(onProgress));
    let downloadUrl: string | undefined;
    const extraDownloads: { name: string; url: string }[] = [];
    if (outcome.file) {
      downloadUrl = URL.createObjectURL(outcome.file);
      triggerDownload(downloadUrl, plan.outputName);
      for (const x of outcome.extraFiles ?? []) {
        const url = URL.createObjectURL(x.file);
        extraDownloads.push({ name: x.name, url });
        triggerDownload(url, x.name);
      }
    }
    set({ job: { ...get().job, state: 'done', outcome: { ...outcome, downloadUrl, extraDownloads }, outputFacts: { state: 'reading' } } });
    void checkOutput(plan.outputName, output, outcome);
  } catch (e) {
    const cancelled = (e as Error).name === 'cancelled' || controller.signal.aborted;
    if (cancelled) set({ job: { state: 'cancelled' } });
    else fail(errorLine(e), 'convert');
  } finally {
    window.removeEventListener('beforeunload', warnBeforeLeaving);
    if (running?.controller === controller) running = undefined;
    worker.terminate();
  }
}

/**
 * The result's pre-flight check: the finished file read back (in the inspector worker) for the
 * facts `diskferry lint` judges. The picked file is read through its handle; downloads from the
 * private-storage files the worker handed over.
 */
async function checkOutput(name: string, output: OutputTarget, outcome: ConvertOutcome): Promise<void> {
  const job = get().job;
  const still = () => get().job.outcome?.outputName === outcome.outputName && get().job.state === 'done' && get().job.format === job.format;
  try {
    let files: PickedFile[];
    if (outcome.file)
      files = [{ file: outcome.file, path: name }, ...(outcome.extraFiles ?? []).map((x) => ({ file: x.file, path: x.name }))];
    else if (output.kind === 'fsa') files = [{ file: await output.handle.getFile(), path: name }];
    else return;
    const facts = await inspectorWorker().api.outputFacts(files, name);
    set({ converted: [...get().converted.filter((f) => f.file !== facts.file), facts] });
    if (still()) set({ job: { ...get().job, outputFacts: { state: 'done', facts } } });
  } catch (e) {
    if (still()) set({ job: { ...get().job, outputFacts: { state: 'failed', error: errorLine(e) } } });
  }
}

function fail(error: string, stage: 'check' | 'convert' = 'check'): void {
  set({ job: { state: 'error', error, stage } });
}

/** Bytes the private storage lacks for `need` (0 when it fits or the browser cannot tell). */
async function privateStorageShortfall(need: number): Promise<number> {
  const est = await navigator.storage?.estimate?.().catch(() => undefined);
  if (!est?.quota) return 0;
  const free = est.quota - (est.usage ?? 0);
  return Math.max(0, need - free);
}

function mib(n: number): string {
  return `${Math.ceil(n / 1048576)} MiB`;
}

/**
 * Soft cancel first: the worker sees the signal between batches, aborts the staged file and
 * deletes what it created. If it does not answer in time (a long compression call), kill it
 * and clean up here — removing only a file the save dialog created, never one the user had.
 */
export function cancelConvert(): void {
  const r = running;
  if (!r) return;
  set({ job: { ...get().job, state: 'cancelling' } });
  r.controller.abort();
  void r.worker.api.cancel();
  setTimeout(() => {
    if (running !== r) return;
    running = undefined;
    window.removeEventListener('beforeunload', warnBeforeLeaving);
    r.worker.terminate();
    if (r.output.kind === 'fsa') {
      if (r.output.createdByDialog) void (r.output.handle as { remove?(): Promise<void> }).remove?.().catch(() => {});
    } else void inspectorWorker().api.removeStaleOutputs();
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

/** A URL's path, decoded where it can be: its last part names the file (the query does not); "disk" when it has none. */
function urlPath(url: string): string {
  let p = new URL(url).pathname;
  try {
    p = decodeURIComponent(p);
  } catch {
    // Not valid percent-encoding: the name as it stands.
  }
  return p.endsWith('/') ? `${p}disk` : p;
}

function mergeFiles(a: PickedFile[], b: PickedFile[]): PickedFile[] {
  const byPath = new Map(a.map((f) => [f.path, f]));
  for (const f of b) byPath.set(f.path, f);
  return [...byPath.values()];
}
