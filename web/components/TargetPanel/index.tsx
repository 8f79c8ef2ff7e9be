import type { ReactNode } from 'react';
import type { CreateOptionSpec } from '../../../src-core/image/types.ts';
import type { ImageSummary } from '../../../workers/protocol.ts';
import { saveMethod } from '../../capabilities.ts';
import { applyPreset, setOption, setTargetFormat, startConvert, updateTarget } from '../../state/actions.ts';
import { MiB, PRESETS } from '../../state/presets.ts';
import { useApp } from '../../state/store.ts';
import { bytesExact } from '../../units.ts';
import './style.css';

/** Options the form does not show: the secret id is filled in from the password field. */
const HIDDEN_OPTIONS = new Set(['encrypt.key-secret', 'key-secret']);

/** Step 3: where the disk is going (presets), the exact format and options, and the Convert button. */
export function TargetPanel({ image }: { image: ImageSummary }) {
  const formats = useApp((s) => s.formats);
  const target = useApp((s) => s.target);
  const busy = useApp((s) => s.job.state === 'running' || s.job.state === 'finalizing' || s.job.state === 'cancelling');
  const fmt = formats.find((f) => f.name === target.format);
  const preset = PRESETS.find((p) => p.id === target.preset);
  const writable = (name: string) => formats.some((f) => f.name === name && f.canWrite);
  const specs = (fmt?.createOptions ?? []).filter((o) => !HIDDEN_OPTIONS.has(o.name));
  const wantsWholeMiB = preset?.needsWholeMiB || (target.format === 'vpc' && target.options.subformat === 'fixed');
  const notWholeMiB = image.virtualSize % MiB !== 0;
  // qcow2 encrypts when asked to; the luks format always does.
  const encrypting = Boolean(target.options['encrypt.format']) || target.format === 'luks';

  return (
    <section className="card target" aria-label="Convert">
      <header className="card__head">
        <h2>
          <span className="step">3</span> Where is it going?
        </h2>
      </header>
      <div className="presets" role="group" aria-label="Presets">
        {PRESETS.map((p) => {
          const ok = writable(p.target);
          return (
            <button
              key={p.id}
              type="button"
              className={`preset${p.id === target.preset ? ' preset--active' : ''}`}
              disabled={!ok || busy}
              aria-pressed={p.id === target.preset}
              onClick={() => applyPreset(p.id)}
              title={ok ? p.blurb : `This build cannot write ${p.target} images yet`}
            >
              <strong>{p.title}</strong>
              <span>{ok ? p.blurb : `Needs the ${p.target} writer (not in this build yet).`}</span>
            </button>
          );
        })}
      </div>

      <div className="target__form">
        <label className="field">
          <span>Save as</span>
          <select data-testid="target-format" value={target.format} disabled={busy} onChange={(e) => setTargetFormat(e.currentTarget.value)}>
            {formats.map((f) => (
              <option key={f.name} value={f.name} disabled={!f.canWrite}>
                {f.label}
                {f.canWrite ? '' : ' — read only'}
              </option>
            ))}
          </select>
        </label>
        <CheckField testId="compress" checked={target.compress} disabled={busy} onChange={(compress) => updateTarget({ compress })}>
          Compress <span className="muted">(smaller file, slower; qemu-img -c)</span>
        </CheckField>
        <CheckField testId="verify" checked={target.verify} disabled={busy} onChange={(verify) => updateTarget({ verify })}>
          Verify after writing <span className="muted">(reads the new file back and compares it with the source)</span>
        </CheckField>
        {image.snapshots.length > 0 && (
          <label className="field">
            <span>Convert from</span>
            <select value={target.snapshot} disabled={busy} onChange={(e) => updateTarget({ snapshot: e.currentTarget.value, preset: target.preset })}>
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

      {specs.length > 0 && (
        <details className="target__advanced">
          <summary>
            Advanced {fmt?.name} options
            {Object.keys(target.options).length > 0 && (
              <span className="muted">
                {' '}
                — {Object.entries(target.options)
                  .filter(([k]) => !HIDDEN_OPTIONS.has(k))
                  .map(([k, v]) => `${k}=${v}`)
                  .join(', ')}
              </span>
            )}
          </summary>
          <div className="target__options">
            {specs.map((spec) => (
              <OptionField key={spec.name} spec={spec} value={target.options[spec.name]} disabled={busy} />
            ))}
          </div>
        </details>
      )}
      {encrypting && (
        <label className="field">
          <span>Encryption password</span>
          <input type="password" autoComplete="new-password" value={target.outputPassword} onChange={(e) => updateTarget({ outputPassword: e.currentTarget.value, preset: target.preset })} />
        </label>
      )}

      {wantsWholeMiB && notWholeMiB && (
        <p className="notice notice--warn">
          Azure needs a virtual size that is a whole number of MiB; this disk is {bytesExact(image.virtualSize)} bytes ({bytesExact(image.virtualSize % MiB)} bytes over).
          Resize the source to a whole MiB first, or Azure will refuse the upload.
        </p>
      )}

      <div className="target__go">
        <button type="button" className="button button--primary" data-testid="convert" disabled={!fmt?.canWrite || busy} onClick={() => void startConvert()}>
          Convert to {fmt?.name ?? '…'}
        </button>
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
function CheckField(props: { id?: string; testId?: string; checked: boolean; disabled: boolean; onChange(checked: boolean): void; children: ReactNode }) {
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
    const on = (value ?? spec.default) === 'on' || value === 'true';
    return (
      <CheckField id={id} checked={on} disabled={disabled} onChange={(checked) => setOption(spec.name, checked ? 'on' : 'off')}>
        {label}
      </CheckField>
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
      <input id={id} type="text" placeholder={spec.default ?? ''} value={value ?? ''} disabled={disabled} onChange={(e) => setOption(spec.name, e.currentTarget.value)} />
    </label>
  );
}

