import { useRef, useState } from 'react';
import { nativeDirectorySupported, nativeOpenSupported } from '../../capabilities.ts';
import { filesFromDrop, filesFromInput, pickFilesNative, pickFolderNative } from '../../adapters/pickFiles.ts';
import type { PickedFile } from '../../adapters/fileSet.ts';
import { addFiles } from '../../state/actions.ts';
import { useApp } from '../../state/store.ts';
import './style.css';

const ACCEPT = '.vmdk,.vdi,.vhd,.vhdx,.qcow,.qcow2,.cow,.cloop,.img,.raw,.ova,.bin,.iso';

/** Where files come in: drop zone, open-file and open-folder buttons, and the hidden inputs behind them. */
export function DropZone() {
  const [over, setOver] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  const hasFiles = useApp((s) => s.files.length > 0);
  const inspecting = useApp((s) => s.inspecting);

  const take = (files: PickedFile[] | null, append = false) => {
    if (files?.length) void addFiles(files, append);
  };
  const openFiles = async () => {
    if (nativeOpenSupported) take(await pickFilesNative().catch(() => null));
    else fileInput.current?.click();
  };
  const openFolder = async () => {
    if (nativeDirectorySupported) take(await pickFolderNative().catch(() => null));
    else folderInput.current?.click();
  };

  return (
    <section
      className={`drop-zone${over ? ' drop-zone--over' : ''}${hasFiles ? ' drop-zone--compact' : ''}`}
      data-testid="drop-zone"
      onDragOver={(e) => {
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        void filesFromDrop(e.nativeEvent).then((f) => take(f));
      }}
    >
      <div className="drop-zone__icon" aria-hidden="true">
        <svg viewBox="0 0 48 48" width="44" height="44">
          <rect x="6" y="10" width="36" height="28" rx="4" fill="none" stroke="currentColor" strokeWidth="2.5" />
          <circle cx="34" cy="31" r="2.5" fill="currentColor" />
          <path d="M24 4v16m-6-6 6 6 6-6" fill="none" stroke="currentColor" strokeWidth="2.5" strokeLinecap="round" strokeLinejoin="round" />
        </svg>
      </div>
      <div className="drop-zone__text">
        <strong>{inspecting ? 'Reading…' : hasFiles ? 'Drop other disk images here' : 'Drop a disk image here'}</strong>
        <span>
          .vmdk · .vdi · .vhd · .vhdx · .qcow2 · .qcow · .img · .raw · .ova — for multi-file disks (split VMDKs, backing files) drop
          the whole folder.
        </span>
      </div>
      <div className="drop-zone__buttons">
        <button type="button" className="button" onClick={() => void openFiles()}>
          Open files…
        </button>
        <button type="button" className="button button--quiet" onClick={() => void openFolder()}>
          Open folder…
        </button>
      </div>
      <input
        ref={fileInput}
        data-testid="file-input"
        className="visually-hidden"
        type="file"
        multiple
        accept={ACCEPT}
        tabIndex={-1}
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
