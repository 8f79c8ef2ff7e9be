import * as Comlink from 'comlink';
import { drivers } from '../src-core/formats/registry.ts';
import { PAGE_ONLY_WRITERS, pageWriterFor } from '../src-core/pipeline/ova/index.ts';
import { DiskFerryError, errorLine } from '../src-core/io/errors.ts';
import { checkPlan, estimatePlan, runConvert } from './convertJob.ts';
import { inspectFiles, unlockImage } from './inspectFiles.ts';
import { inspectUrl } from './inspectUrl.ts';
import { outputFacts } from './outputFacts.ts';
import { removeOpfsOutputs } from './io/opfsCleanup.ts';
import { removeUnpacked, unpackToOpfs, type UnpackProgress } from './io/opfsUnpack.ts';
import type { ConvertPlan, ConvertRequest, FormatSummary, InspectOptions, PickedFile, ProgressReport } from './protocol.ts';

/**
 * The worker the page talks to, over Comlink. It owns every byte of image data: the page sends
 * File objects (cheap to clone, still on disk) and gets back descriptions and results.
 */
/** The running conversion's cancel switch (a conversion worker runs one job at a time). */
let current: AbortController | undefined;

const api = {
  /** The registry, as the page's format list. New drivers appear here with no UI change. */
  formats(): FormatSummary[] {
    const pageOnly = PAGE_ONLY_WRITERS.map((name) => pageWriterFor(name, drivers));
    return [...drivers, ...pageOnly].map((registered) => {
      // The page writes `ova` through the package writer (pipeline/ova/), the registry's reads it.
      const w = pageWriterFor(registered.name, drivers);
      return {
        name: registered.name,
        label: registered.label,
        title: registered.title ?? registered.name,
        extensions: [...registered.extensions],
        canWrite: typeof w.create === 'function',
        createOptions: [...(w.createOptions ?? [])],
        compression: w.compression ? { ...w.compression } : undefined,
      };
    });
  },

  inspect: (files: PickedFile[], opts: InspectOptions = {}) => rethrow(() => inspectFiles(files, opts)),

  /** The preview of an image on a web server, from its metadata (the URL as the user typed it). */
  inspectUrl: (url: string, opts: InspectOptions = {}) => rethrow(() => inspectUrl(url, opts)),

  unlock: (files: PickedFile[], path: string, format: string | undefined, password: string, url?: string) =>
    rethrow(() => unlockImage(files, path, format, password, url)),

  estimate: (plan: ConvertPlan, onProgress: (p: ProgressReport) => void) => rethrow(() => estimatePlan(plan, onProgress)),

  /** Opens the source and builds the writer on a sink that keeps nothing: every error a conversion can hit before writing. */
  check: (plan: ConvertPlan, siblingsAllowed: boolean) => rethrow(() => checkPlan(plan, siblingsAllowed)),

  convert: (req: ConvertRequest, onProgress: (p: ProgressReport) => void) => {
    const controller = new AbortController();
    current = controller;
    return rethrow(() => runConvert(req, onProgress, controller.signal)).finally(() => {
      if (current === controller) current = undefined;
    });
  },

  /** The pre-flight check's facts of a finished output (its files: the main one at `path`, and its companions). */
  outputFacts: (files: PickedFile[], path: string) => rethrow(() => outputFacts(files, path)),

  /** Soft cancel: the job sees it between batches, aborts its staged file and removes what it created. */
  cancel(): void {
    current?.abort();
  },

  /** Unpacks a compressed file (.gz .xz .zst .bz2 .zip) into private storage: the image inside, as a file. */
  unpack: (file: PickedFile, onProgress: (p: UnpackProgress) => void) => rethrow(() => unpackToOpfs(file, onProgress)),

  /** Deletes images unpacked by earlier visits (called when the app loads). */
  removeUnpacked: () => removeUnpacked(),

  /** Deletes private-storage outputs left by earlier visits or a killed job (`except`: entries to keep). */
  removeStaleOutputs: (except: string[] = []) => removeOpfsOutputs(except),
};

export type DiskWorkerApi = typeof api;

/**
 * Comlink sends only an Error's name and message; the typed error's code travels as the name
 * ('corrupt', 'cancelled', …) and the message is the one line a user should read.
 */
async function rethrow<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = new Error(errorLine(e));
    err.name = e instanceof DiskFerryError ? e.code : e instanceof Error && e.name === 'AbortError' ? 'cancelled' : 'error';
    throw err;
  }
}

Comlink.expose(api);
