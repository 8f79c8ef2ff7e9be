import { useId } from 'react';
import { lintClashes, lintImage, worst, type LintFacts, type LintResult } from '../../../src-core/pipeline/lint/index.ts';
import { findTarget, type TargetName } from '../../../src-core/pipeline/targets.ts';
import './style.css';

/**
 * The pre-flight check as the page shows it: what a destination's importer enforces, each rule
 * pass/warn/fail with its reason (src-core/pipeline/lint, the rules `diskferry lint` runs). A
 * one-line summary ("5 pass · 1 warn") that opens to the rules; it starts open when one fails.
 */
export function LintSummary(props: {
  destination: TargetName;
  title: string;
  results: readonly LintResult[];
  testId: string;
  /** What was checked: "as it will be written", "the saved file". */
  subject: string;
}) {
  const { results } = props;
  const status = worst(results);
  const count = (s: LintResult['status']) => results.filter((r) => r.status === s).length;
  const parts = (['fail', 'warn', 'pass'] as const).filter((s) => count(s) > 0).map((s) => `${count(s)} ${s}`);
  const listId = useId();
  return (
    <details className={`lint lint--${status}`} data-testid={props.testId} data-status={status} open={status === 'fail'}>
      <summary aria-describedby={listId}>
        <span className={`lint__badge lint__badge--${status}`} aria-hidden="true">
          {status === 'pass' ? '✓' : status === 'warn' ? '!' : '✕'}
        </span>
        <span className="lint__head">
          <span className="lint__title">{props.title} pre-flight</span> <span className="lint__subject muted">{props.subject}</span>
          <span className="lint__counts" data-testid={`${props.testId}-counts`}>
            {parts.join(' · ')}
          </span>
        </span>
      </summary>
      <ul className="lint__rules" id={listId}>
        {results.map((r) => (
          <li key={r.rule} className={`lint__rule lint__rule--${r.status}`} data-rule={r.rule} data-status={r.status}>
            <span className={`lint__status lint__status--${r.status}`}>{r.status}</span>
            <span className="lint__text">
              <code>{r.rule}</code> {r.reason}
            </span>
          </li>
        ))}
      </ul>
    </details>
  );
}

/** lintImage for one file, plus the UUID-clash verdict against the other files given with it. */
export function lintWithClashes(destination: TargetName, facts: LintFacts, all: readonly LintFacts[]): LintResult[] {
  const target = findTarget(destination);
  const results = lintImage(target, facts);
  if (all.length > 1) {
    const clash = lintClashes(target, all).get(facts.file);
    if (clash) results.push(clash);
  }
  return results;
}
