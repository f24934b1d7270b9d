/** The controller as the browser runs it: same origin, IndexedDB, the real WebSocket. */
import { AppController } from './controller';
import { cryptoCore } from './crypto';
import type { SocketLike } from './realtime';
import type { LockManagerLike } from './session';
import { indexedDbTokenStore, memoryTokenStore } from './tokenStore';

export function createBrowserController(): AppController {
  return new AppController({
    // The api serves this app, so the api is the page's own origin (it has no CORS layer).
    baseUrl: window.location.origin,
    tokenStore:
      typeof indexedDB !== 'undefined' ? indexedDbTokenStore(indexedDB) : memoryTokenStore(),
    crypto: cryptoCore,
    connect: (url, protocols) => new WebSocket(url, protocols) as unknown as SocketLike,
    locks: (navigator.locks as unknown as LockManagerLike | undefined) ?? null,
  });
}
