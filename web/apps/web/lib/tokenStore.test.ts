import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { indexedDbTokenStore, memoryTokenStore } from './tokenStore';

const session = { userId: 'u', deviceId: 'd' };

describe('indexedDbTokenStore', () => {
  it('keeps who is signed in across page loads until cleared, and nothing more', async () => {
    const factory = new IDBFactory();
    const store = indexedDbTokenStore(factory);
    expect(await store.load()).toBeNull();
    // What an older version stored: its refresh token is not read, and dropped at the next save.
    await store.save({ ...session, refreshToken: 'r-1' } as typeof session);
    expect(await store.load()).toEqual(session);
    await store.save({ ...session, deviceId: 'd-2' });
    // Another page load: a new store over the same database.
    expect(await indexedDbTokenStore(factory).load()).toEqual({ ...session, deviceId: 'd-2' });
    await store.clear();
    expect(await indexedDbTokenStore(factory).load()).toBeNull();
  });

  it('ignores what it did not write', async () => {
    const factory = new IDBFactory();
    const open = factory.open('parley', 1);
    await new Promise<void>((resolve) => {
      open.onupgradeneeded = () => open.result.createObjectStore('session');
      open.onsuccess = () => {
        open.result
          .transaction('session', 'readwrite')
          .objectStore('session')
          .put('junk', 'current');
        open.result.close();
        resolve();
      };
    });
    expect(await indexedDbTokenStore(factory).load()).toBeNull();
  });
});

describe('memoryTokenStore', () => {
  it('holds one session', async () => {
    const store = memoryTokenStore();
    await store.save(session);
    expect(await store.load()).toEqual(session);
    await store.clear();
    expect(await store.load()).toBeNull();
  });
});
