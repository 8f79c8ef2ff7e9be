import type { Progress, ProgressCallback } from '../src-core/pipeline/progress.ts';
import { humanSize } from '../src-core/pipeline/info.ts';

/** -p: one status line on stderr, rewritten in place. */
export function progressPrinter(): ProgressCallback {
  return (p: Progress) => {
    const pct = p.total ? (100 * p.done) / p.total : 100;
    const eta = p.eta !== undefined && p.phase === 'reading' ? `, ${Math.ceil(p.eta)} s left` : '';
    const phase = p.phase === 'reading' ? '' : ` ${p.phase}`;
    process.stderr.write(`\r    (${pct.toFixed(2)}/100%) ${humanSize(p.done)} of ${humanSize(p.total)}, ${humanSize(p.rate)}/s${eta}${phase}   `);
  };
}
