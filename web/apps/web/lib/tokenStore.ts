/**
 * Who is signed in on this browser (user and device ids), in IndexedDB, so a page load knows whom
 * to restore. No secret is kept here: the refresh token is an `HttpOnly` cookie no script can
 * read, and the access token stays in memory.
 */
export interface StoredSession {
  userId: string;
  deviceId: string;
}

export interface TokenStore {
  load(): Promise<StoredSession | null>;
  save(session: StoredSession): Promise<void>;
  clear(): Promise<void>;
}

const STORE = 'session';
const KEY = 'current';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function open(factory: IDBFactory, name: string): Promise<IDBDatabase> {
  const req = factory.open(name, 1);
  req.onupgradeneeded = () => {
    if (!req.result.objectStoreNames.contains(STORE)) {
      req.result.createObjectStore(STORE);
    }
  };
  return request(req);
}

function isStoredSession(value: unknown): value is StoredSession {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.userId === 'string' && typeof v.deviceId === 'string';
}

/** The browser's store: database `parley` (or `name`), object store `session`. */
export function indexedDbTokenStore(factory: IDBFactory, name = 'parley'): TokenStore {
  let db: Promise<IDBDatabase> | null = null;
  const database = () => (db ??= open(factory, name));
  async function run<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>) {
    const tx = (await database()).transaction(STORE, mode);
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
    const result = request(work(tx.objectStore(STORE)));
    await Promise.all([result, done]);
    return result;
  }
  return {
    async load() {
      const value = await run('readonly', (store) => store.get(KEY));
      return isStoredSession(value) ? { userId: value.userId, deviceId: value.deviceId } : null;
    },
    async save(session) {
      // Only the ids: a refresh token an older version kept here is dropped with the rest.
      await run('readwrite', (store) =>
        store.put({ userId: session.userId, deviceId: session.deviceId }, KEY),
      );
    },
    async clear() {
      await run('readwrite', (store) => store.delete(KEY));
    },
  };
}

/** For tests, and browsers without IndexedDB (private modes): the session lasts one page load. */
export function memoryTokenStore(initial: StoredSession | null = null): TokenStore {
  let value = initial;
  return {
    load: async () => value,
    save: async (session) => {
      value = { ...session };
    },
    clear: async () => {
      value = null;
    },
  };
}
