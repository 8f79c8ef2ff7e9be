import { useState } from 'react';
import { inspect, selectImage, setSourcePassword } from '../../state/actions.ts';
import { useApp } from '../../state/store.ts';
import { humanSize } from '../../units.ts';
import './style.css';

/** The images found among the dropped files (only shown when there is a choice to make) and the files that were not readable. */
export function ImageList() {
  const inspection = useApp((s) => s.inspection);
  const selected = useApp((s) => s.selected);
  const inspectError = useApp((s) => s.inspectError);
  const jobFailed = useApp((s) => s.job.state === 'error');
  if (!inspection && !inspectError) return null;
  const images = inspection?.images ?? [];
  const errors = inspection?.errors ?? [];
  const showErrors = (errors.length > 0 || inspectError) && !jobFailed;
  return (
    <>
      {images.length > 1 && (
        <nav className="image-list" aria-label="Disk images found">
          {images.map((img) => (
            <button
              key={img.path}
              type="button"
              className={`image-list__item${img.path === selected ? ' image-list__item--active' : ''}`}
              onClick={() => selectImage(img.path)}
            >
              <span className="image-list__name">{img.path}</span>
              <span className="image-list__meta">
                {img.format} · {humanSize(img.virtualSize)}
              </span>
            </button>
          ))}
        </nav>
      )}
      {showErrors && (
        <div className="notice notice--error" role="alert" data-testid="error">
          <strong>{images.length ? 'Some files could not be read' : 'This file could not be read as a disk image'}</strong>
          <ul>
            {inspectError && <li>{inspectError}</li>}
            {errors.map((e) => (
              <li key={e.path}>{e.message}</li>
            ))}
          </ul>
          {errors.some((e) => e.code === 'missing-file') && (
            <p>This image is made of several files. Drop the whole folder, or all its files together.</p>
          )}
          {errors.some((e) => e.code === 'needs-password' || e.code === 'wrong-password') && <PasswordForm />}
        </div>
      )}
      {inspection && !images.length && !errors.length && (
        <div className="notice notice--error" role="alert" data-testid="error">
          None of the dropped files is a disk image DiskFerry knows.
        </div>
      )}
    </>
  );
}

/** An encrypted image: ask for its password and read the files again. */
function PasswordForm() {
  const [value, setValue] = useState(useApp.getState().sourcePassword);
  const inspecting = useApp((s) => s.inspecting);
  return (
    <form
      className="password-form"
      onSubmit={(e) => {
        e.preventDefault();
        setSourcePassword(value);
        void inspect();
      }}
    >
      <label>
        Password of the encrypted image{' '}
        <input type="password" autoComplete="current-password" value={value} onChange={(e) => setValue(e.currentTarget.value)} />
      </label>
      <button type="submit" className="button button--small" disabled={inspecting || !value}>
        Unlock
      </button>
    </form>
  );
}
