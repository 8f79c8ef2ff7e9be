import { useEffect, useRef } from 'react';
import { cancelConvert, convertAgain } from '../../state/job.ts';
import { nextSteps } from '../../state/nextSteps.ts';
import { destinationOf } from '../../state/presets.ts';
import { FileName } from '../FileName/index.tsx';
import { LintSummary, lintWithClashes } from '../Preflight/index.tsx';
import { useApp } from '../../state/store.ts';
import { duration, humanSize, rate } from '../../units.ts';
import './style.css';

/** Progress while converting; then the result, the cancellation or the error — never a half-written file shown as a result. */
export function ConvertStatus() {
  const job = useApp((s) => s.job);
  const panel = useRef<HTMLDivElement>(null);
  // The outcome appears below the form: bring it into view when the state changes, and take the
  // keyboard focus with it (Convert is disabled while the job runs, so focus would fall to <body>).
  useEffect(() => {
    panel.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    if (job.state === 'running') panel.current?.querySelector<HTMLElement>('[data-testid="cancel"]')?.focus();
    else if (job.state === 'done' || job.state === 'error' || job.state === 'cancelled')
      panel.current?.querySelector<HTMLElement>('section')?.focus();
  }, [job.state]);
  // A long conversion in a background tab: show progress in the tab title.
  const pct =
    job.progress && job.progress.total > 0 ? Math.min(100, Math.floor((job.progress.done / job.progress.total) * 100)) : undefined;
  useEffect(() => {
    const base = 'DiskFerry — convert VM disk images in your browser';
    document.title = job.state === 'running' && pct !== undefined ? `${pct}% · ${base}` : job.state === 'done' ? `Saved · ${base}` : base;
  }, [job.state, pct]);
  if (job.state === 'idle' || job.state === 'checking') return null;
  return (
    <div ref={panel}>
      <StatusPanel />
    </div>
  );
}

function StatusPanel() {
  const job = useApp((s) => s.job);
  if (job.state === 'error') {
    return (
      <section className="card status notice--error" role="alert" data-testid="error" tabIndex={-1}>
        <strong>{job.stage === 'check' ? 'The conversion cannot start.' : 'The conversion failed.'}</strong> {job.error}
        <p className="muted">{job.stage === 'check' ? 'Nothing was written.' : 'Nothing was saved.'}</p>
      </section>
    );
  }
  if (job.state === 'cancelled') {
    return (
      <section className="card status" role="status" tabIndex={-1}>
        Cancelled. Nothing was saved.
      </section>
    );
  }
  if (job.state === 'done' && job.outcome) {
    const o = job.outcome;
    return (
      <section className="card status status--done" role="status" data-testid="result" tabIndex={-1}>
        <div className="status__check" aria-hidden="true">
          ✓
        </div>
        <div>
          <strong>
            Saved{' '}
            <code>
              <FileName name={o.outputName} />
            </code>
          </strong>
          {job.sourceBytes !== undefined && (
            <p className="status__sizes">
              {humanSize(job.sourceBytes)} → {humanSize(o.size)}, {sizeChange(job.sourceBytes, o.size)}
            </p>
          )}
          <p>
            Written in {duration(o.seconds)}
            {o.seconds > 0 && o.dataBytes > 0 && ` (${rate(o.dataBytes / o.seconds)})`}: a {humanSize(o.virtualSize)} disk holding{' '}
            {humanSize(o.dataBytes)} of data.
          </p>
          {o.verified && <p data-testid="verified">Verified: the saved file reads back identical to the source.</p>}
          {o.downloadUrl && (
            <p className="muted">
              It arrives as a download. If it did not start,{' '}
              <a href={o.downloadUrl} download={o.outputName}>
                download it again
              </a>
              .
            </p>
          )}
          {o.extraDownloads?.length ? (
            <p className="muted">
              This format keeps the disk in several files; keep them together in one folder:{' '}
              {o.extraDownloads.map((x, i) => (
                <span key={x.name}>
                  {i > 0 && ', '}
                  <a href={x.url} download={x.name}>
                    {x.name}
                  </a>
                </span>
              ))}
              .
            </p>
          ) : null}
          {o.warnings.map((w) => (
            <p key={w} className="notice notice--warn">
              {w}
            </p>
          ))}
          <OutputCheck />
          <NextSteps preset={job.preset} format={job.format ?? ''} file={o.outputName} />
          <p>
            <button type="button" className="button button--quiet button--small" onClick={convertAgain}>
              Convert this disk to another format
            </button>
          </p>
        </div>
      </section>
    );
  }
  const p = job.progress;
  const pct = p && p.total > 0 ? Math.min(100, Math.floor((p.done / p.total) * 100)) : job.state === 'finalizing' ? 100 : 0;
  const label =
    job.state === 'cancelling'
      ? 'Cancelling…'
      : job.state === 'finalizing'
        ? 'Finalizing: the browser is committing the file to disk…'
        : p?.phase === 'opening' || !p
          ? 'Opening the image…'
          : p.phase === 'verifying'
            ? 'Verifying: reading the new file back and comparing it with the source…'
            : 'Converting…';
  return (
    <section className="card status" aria-label="Progress">
      <div className="status__row">
        <strong>{label}</strong>
        <button
          type="button"
          className="button button--quiet button--small"
          data-testid="cancel"
          disabled={job.state === 'cancelling'}
          onClick={cancelConvert}
        >
          Cancel
        </button>
      </div>
      <div
        className="progress"
        role="progressbar"
        data-testid="progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        aria-label="Conversion progress"
      >
        <div className="progress__bar" style={{ width: `${pct}%` }} />
      </div>
      {p && p.phase !== 'opening' && (
        <p className="muted status__numbers">
          {pct}% · {humanSize(Math.round(p.done))} of {humanSize(p.total)} · {rate(p.rate)}
          {p.eta !== undefined && job.state === 'running' && ` · about ${duration(p.eta)} left`}
        </p>
      )}
    </section>
  );
}

/** "−44 %", "+3 %", "the same size": the output against the source's files. */
function sizeChange(before: number, after: number): string {
  if (before <= 0) return 'new file';
  const p = Math.round(((after - before) / before) * 100);
  if (p === 0) return 'about the same size';
  return `${p > 0 ? '+' : '−'}${Math.abs(p)} %`;
}

/** What to do with the file at its destination: commands to paste, and the destination's docs. */
function NextSteps({ preset, format, file }: { preset?: string; format: string; file: string }) {
  const steps = nextSteps(preset, format, file);
  return (
    <div className="next-steps" data-testid="next-steps">
      <strong>Next</strong>
      <ol>
        {steps.map((s) => (
          <li key={s.text}>
            {s.text}
            {s.command && <code className="command">{s.command}</code>}
            {s.link && (
              <>
                {' '}
                <a href={s.link.href} target="_blank" rel="noreferrer">
                  {s.link.label}
                </a>
              </>
            )}
          </li>
        ))}
      </ol>
    </div>
  );
}

/**
 * The pre-flight check run again on the saved file, read back as `diskferry lint` reads it; with
 * the other files converted this visit, whether they share a UUID.
 */
function OutputCheck() {
  const job = useApp((s) => s.job);
  const converted = useApp((s) => s.converted);
  const preset = destinationOf(job);
  const destination = preset?.destination;
  const f = job.outputFacts;
  if (!destination || !f) return null;
  if (f.state === 'reading')
    return (
      <p className="muted" data-testid="output-check-reading">
        Checking the saved file against {preset.title}’s rules…
      </p>
    );
  if (f.state === 'failed')
    return (
      <p className="notice notice--warn" data-testid="output-check">
        The saved file could not be read back for the pre-flight check: {f.error}
      </p>
    );
  const results = lintWithClashes(destination, f.facts, converted);
  return (
    <div className="status__lint">
      <LintSummary destination={destination} title={preset.title} results={results} testId="output-check" subject="the saved file" />
    </div>
  );
}
