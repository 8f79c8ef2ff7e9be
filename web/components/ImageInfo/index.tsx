import { useState, type ReactNode } from 'react';
import type { ImageSummary } from '../../../workers/protocol.ts';
import { setSourcePassword, unlockSource } from '../../state/sources.ts';
import { useApp } from '../../state/store.ts';
import { titleWithCliName } from '../../state/formats.ts';
import { bytesExact, humanSize, percent } from '../../units.ts';
import { AllocationMap } from '../AllocationMap/index.tsx';
import { FileName } from '../FileName/index.tsx';
import './style.css';

/** The qemu-img info facts of one image, in plain words, with the JSON one click away. */
export function ImageInfo({ image }: { image: ImageSummary }) {
  const { info, map } = image;
  const formats = useApp((s) => s.formats);
  const remote = useApp((s) => s.remote);
  const [copied, setCopied] = useState(false);
  const facts = { ...(info['format-specific']?.data ?? {}), ...(info.extra ?? {}) };
  const details = Object.entries(facts).filter(([, v]) => typeof v !== 'object' || v === null);
  const subformat = subformatOf(image.format, facts);
  const allocated = map ? map.totals.data + map.totals.compressed : undefined;
  const rows: [string, ReactNode, string?][] = [
    [
      'Format',
      <>
        <b>{titleWithCliName(formats, image.format)}</b> <span className="muted">— {image.label}</span>
      </>,
    ],
    ...(subformat ? [['Subformat', subformat] as [string, ReactNode]] : []),
    [
      'Virtual size',
      <>
        {humanSize(image.virtualSize)} <span className="muted">({bytesExact(image.virtualSize)} bytes)</span>
      </>,
      'The size of the disk as the virtual machine sees it.',
    ],
    [
      remote ? 'Size on the server' : 'Size on disk',
      <>
        {humanSize(image.filesBytes)}{' '}
        <span className="muted">{image.companions.length ? `in ${image.companions.length + 1} files` : 'in one file'}</span>
      </>,
    ],
  ];
  if (remote)
    rows.push([
      'Fetched',
      <span data-testid="fetched">
        read {humanSize(remote.fetched)} of {humanSize(image.filesBytes)}
      </span>,
      'Only the metadata was fetched for this preview (range requests); converting streams the data.',
    ]);
  if (info['cluster-size'])
    rows.push(['Cluster / block size', humanSize(info['cluster-size']), 'The unit in which the format allocates space.']);
  if (allocated !== undefined) {
    rows.push([
      'Holds data',
      <>
        {humanSize(allocated)}{' '}
        <span className="muted">
          ({percent(allocated, image.virtualSize)} of the disk{map?.partial ? ', first part scanned' : ''})
        </span>
      </>,
      'Only these ranges need to be read and written.',
    ]);
  }
  rows.push(['Compressed', !map ? 'unknown' : map.totals.compressed > 0 ? `yes (${humanSize(map.totals.compressed)} of data)` : 'no']);
  rows.push(['Encrypted', info.encrypted ? 'yes — a password is needed to read the data' : 'no']);
  if (info['backing-filename']) {
    rows.push([
      'Backing file',
      <>
        {info['backing-filename']} {info['backing-filename-format'] && <span className="muted">({info['backing-filename-format']})</span>}
      </>,
      'This image stores only changes; the rest comes from the backing file.',
    ]);
  }
  if (image.companions.length) rows.push(['Made of', image.companions.join(', ')]);
  if (image.snapshots.length) rows.push(['Snapshots', image.snapshots.map((s) => `${s.name || s.id} (id ${s.id})`).join(', ')]);
  rows.push(['State', info['dirty-flag'] ? 'dirty — not closed cleanly' : 'clean']);

  const copy = async () => {
    await navigator.clipboard?.writeText(image.json).catch(() => {});
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };

  return (
    <section className="card image-info" data-testid="image-info" aria-label="Image preview">
      <header className="card__head">
        <h2>
          <span className="step">2</span> What is inside
        </h2>
        <button type="button" className="button button--quiet button--small" onClick={() => void copy()}>
          {copied ? 'Copied' : 'Copy qemu-img JSON'}
        </button>
      </header>
      <p className="image-info__name">
        <code>
          <FileName name={image.path} />
        </code>
      </p>
      {image.warnings.map((w) => (
        <p key={w} className="notice notice--warn" data-testid={image.incomplete && w.includes('incomplete') ? 'incomplete' : undefined}>
          {w}
        </p>
      ))}
      {image.forcedRaw && (
        <p className="notice notice--quiet">Read as a raw disk, as you chose: every byte of the file is a byte of the disk.</p>
      )}
      {info.encrypted && <SourcePassword />}
      <dl className="facts">
        {rows.map(([k, v, hint]) => (
          <div key={k} className="facts__row">
            <dt>{k}</dt>
            <dd>
              {v}
              {hint && <small className="facts__hint">{hint}</small>}
            </dd>
          </div>
        ))}
      </dl>
      {map && <AllocationMap map={map} virtualSize={image.virtualSize} backingMissing={Boolean(image.missingBacking)} />}
      <details className="image-info__more">
        <summary>All details ({image.format} specifics and qemu-img JSON)</summary>
        {details.length > 0 && (
          <dl className="facts facts--small">
            {details.map(([k, v]) => (
              <div key={k} className="facts__row">
                <dt>{k}</dt>
                <dd>{String(v)}</dd>
              </div>
            ))}
          </dl>
        )}
        <pre className="json" tabIndex={0} role="region" aria-label="qemu-img info JSON">
          {image.json}
        </pre>
      </details>
    </section>
  );
}

/**
 * The password an encrypted image needs before its data can be read. "Unlock" tries it at once
 * (a LUKS key slot must open); Convert tries it too, before the save dialog, and a refusal
 * shows here, next to the field.
 */
function SourcePassword() {
  const password = useApp((s) => s.sourcePassword);
  const unlock = useApp((s) => s.unlock);
  return (
    <form
      className="notice notice--warn source-password"
      onSubmit={(e) => {
        e.preventDefault();
        void unlockSource();
      }}
    >
      <label htmlFor="source-password">This disk is encrypted. Enter its password to convert it:</label>
      <div className="source-password__row">
        <input
          id="source-password"
          data-testid="source-password"
          type="password"
          autoComplete="current-password"
          value={password}
          aria-invalid={unlock.state === 'failed'}
          aria-describedby={unlock.state === 'failed' ? 'source-password-error' : undefined}
          onChange={(e) => setSourcePassword(e.currentTarget.value)}
        />
        <button type="submit" className="button button--small" disabled={unlock.state === 'checking'}>
          Unlock
        </button>
        {unlock.state === 'checking' && <span className="muted">Checking…</span>}
        {unlock.state === 'unlocked' && <span className="unlocked">✓ Unlocked</span>}
      </div>
      {unlock.state === 'failed' && (
        <p id="source-password-error" className="inline-error" role="alert" data-testid="error">
          {unlock.error}
        </p>
      )}
    </form>
  );
}

/**
 * The variant of the format, from whichever key the driver reports it under: `create-type`
 * (vmdk), `subformat` (vhdx), `<format>-type` / `…-disk-type` (vdi, vhd), `compat` (qcow2).
 */
function subformatOf(format: string, facts: Record<string, unknown>): string | undefined {
  for (const [k, v] of Object.entries(facts)) {
    if (typeof v !== 'string' && typeof v !== 'number') continue;
    if (k === 'create-type' || k === 'subformat' || k === `${format}-type` || k.endsWith('-disk-type')) return String(v);
    if (k === 'compat') return `version ${v === '0.10' ? '2' : '3'} (compat ${v})`;
  }
  return undefined;
}
