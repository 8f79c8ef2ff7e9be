import type { ProgressCallback } from '../src-core/pipeline/progress.ts';

/**
 * qemu-img's -p (util/qemu-progress.c): `    (NN.NN/100%)\r` on stdout, printed at 0, whenever
 * the percentage moved by more than `minSkip` since the last print, and at 100; end() ends
 * the line. Disabled (no -p, or -q) it prints nothing.
 */
export class QemuProgress {
  private current = 0;
  private last = 0;
  constructor(
    readonly enabled: boolean,
    private readonly minSkip = 1,
    /** stdout as qemu-img prints it; stderr when stdout carries the output image (`-`). */
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  /** qemu_progress_print(delta, max): max 0 sets the percentage, otherwise adds delta% of max. */
  print(delta: number, max = 0): void {
    let current = Math.fround(max === 0 ? delta : this.current + (delta / 100) * max);
    if (current > 100) current = 100;
    this.current = current;
    if (current > this.last + this.minSkip || current < this.last - this.minSkip || current === 0 || current === 100) {
      this.last = current;
      if (this.enabled) this.out.write(`    (${current.toFixed(2)}/100%)\r`);
    }
  }

  end(): void {
    if (this.enabled) this.out.write('\n');
  }

  /** A pipeline callback that sets the percentage from bytes done. */
  callback(): ProgressCallback | undefined {
    if (!this.enabled) return undefined;
    return (p) => {
      if (p.phase === 'reading') this.print(p.total ? (100 * p.done) / p.total : 100);
    };
  }
}
