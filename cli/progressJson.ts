import type { ProgressCallback } from '../src-core/pipeline/progress.ts';

/**
 * convert --progress=json: one JSON object per line on stderr, for programs that drive the CLI
 * (stdout stays free for the output -o help and the like print). Bytes of guest data:
 * `{"done":…,"total":…,"rate":…,"phase":"reading"|"finalizing"|"done"}`; the last line of a
 * conversion that succeeded has phase "done" and done === total. Printed even with -q, which
 * silences the human progress only.
 */
export function jsonProgress(opts: { progressFormat?: string }): ProgressCallback | undefined {
  if (opts.progressFormat !== 'json') return undefined;
  return (p) => {
    const done = p.done;
    process.stderr.write(JSON.stringify({ done, total: p.total, rate: Math.round(p.rate), phase: p.phase }) + '\n');
  };
}
