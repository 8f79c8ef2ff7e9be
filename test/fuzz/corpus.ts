/**
 * Fuzz cases that once failed, replayed on every run. Each names the format, the seed image
 * variant and the mutation seed (mutate() is deterministic), and what went wrong at the time.
 */
export interface RegressionCase {
  format: string;
  variant: string;
  seed: number;
  was: string;
}

export const CORPUS: RegressionCase[] = [];
