import { useId, useState } from 'react';
import { openUrl } from '../../state/sources.ts';
import { useApp } from '../../state/store.ts';
import './style.css';

/**
 * "Open from a URL": an image on a web server, read with range requests — the preview fetches
 * only its metadata, the conversion streams the rest. Why a URL cannot be read (not a URL, the
 * server's CORS rules, no Range support) is said here, under the field.
 */
export function UrlForm() {
  const id = useId();
  const urlOpen = useApp((s) => s.urlOpen);
  const [text, setText] = useState('');
  const opening = urlOpen.state === 'opening';
  return (
    <form
      className="url-form"
      data-testid="url-form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (text.trim()) void openUrl(text);
      }}
    >
      <label htmlFor={id} className="url-form__label">
        Or open from a URL
      </label>
      <div className="url-form__row">
        <input
          id={id}
          data-testid="url-input"
          type="url"
          inputMode="url"
          autoComplete="url"
          spellCheck={false}
          placeholder="https://example.com/images/disk.qcow2"
          value={text}
          aria-describedby={urlOpen.state === 'failed' ? `${id}-error` : undefined}
          onChange={(e) => setText(e.currentTarget.value)}
        />
        <button type="submit" className="button button--quiet" data-testid="url-open" disabled={opening || !text.trim()}>
          {opening ? 'Reading…' : 'Open URL'}
        </button>
      </div>
      {urlOpen.state === 'failed' && (
        <p id={`${id}-error`} className="notice notice--error url-form__error" role="alert" data-testid="url-error">
          {urlOpen.error}
        </p>
      )}
    </form>
  );
}
