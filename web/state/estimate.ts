import { errorLine } from '../../src-core/io/errors.ts';
import type { ConvertPlan, ProgressReport } from '../../workers/protocol.ts';
import { Comlink, startDiskWorker, type DiskWorker } from '../workerBridge.ts';
import { currentPlan } from './plan.ts';
import { useApp, type AppState } from './store.ts';

/** Wait this long after the last change before estimating (typing in an option field). */
const DEBOUNCE_MS = 350;

let worker: DiskWorker | undefined;
let timer: ReturnType<typeof setTimeout> | undefined;
let lastKey = '';

/** What the estimate depends on: a change in any of these starts it again. */
function keyOf(plan: ConvertPlan | undefined): string {
  if (!plan) return '';
  const { files, ...rest } = plan;
  return JSON.stringify({ ...rest, outputName: '', verify: false, files: files.map((f) => [f.path, f.file.size, f.file.lastModified]) });
}

/**
 * Keeps `estimate` in the store in step with the form: after each change (debounced) a worker of
 * its own converts into sinks that keep only lengths; a newer change terminates it at once.
 * Conversions stop it too: they need the cores.
 */
export function watchEstimate(): () => void {
  const run = () => {
    const s = useApp.getState();
    const busy = ['checking', 'running', 'finalizing', 'cancelling'].includes(s.job.state);
    if (busy) {
      // The conversion needs the cores. A finished estimate stays (it is still right after the
      // job); one in progress stops and starts again afterwards.
      if (s.estimate.state === 'running') {
        stop();
        lastKey = '';
      }
      return;
    }
    const plan = currentPlan();
    const key = keyOf(plan);
    if (key === lastKey) return;
    lastKey = key;
    stop();
    // An image on a web server is not estimated: the sample would be fetched over the network
    // on every change of the form, which is the download the ranged reads exist to avoid.
    if (!plan || plan.url) {
      useApp.setState({ estimate: { state: 'none' } });
      return;
    }
    useApp.setState({ estimate: { state: 'running' } });
    timer = setTimeout(() => void estimate(plan), DEBOUNCE_MS);
  };
  const unsubscribe = useApp.subscribe((s: AppState, prev: AppState) => {
    if (
      s.selected !== prev.selected ||
      s.target !== prev.target ||
      s.files !== prev.files ||
      s.sourcePassword !== prev.sourcePassword ||
      s.inspection !== prev.inspection ||
      s.job.state !== prev.job.state ||
      s.formats !== prev.formats
    )
      run();
  });
  run();
  return () => {
    unsubscribe();
    stop();
  };
}

function stop(): void {
  if (timer) clearTimeout(timer);
  timer = undefined;
  worker?.terminate();
  worker = undefined;
}

async function estimate(plan: ConvertPlan): Promise<void> {
  const w = startDiskWorker();
  worker = w;
  const onProgress = (p: ProgressReport) => {
    if (worker === w) useApp.setState({ estimate: { state: 'running', progress: p } });
  };
  try {
    const result = await w.api.estimate(plan, Comlink.proxy(onProgress));
    if (worker === w) useApp.setState({ estimate: { state: 'done', result } });
  } catch (e) {
    if (worker === w) useApp.setState({ estimate: { state: 'failed', error: errorLine(e) } });
  } finally {
    if (worker === w) {
      worker = undefined;
      w.terminate();
    }
  }
}
