// The convert plan: what the selected image and the form, as they stand, ask the worker to do.
// One builder, because the estimate (estimate.ts), the suggested name (TargetPanel) and the
// conversion itself (job.ts) must all describe the same output.
import type { ConvertPlan } from '../../workers/protocol.ts';
import { suggestOutputName } from './outputName.ts';
import { sizingPreset } from './presets.ts';
import { selectedImage, useApp } from './store.ts';

const get = useApp.getState;

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
