import * as Comlink from 'comlink';
import type { DiskWorkerApi } from '../workers/diskWorker.ts';

/** A running disk worker and its Comlink proxy. */
export interface DiskWorker {
  api: Comlink.Remote<DiskWorkerApi>;
  /** Hard stop: kills the worker wherever it is (stuck compression, wasm). */
  terminate(): void;
}

export function startDiskWorker(): DiskWorker {
  const worker = new Worker(new URL('../workers/diskWorker.ts', import.meta.url), { type: 'module', name: 'diskferry' });
  const api = Comlink.wrap<DiskWorkerApi>(worker);
  return {
    api,
    terminate: () => {
      api[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}

let inspector: DiskWorker | undefined;

/**
 * The long-lived worker for the format list and previews. Conversions get a worker of their own,
 * so a preview stays instant while a conversion runs, and a hard cancel can kill just that one.
 */
export function inspectorWorker(): DiskWorker {
  inspector ??= startDiskWorker();
  return inspector;
}

export { Comlink };
