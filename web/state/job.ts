// Running and cancelling the conversion: the checks before the save dialog, the dialog (or private
// storage), the worker that converts, progress, the downloads, and cancel; then the result until
// it is cleared. It owns the one running job, so nothing else can start a second or lose track of one.
import { errorLine } from '../../src-core/io/errors.ts';
import type { ConvertPlan, OutputTarget, ProgressReport } from '../../workers/protocol.ts';
import { nativeSaveSupported, opfsSupported } from '../capabilities.ts';
import { triggerDownload } from '../adapters/download.ts';
import { pickOutputFile, sameFileAsSource } from '../adapters/pickOutput.ts';
import { Comlink, inspectorWorker, startDiskWorker, type DiskWorker } from '../workerBridge.ts';
import { checkOutput } from './outputCheck.ts';
import { currentPlan } from './plan.ts';
import { selectedImage, useApp } from './store.ts';

const set = useApp.setState;
const get = useApp.getState;

/** After a soft cancel, how long the worker may take to close its file before it is killed. */
const HARD_ABORT_MS = 5000;
/** How often the page repaints progress (ms). */
const UI_PROGRESS_MS = 300;
/** Error codes the worker uses for a source password that is missing or wrong. */
const PASSWORD_CODES = new Set(['wrong-password', 'needs-password']);

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

/**
 * A new source or image: the last result goes. A running conversion keeps its status panel; it
 * owns its own copy of the request.
 */
export function clearJobUnlessRunning(): void {
  if (!running) resetJob();
}
