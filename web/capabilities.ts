/**
 * What this browser can do, decided once (browser-fs-access's supported.mjs pattern).
 * Components read these flags; they never probe `window` themselves.
 */

const inTopFrame = (() => {
  try {
    return window.self === window.top;
  } catch {
    return false;
  }
})();

/** Save straight into a user-chosen file (Chromium desktop). Pickers refuse to run in cross-origin iframes. */
export const nativeSaveSupported = typeof window.showSaveFilePicker === 'function' && inTopFrame;

/** Open-file / open-folder dialogs that hand back File System Access handles. */
export const nativeOpenSupported = typeof window.showOpenFilePicker === 'function' && inTopFrame;
export const nativeDirectorySupported = typeof window.showDirectoryPicker === 'function' && inTopFrame;

/** Origin-private file system: the fallback output (a sync access handle in the worker, then a download). */
export const opfsSupported = typeof navigator.storage?.getDirectory === 'function';

/** Installed-app file handling (manifest file_handlers). */
export const launchQueueSupported = 'launchQueue' in window;

export const serviceWorkerSupported = 'serviceWorker' in navigator && window.isSecureContext;

/** How the result will reach the user, in words for the page. */
export const saveMethod: 'picker' | 'download' | 'none' = nativeSaveSupported ? 'picker' : opfsSupported ? 'download' : 'none';
