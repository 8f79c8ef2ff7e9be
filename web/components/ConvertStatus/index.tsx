import { useEffect, useRef } from 'react';
import { cancelConvert } from '../../state/actions.ts';
import { useApp } from '../../state/store.ts';
import { duration, humanSize, percent, rate } from '../../units.ts';
import './style.css';

/** Progress while converting; then the result, the cancellation or the error — never a half-written file shown as a result. */
export function ConvertStatus() {
  const job = useApp((s) => s.job);
  const panel = useRef<HTMLDivElement>(null);
  // The outcome appears below the form: bring it into view when the state changes.
  useEffect(() => {
    panel.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }, [job.state]);
  // A long conversion in a background tab: show progress in the tab title.
  const pct = job.progress && job.progress.total > 0 ? Math.min(100, Math.floor((job.progress.done / job.progress.total) * 100)) : undefined;
  useEffect(() => {
    const base = 'DiskFerry — convert VM disk images in your browser';
    document.title = job.state === 'running' && pct !== undefined ? `${pct}% · ${base}` : job.state === 'done' ? `Saved · ${base}` : base;
  }, [job.state, pct]);
  if (job.state === 'idle') return null;
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
      <section className="card status notice--error" role="alert" data-testid="error">
        <strong>The conversion failed.</strong> {job.error}
        <p className="muted">Nothing was saved.</p>
      </section>
    );
  }
  if (job.state === 'cancelled') {
    return (
      <section className="card status" role="status">
        Cancelled. Nothing was saved.
      </section>
    );
  }
  if (job.state === 'done' && job.outcome) {
    const o = job.outcome;
    return (
      <section className="card status status--done" role="status" data-testid="result">
        <div className="status__check" aria-hidden="true">
          ✓
        </div>
        <div>
          <strong>
            Saved <code>{o.outputName}</code>
          </strong>
          <p>
            {humanSize(o.size)} written in {duration(o.seconds)} — {percent(o.size, o.virtualSize)} of the {humanSize(o.virtualSize)} virtual disk
            {o.dataBytes > 0 && `, ${percent(o.size, o.dataBytes)} of the ${humanSize(o.dataBytes)} of data`}.
          </p>
          {o.verified && <p data-testid="verified">Verified: the saved file reads back identical to the source.</p>}
          {o.downloadUrl && (
            <p className="muted">
              It arrives as a download. If it did not start, <a href={o.downloadUrl} download={o.outputName}>download it again</a>.
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
        <button type="button" className="button button--quiet button--small" data-testid="cancel" disabled={job.state === 'cancelling'} onClick={cancelConvert}>
          Cancel
        </button>
      </div>
      <div className="progress" role="progressbar" data-testid="progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} aria-label="Conversion progress">
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
