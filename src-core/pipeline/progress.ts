/** Progress of a long operation, in bytes of guest data. */
export interface Progress {
  done: number;
  total: number;
  /** Bytes per second since the start. */
  rate: number;
  /** Seconds left at the current rate, when it can be estimated. */
  eta?: number;
  phase: 'reading' | 'finalizing' | 'verifying' | 'done';
}

export type ProgressCallback = (p: Progress) => void;

/** Throttles progress reports to a few per second and computes rate and ETA. */
export class ProgressMeter {
  private readonly started = now();
  private lastReport = 0;
  done = 0;
  constructor(
    readonly total: number,
    private readonly cb?: ProgressCallback,
    private readonly intervalMs = 100,
  ) {}
  add(bytes: number, phase: Progress['phase'] = 'reading'): void {
    this.done += bytes;
    const t = now();
    if (this.cb && (t - this.lastReport >= this.intervalMs || this.done >= this.total)) {
      this.lastReport = t;
      this.report(phase);
    }
  }
  report(phase: Progress['phase']): void {
    if (!this.cb) return;
    const elapsed = (now() - this.started) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const p: Progress = { done: this.done, total: this.total, rate, phase };
    if (rate > 0 && this.total >= this.done) p.eta = (this.total - this.done) / rate;
    this.cb(p);
  }
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
