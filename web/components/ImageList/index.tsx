import { useState } from 'react';
import type { IgnoredFile } from '../../../workers/protocol.ts';
import { inspect, selectImage, setSourcePassword, treatAsRaw, unpackCompressed } from '../../state/sources.ts';
import { useApp } from '../../state/store.ts';
import { formatTitle } from '../../state/formats.ts';
import { humanSize } from '../../units.ts';
import { openFiles } from '../DropZone/index.tsx';
import { FileName } from '../FileName/index.tsx';
import './style.css';

/**
 * The images found among the dropped files (only shown when there is a choice to make), the files
 * that could not be read, and the ones that were set aside — each with its reason, and a way on:
 * add the missing files, type the password, or read the file as a raw disk on purpose.
 */
export function ImageList() {
  const inspection = useApp((s) => s.inspection);
  const selected = useApp((s) => s.selected);
  const inspectError = useApp((s) => s.inspectError);
  const jobFailed = useApp((s) => s.job.state === 'error');
  const formats = useApp((s) => s.formats);
  if (!inspection && !inspectError) return null;
  const images = inspection?.images ?? [];
  const errors = inspection?.errors ?? [];
  const ignored = inspection?.ignored ?? [];
  const showErrors = (errors.length > 0 || inspectError) && !jobFailed;
  const missing = [...new Set(errors.flatMap((e) => e.missing ?? []))];
  const sorted = [...images].sort((a, b) => a.path.localeCompare(b.path));
  return (
    <>
      {images.length > 1 && (
        <nav className="image-list" aria-label="Disk images found">
          {sorted.map((img) => (
            <button
              key={img.path}
              type="button"
              className={`image-list__item${img.path === selected ? ' image-list__item--active' : ''}`}
              aria-pressed={img.path === selected}
              onClick={() => selectImage(img.path)}
            >
              <span className="image-list__name">
                <FileName name={img.path} />
              </span>
              <span className="image-list__meta">
                {formatTitle(formats, img.format)} · {humanSize(img.virtualSize)}
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
          {missing.length > 0 && (
            <div className="missing-files">
              <p>
                This image is made of several files, and {missing.length === 1 ? 'this one is' : 'these are'} missing:{' '}
                {missing.map((m, i) => (
                  <span key={m}>
                    {i > 0 && ', '}
                    <code>{m}</code>
                  </span>
                ))}
                . Drop {missing.length === 1 ? 'it' : 'them'} anywhere on the page, or add {missing.length === 1 ? 'it' : 'them'} here:
              </p>
              <button type="button" className="button button--small" onClick={() => openFiles(true)}>
                Add the missing files…
              </button>
            </div>
          )}
          {errors.some((e) => e.code === 'needs-password' || e.code === 'wrong-password') && <PasswordForm />}
        </div>
      )}
      {(inspection?.compressed ?? []).map((c) => (
        <CompressedNotice key={c.path} path={c.path} kind={c.kind} size={c.size} />
      ))}
      {ignored.length > 0 && <IgnoredFiles files={ignored} alone={!images.length && !errors.length && !inspection?.compressed.length} />}
    </>
  );
}

/**
 * Files not taken as disks. When nothing else was found this is the page's answer, so it is an
 * error; beside real images it is a quiet list of what was set aside.
 */
function IgnoredFiles({ files, alone }: { files: IgnoredFile[]; alone: boolean }) {
  const sorted = [...files].sort((a, b) => a.path.localeCompare(b.path));
  return (
    <div
      className={`notice ${alone ? 'notice--error' : 'notice--quiet'} ignored-files`}
      role={alone ? 'alert' : 'status'}
      data-testid={alone ? 'error' : 'ignored'}
    >
      <strong>
        {alone
          ? files.length === 1
            ? 'This is not a disk image'
            : 'None of these files is a disk image'
          : `Not opened as disk images (${files.length})`}
      </strong>
      <ul>
        {sorted.map((f) => (
          <li key={f.path}>
            <code>
              <FileName name={f.path} />
            </code>
            : {f.reason}.{' '}
            {f.rawAllowed && (
              <button type="button" className="button button--small button--quiet" onClick={() => void treatAsRaw(f.path)}>
                Treat as raw disk
              </button>
            )}
          </li>
        ))}
      </ul>
      {alone && files.some((f) => f.rawAllowed) && (
        <p className="muted">
          “Treat as raw disk” reads the file byte for byte as a disk, as qemu-img would: only do this if you know it is one.
        </p>
      )}
    </div>
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

/** A compressed file: what it is, and the one step that opens the image inside. */
function CompressedNotice({ path, kind, size }: { path: string; kind: string; size: number }) {
  const unpacking = useApp((s) => (s.unpacking?.path === path ? s.unpacking : undefined));
  const busy = Boolean(unpacking && !unpacking.error);
  const pct = unpacking && unpacking.total > 0 ? Math.min(100, Math.floor((unpacking.done / unpacking.total) * 100)) : 0;
  return (
    <div className="notice notice--quiet compressed" data-testid="compressed">
      <p>
        <code>
          <FileName name={path} />
        </code>{' '}
        is a {kind}-compressed file ({humanSize(size)}). DiskFerry unpacks it into the browser’s private storage — it stays on this computer
        — and then shows the disk inside.
      </p>
      {busy ? (
        <div className="progress" role="progressbar" aria-label="Unpacking" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}>
          <div className="progress__bar" style={{ width: `${pct}%` }} />
        </div>
      ) : (
        <button type="button" className="button button--small" onClick={() => void unpackCompressed(path)}>
          Unpack and open
        </button>
      )}
      {unpacking?.error && (
        <p className="inline-error" role="alert">
          {unpacking.error}
        </p>
      )}
    </div>
  );
}
