import type { Target } from '../targets.ts';
import { BOOT_RULES } from './boot.ts';
import { lintClashes } from './clashes.ts';
import { FORMAT_RULES } from './format.ts';
import { OVF_RULES } from './ovf.ts';
import { SIZE_RULES } from './size.ts';
import { STANDALONE_RULES } from './standalone.ts';
import type { LintFacts, LintResult, LintRule } from './types.ts';

export type { LintFacts, LintResult, LintStatus, OvaFacts, TarFacts } from './types.ts';
export { gatherFacts, partitionTableOf } from './facts.ts';
export { TarScan } from './tarScan.ts';
export { lintClashes };

const RULES: readonly LintRule[] = [...FORMAT_RULES, ...SIZE_RULES, ...STANDALONE_RULES, ...OVF_RULES, ...BOOT_RULES];

/**
 * The pre-flight check: what `target`'s importer enforces, each rule pass/warn/fail with its
 * reason, for one file's facts. Pure: the page runs it on facts gathered in a worker.
 */
export function lintImage(target: Target, facts: LintFacts): LintResult[] {
  const out: LintResult[] = [];
  for (const rule of RULES) {
    const r = rule(target, facts);
    if (r) out.push(r);
  }
  return out;
}

/** The worst status of a list: fail over warn over pass. */
export function worst(results: readonly LintResult[]): LintResult['status'] {
  return results.some((r) => r.status === 'fail') ? 'fail' : results.some((r) => r.status === 'warn') ? 'warn' : 'pass';
}
