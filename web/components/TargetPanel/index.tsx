import { useEffect, useRef, type ReactNode } from 'react';
import type { CreateOptionSpec } from '../../../src-core/image/types.ts';
import type { ImageSummary } from '../../../workers/protocol.ts';
import { saveMethod } from '../../capabilities.ts';
import { startConvert } from '../../state/job.ts';
import { currentPlan } from '../../state/plan.ts';
import {
  applyPreset,
  compressAllowed,
  encryptOutput,
  setCompress,
  setOption,
  setTargetFormat,
  updateTarget,
} from '../../state/targetForm.ts';
import { formatTitle, optionApplies, orderFormats, titleWithCliName } from '../../state/formats.ts';
import { dropClash, plannedFacts, plannedSize } from '../../state/preflight.ts';
import { destinationOf, MiB, PRESETS, sizingPreset } from '../../state/presets.ts';
import { LintSummary, lintWithClashes } from '../Preflight/index.tsx';
import { useApp } from '../../state/store.ts';
import { bytesExact, duration, humanSize } from '../../units.ts';
import './style.css';

/** Options the form does not show: the secret id is filled in from the password field. */
const HIDDEN_OPTIONS = new Set(['encrypt.key-secret', 'key-secret']);

/** Step 3: where the disk is going (presets), the exact format and options, and the Convert button. */
export function TargetPanel({ image }: { image: ImageSummary }) {
  const formats = useApp((s) => s.formats);
  const target = useApp((s) => s.target);
  const busy = useApp((s) => ['checking', 'running', 'finalizing', 'cancelling'].includes(s.job.state));
  const jobState = useApp((s) => s.job.state);
  const convertButton = useRef<HTMLButtonElement>(null);
  // Convert is disabled while the job runs; when it ends, focus comes back to it (not to <body>).
  const wasBusy = useRef(false);
  useEffect(() => {
    if (wasBusy.current && !busy && jobState !== 'done' && jobState !== 'error' && jobState !== 'cancelled') convertButton.current?.focus();
    wasBusy.current = busy;
  }, [busy, jobState]);
  const fmt = formats.find((f) => f.name === target.format);
  const preset = PRESETS.find((p) => p.id === target.preset);
  const writable = (name: string) => formats.some((f) => f.name === name && f.canWrite);
  const specs = (fmt?.createOptions ?? []).filter((o) => !HIDDEN_OPTIONS.has(o.name) && optionApplies(o.name, target.options));
  // A preset's destination rounds the size itself (and says so); a fixed VHD chosen by hand only warns.
  const sizing = sizingPreset(target);
  const sizePlan = plannedSize(sizing, image.virtualSize);
  const wantsWholeMiB = !sizing && target.format === 'vpc' && target.options.subformat === 'fixed';
  const notWholeMiB = image.virtualSize % MiB !== 0;
  // qcow2 encrypts when asked to; the luks format always does.
  const encrypting = Boolean(target.options['encrypt.format']) || target.format === 'luks';
  const canCompress = compressAllowed(target);
  const compressHelp = fmt?.compression
    ? canCompress
      ? fmt.compression.help
      : `only a ${fmt.compression.subformat} ${formatTitle(formats, fmt.name)} can be compressed`
    : `${fmt ? formatTitle(formats, fmt.name) : 'this format'} has no compression`;

  return (
    <section className="card target" aria-label="Convert" id="target-panel">
      <header className="card__head">
        <h2>
          <span className="step">3</span> Where is it going?
        </h2>
      </header>
      <div className="target__dest">
        <div>
          <div className="presets" role="group" aria-label="Where it is going">
            {PRESETS.map((p) => {
              const ok = writable(p.target);
              return (
                <button
                  key={p.id}
                  type="button"
                  className={`preset${p.id === target.preset ? ' preset--active' : ''}`}
                  disabled={!ok || busy}
                  aria-pressed={p.id === target.preset}
                  aria-describedby={p.id === target.preset ? 'preset-blurb' : undefined}
                  onClick={() => applyPreset(p.id)}
                  title={ok ? p.blurb : `This build cannot write ${p.target} images yet`}
                >
                  {p.title}
                </button>
              );
            })}
          </div>
          <p className="preset-blurb muted" id="preset-blurb">
            {preset ? preset.blurb : 'Pick where the disk is going for ready-made settings, or choose the format yourself below.'}
          </p>
          {sizePlan.rounded && !sizePlan.error && (
            <p className="notice notice--quiet size-rounded" data-testid="size-rounded">
              Size {sizePlan.rounded}.
            </p>
          )}
          {sizePlan.error && (
            <p className="notice notice--warn" data-testid="size-refused">
              {sizing?.title} cannot take this disk: {sizePlan.error}.
            </p>
          )}
        </div>
        <PlannedCheck image={image} size={sizePlan.size} />
      </div>

      <div className="target__form">
        <label className="field">
          <span>Save as</span>
          <select
            data-testid="target-format"
            value={target.format}
            disabled={busy}
            onChange={(e) => setTargetFormat(e.currentTarget.value)}
          >
            {orderFormats(formats)
              .filter((f) => f.canWrite)
              .map((f) => (
                <option key={f.name} value={f.name}>
                  {titleWithCliName(formats, f.name)} — {f.label.replace(/\s*\([^)]*\)$/, '')}
                </option>
              ))}
          </select>
        </label>
        <CheckField testId="compress" checked={target.compress && canCompress} disabled={busy || !canCompress} onChange={setCompress}>
          Compress{' '}
          <span className="muted">
            ({compressHelp}; <code className="nowrap">qemu-img -c</code>)
          </span>
        </CheckField>
        <CheckField testId="verify" checked={target.verify} disabled={busy} onChange={(verify) => updateTarget({ verify })}>
          Verify after writing <span className="muted">(reads the new file back and compares it with the source)</span>
        </CheckField>
        {image.snapshots.length > 0 && (
          <label className="field">
            <span>Convert from</span>
            <select
              value={target.snapshot}
              disabled={busy}
              onChange={(e) => updateTarget({ snapshot: e.currentTarget.value, preset: target.preset })}
            >
              <option value="">the current state</option>
              {image.snapshots.map((s) => (
                <option key={s.id} value={s.id}>
                  snapshot {s.name || s.id}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>

      <details className="target__advanced">
        <summary>
          Advanced {fmt ? titleWithCliName(formats, fmt.name) : ''} options
          {target.reproducible && <span className="muted"> — reproducible</span>}
          {Object.keys(target.options).length > 0 && (
            <span className="muted">
              {' '}
              —{' '}
              {Object.entries(target.options)
                .filter(([k]) => !HIDDEN_OPTIONS.has(k))
                .map(([k, v]) => `${k}=${v}`)
                .join(', ')}
            </span>
          )}
        </summary>
        <CheckField
          testId="reproducible"
          checked={target.reproducible}
          disabled={busy}
          onChange={(reproducible) => updateTarget({ reproducible })}
        >
          Reproducible output{' '}
          <span className="muted">
            (ids from the disk’s contents and these settings, fixed times: the same input gives the same bytes;{' '}
            <code className="nowrap">diskferry convert --reproducible</code>)
          </span>
        </CheckField>
        <div className="target__options">
          {specs.map((spec) => (
            <OptionField key={spec.name} spec={spec} value={target.options[spec.name]} disabled={busy} />
          ))}
        </div>
      </details>
      {encrypting && (
        <label className="field">
          <span>Encryption password</span>
          <input
            type="password"
            autoComplete="new-password"
            value={target.outputPassword}
            onChange={(e) => updateTarget({ outputPassword: e.currentTarget.value, preset: target.preset })}
          />
        </label>
      )}

      {image.info.encrypted && !encrypting && (
        <div className="notice notice--warn" data-testid="encryption-notice">
          <p>
            The source is encrypted, but this {fmt ? formatTitle(formats, fmt.name) : ''} output will not be: anyone with the file can read
            the disk.
          </p>
          <button type="button" className="button button--small" disabled={busy} onClick={encryptOutput}>
            Keep it encrypted (qcow2 with LUKS)
          </button>
        </div>
      )}
      {wantsWholeMiB && notWholeMiB && (
        <p className="notice notice--warn">
          Azure needs a virtual size that is a whole number of MiB; this disk is {bytesExact(image.virtualSize)} bytes (
          {bytesExact(image.virtualSize % MiB)} bytes over). The Azure preset rounds it up for you (the added space is zeros); as it stands,
          Azure will refuse the upload.
        </p>
      )}

      <div className="target__go">
        <button
          ref={convertButton}
          type="button"
          className="button button--primary"
          data-testid="convert"
          disabled={!fmt?.canWrite || busy}
          onClick={() => void startConvert()}
        >
          Convert to {fmt ? formatTitle(formats, fmt.name) : '…'}
        </button>
        {jobState === 'checking' && (
          <span className="muted" role="status">
            Checking the disk and the options…
          </span>
        )}
        <EstimateLine
          sourceBytes={image.filesBytes}
          dataBytes={image.map ? image.map.totals.data + image.map.totals.compressed : undefined}
        />
        <span className="muted">
          {saveMethod === 'picker'
            ? 'You choose where to save; the file is written straight to disk as it is converted.'
            : 'The file is built in the browser’s private storage, then arrives as a download.'}{' '}
          Nothing is uploaded.
        </span>
      </div>
    </section>
  );
}

/** A checkbox with its label; the whole line is clickable. */
function CheckField(props: {
  id?: string;
  testId?: string;
  checked: boolean;
  disabled: boolean;
  onChange(checked: boolean): void;
  children: ReactNode;
}) {
  return (
    <label className="field field--check" htmlFor={props.id}>
      <input
        id={props.id}
        type="checkbox"
        data-testid={props.testId}
        checked={props.checked}
        disabled={props.disabled}
        onChange={(e) => props.onChange(e.currentTarget.checked)}
      />
      <span>{props.children}</span>
    </label>
  );
}

function OptionField({ spec, value, disabled }: { spec: CreateOptionSpec; value: string | undefined; disabled: boolean }) {
  const id = `opt-${spec.name}`;
  const label = (
    <span>
      {spec.name} <span className="muted">{spec.help}</span>
    </span>
  );
  if (spec.type === 'bool') {
    // Three states, not a checkbox: "unset" is a choice of its own (VHD force_size unset keeps the
    // exact size; off rounds it to a CHS geometry, which Azure refuses).
    const current = value === undefined ? '' : value === 'on' || value === 'true' ? 'on' : 'off';
    return (
      <label className="field" htmlFor={id}>
        {label}
        <select id={id} value={current} disabled={disabled} onChange={(e) => setOption(spec.name, e.currentTarget.value || undefined)}>
          <option value="">default{spec.default ? ` (${spec.default})` : ' (unset)'}</option>
          <option value="on">on</option>
          <option value="off">off</option>
        </select>
      </label>
    );
  }
  if (spec.type === 'enum' && spec.values) {
    return (
      <label className="field" htmlFor={id}>
        {label}
        <select id={id} value={value ?? ''} disabled={disabled} onChange={(e) => setOption(spec.name, e.currentTarget.value)}>
          <option value="">default{spec.default ? ` (${spec.default})` : ''}</option>
          {spec.values.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
      </label>
    );
  }
  return (
    <label className="field" htmlFor={id}>
      {label}
      <input
        id={id}
        type="text"
        placeholder={spec.default ?? ''}
        value={value ?? ''}
        disabled={disabled}
        onChange={(e) => setOption(spec.name, e.currentTarget.value)}
      />
    </label>
  );
}

/**
 * The output's size before converting ("≈ 69.2 MiB"), from a conversion into sinks that keep
 * only lengths, run in the background whenever the choice changes; with the source's files
 * beside it, and the time when the estimate could measure it.
 */
function EstimateLine({ sourceBytes, dataBytes }: { sourceBytes: number; dataBytes?: number }) {
  const estimate = useApp((s) => s.estimate);
  if (estimate.state === 'none') return null;
  if (estimate.state === 'failed') {
    return (
      <p className="estimate muted" data-testid="estimate">
        Output size unknown until the conversion can start ({estimate.error}).
      </p>
    );
  }
  if (estimate.state === 'running') {
    const p = estimate.progress;
    const pct = p && p.total > 0 ? Math.floor((p.done / p.total) * 100) : undefined;
    return (
      <p className="estimate muted" data-testid="estimate" aria-live="polite">
        Working out the output size{pct !== undefined ? ` (${pct}%)` : ''}…
      </p>
    );
  }
  const r = estimate.result;
  const change = sourceBytes > 0 ? Math.round(((r.bytes - sourceBytes) / sourceBytes) * 100) : 0;
  return (
    <p className="estimate" data-testid="estimate" aria-live="polite">
      <strong>≈ {humanSize(r.bytes)}</strong>{' '}
      <span className="muted">
        output{sourceBytes > 0 && ` (${humanSize(sourceBytes)} now, ${change > 0 ? '+' : change < 0 ? '−' : '±'}${Math.abs(change)} %)`}
        {r.seconds >= 1 && `, about ${duration(r.seconds)} of work`}
        {!r.exact && ', estimated from a sample'}
      </span>
      {/* Raw-like sources (raw, fixed VHD, flat VMDK) call every byte data; the estimate's pass found the zeros. */}
      {dataBytes !== undefined && r.nonZeroBytes < dataBytes * 0.9 && (
        <span className="muted" data-testid="data-share">
          {' '}
          · of its {humanSize(dataBytes)} of data, ≈ {humanSize(r.nonZeroBytes)} is not zeros{r.exact ? '' : ' (sampled)'}
        </span>
      )}
    </p>
  );
}

/**
 * The pre-flight check beside the presets: the chosen destination's importer rules judged on the
 * file this form would write (the source's facts, with the writer's format, subformat and the
 * planned size), and with several dropped disks whether their ids would clash.
 */
function PlannedCheck({ image, size }: { image: ImageSummary; size: number }) {
  const target = useApp((s) => s.target);
  const images = useApp((s) => s.inspection?.images ?? []);
  const preset = destinationOf(target);
  const destination = preset?.destination;
  if (!destination) {
    return (
      <p className="preflight-hint muted" data-testid="preflight-none">
        Pick a destination to see what its importer checks before you convert.
      </p>
    );
  }
  if (!image.facts) {
    return (
      <p className="preflight-hint muted" data-testid="preflight-none">
        The disk could not be read for the pre-flight check.
      </p>
    );
  }
  const name = currentPlan()?.outputName ?? image.path;
  const planned = plannedFacts(image.facts, target, size, name);
  const others = images
    .filter((i) => i.path !== image.path && i.facts)
    .map((i) => plannedFacts(i.facts!, target, plannedSize(sizingPreset(target), i.virtualSize).size, i.path));
  const results = lintWithClashes(destination, planned, []);
  const clash = dropClash(
    destination,
    planned,
    [planned, ...others],
    images.flatMap((i) => (i.facts ? [i.facts] : [])),
  );
  if (clash) results.push(clash);
  return (
    <LintSummary destination={destination} title={preset.title} results={results} testId="preflight" subject="as it will be written" />
  );
}
