// The service worker: precaches the app shell, worker chunks, wasm, manifest and icons, then
// answers every same-origin GET (but ranged reads) from the cache, so the app works offline after one visit.
// The build (vite.config.ts, plugin `precacheManifest`) replaces the two placeholders below.

// The page's tsconfig has lib.dom, which lacks the service-worker types and clashes with
// lib.webworker; these few declarations cover what this file uses.
interface SwExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface SwFetchEvent extends SwExtendableEvent {
  readonly request: Request;
  respondWith(r: Promise<Response> | Response): void;
}
interface SwMessageEvent extends SwExtendableEvent {
  readonly data: unknown;
}
interface SwScope {
  readonly location: Location;
  readonly clients: { claim(): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', fn: (e: SwExtendableEvent) => void): void;
  addEventListener(type: 'fetch', fn: (e: SwFetchEvent) => void): void;
  addEventListener(type: 'message', fn: (e: SwMessageEvent) => void): void;
}
const sw = self as unknown as SwScope;

const VERSION: string = '__DISKFERRY_VERSION__';
const PRECACHE: string[] = JSON.parse('__DISKFERRY_PRECACHE__');
const CACHE = `diskferry-${VERSION}`;

sw.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PRECACHE.map((p) => new Request(p, { cache: 'reload' })))));
  // The first install takes over at once; an update waits for the page's "reload" prompt.
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith('diskferry-') && key !== CACHE) await caches.delete(key);
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener('message', (event) => {
  if ((event.data as { type?: string } | null)?.type === 'skip-waiting') void sw.skipWaiting();
});

sw.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  // Left to the network: other origins, and ranged reads (disk images opened from a URL): a
  // cached whole file must never answer a range, and disk images are never cached.
  if (req.method !== 'GET' || url.origin !== sw.location.origin || req.headers.has('range')) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      // Navigations (including file_handlers launches with a query) get the app shell.
      // ignoreVary: the server sends `Vary: Origin`, and module scripts carry an Origin header
      // that the precache requests did not, which would otherwise make every lookup miss.
      const hit =
        req.mode === 'navigate' ? await cache.match('/index.html') : await cache.match(req, { ignoreSearch: true, ignoreVary: true });
      if (hit) return hit;
      return fetch(req);
    })(),
  );
});
