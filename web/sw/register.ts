import { serviceWorkerSupported } from '../capabilities.ts';
import { useApp } from '../state/store.ts';

/** The waiting service worker of a new version, once one is ready. */
let waiting: ServiceWorker | undefined;

/**
 * Registers the service worker (it precaches the whole app so it works offline) and watches
 * for updates: a new version installs in the background, and the page offers to switch to it
 * rather than switching under a running conversion.
 */
export async function registerServiceWorker(): Promise<void> {
  if (!serviceWorkerSupported || import.meta.env.DEV) return;
  const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  // Automation that blocks service workers resolves without a registration.
  if (!reg) return;
  const offer = (w: ServiceWorker | null) => {
    // No controller yet means this is the first install, not an update.
    if (!w || !navigator.serviceWorker.controller) return;
    waiting = w;
    useApp.setState({ updateReady: true });
  };
  offer(reg.waiting);
  reg.addEventListener('updatefound', () => {
    const w = reg.installing;
    w?.addEventListener('statechange', () => {
      if (w.state === 'installed') offer(w);
    });
  });
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (!waiting || reloading) return;
    reloading = true;
    location.reload();
  });
  // Look for a new version when the tab comes back into view.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') void reg.update().catch(() => {});
  });
}

/** Lets the waiting version take over; `controllerchange` then reloads the page. */
export function applyUpdate(): void {
  waiting?.postMessage({ type: 'skip-waiting' });
}
