// The result's read-back, apart from the job because it runs after the conversion has ended: it
// only fills in the result's pre-flight panel and the list of files converted this visit (which
// later checks compare UUIDs against).
import { errorLine } from '../../src-core/io/errors.ts';
import type { ConvertOutcome, OutputTarget, PickedFile } from '../../workers/protocol.ts';
import { inspectorWorker } from '../workerBridge.ts';
import { useApp } from './store.ts';

const set = useApp.setState;
const get = useApp.getState;

/**
 * The result's pre-flight check: the finished file read back (in the inspector worker) for the
 * facts `diskferry lint` judges. The picked file is read through its handle; downloads from the
 * private-storage files the worker handed over.
 */
export async function checkOutput(name: string, output: OutputTarget, outcome: ConvertOutcome): Promise<void> {
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
