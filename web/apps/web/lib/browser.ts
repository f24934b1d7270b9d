/** The controller as the browser runs it: same origin, IndexedDB, the real WebSocket. */
import { AppController } from './controller';
import { loadCoreInBrowser } from './coreLoader';
import { createCryptoCore } from './crypto';
import { webDeviceLock, type WebLocks } from './deviceLock';
import { indexedDbDeviceVault, memoryDeviceVault } from './deviceVault';
import type { SocketLike } from './realtime';
import type { LockManagerLike } from './session';
import { indexedDbTokenStore, memoryTokenStore } from './tokenStore';

/** A name for this device in the user's device list, from the browser it runs in. */
function deviceName(): string {
  const agent = navigator.userAgent;
  const browser = /Firefox\//.test(agent)
    ? 'Firefox'
    : /Edg\//.test(agent)
      ? 'Edge'
      : /Chrom(e|ium)\//.test(agent)
        ? 'Chrome'
        : /Safari\//.test(agent)
          ? 'Safari'
          : 'Browser';
  return `Parley web (${browser})`;
}

export function createBrowserController(): AppController {
  const hasIndexedDb = typeof indexedDB !== 'undefined';
  const locks = (navigator.locks as unknown as (LockManagerLike & WebLocks) | undefined) ?? null;
  return new AppController({
    // The api serves this app, so the api is the page's own origin (it has no CORS layer).
    baseUrl: window.location.origin,
    tokenStore: hasIndexedDb ? indexedDbTokenStore(indexedDB) : memoryTokenStore(),
    crypto: createCryptoCore({
      loadCore: loadCoreInBrowser,
      vault: hasIndexedDb ? indexedDbDeviceVault(indexedDB) : memoryDeviceVault(),
    }),
    connect: (url, protocols) => new WebSocket(url, protocols) as unknown as SocketLike,
    locks,
    deviceLock: locks ? webDeviceLock(locks) : null,
    deviceName: deviceName(),
  });
}
