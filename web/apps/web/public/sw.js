/*
 * The service worker: it makes the app installable and lets its shell start offline. It caches
 * the app shell only (the export's pages, scripts, styles, the client core's wasm, icons), all of
 * it under /app/. API responses, media, the WebSocket and anything else outside /app/ never pass
 * through it: those requests are not even looked at, so nothing a user reads or sends is kept.
 *
 * `scripts/write-sw.mjs` fills in VERSION and SHELL at build time (the export's files); a new
 * build changes this file, so browsers install the new worker and drop the old cache.
 */
const VERSION = 'development';
/** @type {string[]} */
const SHELL = [];

const SCOPE = '/app/';
const CACHE = `parley-shell-${VERSION}`;
/** Where a navigation falls back to offline when its own page is not cached. */
const FALLBACK_PAGE = '/app/chats/';

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))),
      )
      .then(() => self.clients.claim()),
  );
});

/**
 * Only GETs of our own app shell: everything else goes to the network untouched. A page may have
 * a query (`/app/chat/?id=…`: the same page for every chat); assets never do.
 */
function isShell(request) {
  if (request.method !== 'GET') return false;
  const url = new URL(request.url);
  return (
    url.origin === self.location.origin &&
    url.pathname.startsWith(SCOPE) &&
    url.pathname !== `${SCOPE}sw.js` &&
    (request.mode === 'navigate' || url.search === '')
  );
}

/** Pages: the network first (a new build shows at once), the cached copy offline. */
async function page(request) {
  const cache = await caches.open(CACHE);
  // One copy per page, whatever its query.
  const { pathname } = new URL(request.url);
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected) await cache.put(pathname, response.clone());
    return response;
  } catch (error) {
    const cached = (await cache.match(pathname)) ?? (await cache.match(FALLBACK_PAGE));
    if (cached) return cached;
    throw error;
  }
}

/** Everything else of the shell: the cache first (the export's assets are content-hashed). */
async function asset(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (!isShell(request)) return;
  event.respondWith(request.mode === 'navigate' ? page(request) : asset(request));
});
