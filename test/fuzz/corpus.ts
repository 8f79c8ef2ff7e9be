/**
 * Fuzz cases that once failed, replayed on every run. Each names the format, the seed image
 * variant and the mutation seed (mutate() is deterministic), and what went wrong at the time.
 */
export interface RegressionCase {
  format: string;
  variant: string;
  seed: number;
  /** The mutation as mutate() describes it: guards against a change to mutate() silently moving the case. */
  mutation: string;
  was: string;
}

export const CORPUS: RegressionCase[] = [
  // Found on the first run (2026-11-25): 64-bit fields past 2^53 escaped as a bare RangeError
  // instead of a typed error naming the file. Fixed by Int64RangeError + image/guard.ts.
  {
    format: 'qcow2',
    variant: 'snapshot',
    seed: 150,
    mutation: 'flip-header bits at 179331,208801,10835',
    was: 'L2 entry beyond 2^53: RangeError',
  },
  {
    format: 'qcow2',
    variant: 'zstd-extl2',
    seed: 253,
    mutation: 'huge-field 0x7fffffffffffffff at 64 LE',
    was: 'snapshots_offset beyond 2^53: RangeError',
  },
  {
    format: 'qcow2',
    variant: 'zstd-extl2',
    seed: 603,
    mutation: 'flip-header bits at 1945,62,2897',
    was: 'snapshot L1 offset beyond 2^53: RangeError',
  },
  {
    format: 'qcow2',
    variant: 'compressed',
    seed: 847,
    mutation: 'flip-header bits at 1953,8',
    was: 'backing_file_offset beyond 2^53: RangeError',
  },
  {
    format: 'qcow2',
    variant: 'zstd-extl2',
    seed: 1318,
    mutation: 'flip-header bits at 4008,1772,40,3399',
    was: 'l1_table_offset beyond 2^53: RangeError',
  },
  {
    format: 'qcow',
    variant: 'plain',
    seed: 847,
    mutation: 'flip-header bits at 1953,8',
    was: 'backing_file_offset beyond 2^53: RangeError',
  },
  {
    format: 'qcow',
    variant: 'plain',
    seed: 1318,
    mutation: 'flip-header bits at 4008,1772,40,3399',
    was: 'l1_table_offset beyond 2^53: RangeError',
  },
];
