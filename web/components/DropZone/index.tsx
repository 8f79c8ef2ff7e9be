import { useEffect, useRef } from 'react';
import { nativeDirectorySupported, nativeOpenSupported } from '../../capabilities.ts';
import { filesFromInput, pickFilesNative, pickFolderNative } from '../../adapters/pickFiles.ts';
import type { PickedFile } from '../../../workers/protocol.ts';
import { addFiles } from '../../state/sources.ts';
import { hasSource, useApp } from '../../state/store.ts';
import { UrlForm } from '../UrlForm/index.tsx';
import './style.css';

const ACCEPT = '.vmdk,.vdi,.vhd,.vhdx,.qcow,.qcow2,.cow,.cloop,.img,.raw,.ova,.bin,.iso';

/** Opens the file dialog (native where it exists, else the hidden input): used by "Add the missing files…" too. */
let openFileDialog: (append: boolean) => void = () => {};
/** `append`: the chosen files join the open set ("Add the missing files…") instead of replacing it. */
export const openFiles = (append = false) => openFileDialog(append);

/**
 * Where files come in: drop zone, open-file and open-folder buttons, the hidden inputs behind
 * them, and "Open from a URL". Drops themselves are taken by the whole page (App/usePageDrop.ts); this zone lights up.
 */
export function DropZone() {
  const over = useApp((s) => s.dragging);
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  const hasFiles = useApp(hasSource);
  const inspecting = useApp((s) => s.inspecting);

  /** Set while the file dialog opened by "Add the missing files…" is up. */
  const appending = useRef(false);
  const take = (files: PickedFile[] | null) => {
    const append = appending.current;
    appending.current = false;
    if (files?.length) void addFiles(files, append || undefined);
  };
  const openFiles = async () => {
    if (nativeOpenSupported) take(await pickFilesNative().catch(() => null));
    else fileInput.current?.click();
  };
  // "Add the missing files…" (ImageList) opens this component's dialog in append mode.
  useEffect(() => {
    openFileDialog = (append) => {
      appending.current = append;
      void openFiles();
    };
  });
  const openFolder = async () => {
    if (nativeDirectorySupported) take(await pickFolderNative().catch(() => null));
    else folderInput.current?.click();
  };

  return (
    <section
      className={`drop-zone${over ? ' drop-zone--over' : ''}${hasFiles ? ' drop-zone--compact' : ''}`}
      data-testid="drop-zone"
      aria-label="Drop disk images here, or open them"
    >
      <div className="drop-zone__icon" aria-hidden="true">
        <svg viewBox="0 0 48 48" width="44" height="44">
          <rect x="6" y="10" width="36" height="28" rx="4" fill="none" stroke="currentColor" strokeWidth="2.5" />
          <circle cx="34" cy="31" r="2.5" fill="currentColor" />
          <path
            d="M24 4v16m-6-6 6 6 6-6"
            fill="none"
            stroke="currentColor"
            strokeWidth="2.5"
            strokeLinecap="round"
            strokeLinejoin="round"
          />
        </svg>
      </div>
      <div className="drop-zone__text">
        <strong>{inspecting ? 'Reading…' : hasFiles ? 'Drop other disk images here' : 'Drop a disk image here'}</strong>
        <span>
          .vmdk · .vdi · .vhd · .vhdx · .qcow2 · .qcow · .img · .raw · .ova — for multi-file disks (split VMDKs, backing files) drop the
          whole folder.
        </span>
      </div>
      <div className="drop-zone__buttons">
        <button type="button" className="button" onClick={() => openFileDialog(false)}>
          Open files…
        </button>
        <button type="button" className="button button--quiet" onClick={() => void openFolder()}>
          Open folder…
        </button>
      </div>
      <UrlForm />
      <input
        ref={fileInput}
        data-testid="file-input"
        className="visually-hidden"
        type="file"
        multiple
        accept={ACCEPT}
        tabIndex={-1}
        aria-label="Disk image files"
        onChange={(e) => {
          take(filesFromInput(e.currentTarget.files));
          e.currentTarget.value = '';
        }}
      />
      <input
        ref={folderInput}
        data-testid="folder-input"
        className="visually-hidden"
        type="file"
        tabIndex={-1}
        aria-label="A folder of disk image files"
        // @ts-expect-error -- webkitdirectory is not in React's input attributes
        webkitdirectory=""
        onChange={(e) => {
          take(filesFromInput(e.currentTarget.files));
          e.currentTarget.value = '';
        }}
      />
    </section>
  );
}
