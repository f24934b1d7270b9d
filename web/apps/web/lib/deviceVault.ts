/**
 * Where this device's end-to-end encryption state lives between page loads.
 *
 * The client core saves its whole state (every private key, Olm and Megolm session, the trust
 * store) as one blob encrypted under a 32-byte state key (`Device.save(stateKey)`). That state
 * key is kept only wrapped: AES-GCM under a WebCrypto key created **non-extractable**, so the
 * page can use it but never read it, and IndexedDB stores the `CryptoKey` object itself
 * (structured clone), never its bytes. The wrapped state key names its device in the AES-GCM
 * associated data, so a record moved to another device id does not unwrap.
 *
 * IndexedDB database `parley-device`, object store `device`: `wrapping-key` (the `CryptoKey`)
 * and `current` ({@link DeviceRecord}). Nothing goes to `localStorage`. {@link DeviceVault.wipe}
 * (logout) deletes both records and then the database.
 */

export const VAULT_DATABASE = 'parley-device';
const STORE = 'device';
const WRAPPING_KEY = 'wrapping-key';
const CURRENT = 'current';
const STATE_KEY_BYTES = 32;

/** What the vault keeps for the signed-in device. */
interface DeviceRecord {
  userId: string;
  deviceId: string;
  /** The state key, AES-GCM encrypted under the wrapping key. */
  wrappedStateKey: Uint8Array;
  iv: Uint8Array;
  /** `Device.save(stateKey)`, or `null` before the first save. */
  state: Uint8Array | null;
}

/** The device's state key, and its saved state if there is one. */
export interface OpenedDevice {
  stateKey: Uint8Array;
  state: Uint8Array | null;
}

export interface DeviceVault {
  /**
   * The stored device `(userId, deviceId)`: its unwrapped state key and its saved state. For a
   * device not stored yet (anything stored for another device is wiped first), a fresh state key
   * is made, wrapped and stored, and `state` is `null`.
   */
  open(userId: string, deviceId: string): Promise<OpenedDevice>;
  /** Replaces the saved state of the opened device. */
  save(state: Uint8Array): Promise<void>;
  /** Deletes everything: the state, the wrapped state key and the wrapping key. */
  wipe(): Promise<void>;
}

/** The stored state key could not be recovered: the device's keys are lost on this browser. */
export class DeviceStateLost extends Error {
  constructor(reason: string) {
    super(`this device's encryption keys could not be read (${reason}); sign out and in again`);
    this.name = 'DeviceStateLost';
  }
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function transactionDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

function isRecord(value: unknown): value is DeviceRecord {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.userId === 'string' &&
    typeof v.deviceId === 'string' &&
    v.wrappedStateKey instanceof Uint8Array &&
    v.iv instanceof Uint8Array &&
    (v.state === null || v.state instanceof Uint8Array)
  );
}

function isCryptoKey(value: unknown): value is CryptoKey {
  return (
    !!value &&
    typeof value === 'object' &&
    'algorithm' in value &&
    'usages' in value &&
    'extractable' in value
  );
}

const associatedData = (userId: string, deviceId: string) =>
  new TextEncoder().encode(`parley-state-key/${userId}/${deviceId}`);

/** The vault in IndexedDB (`factory`), wrapping with WebCrypto (`subtle`). */
export function indexedDbDeviceVault(
  factory: IDBFactory,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
  random: (bytes: Uint8Array<ArrayBuffer>) => void = (bytes) =>
    void globalThis.crypto.getRandomValues(bytes),
  name = VAULT_DATABASE,
): DeviceVault {
  let db: Promise<IDBDatabase> | null = null;
  let opened: { userId: string; deviceId: string } | null = null;

  function database(): Promise<IDBDatabase> {
    db ??= (() => {
      const req = factory.open(name, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
      };
      return request(req).then((connection) => {
        // Another tab deleting the database (its logout) must not be blocked by this one.
        connection.onversionchange = () => {
          connection.close();
          db = null;
        };
        return connection;
      });
    })();
    return db;
  }

  async function get(key: string): Promise<unknown> {
    const tx = (await database()).transaction(STORE, 'readonly');
    const [value] = await Promise.all([
      request(tx.objectStore(STORE).get(key)),
      transactionDone(tx),
    ]);
    return value;
  }

  async function put(entries: [string, unknown][]): Promise<void> {
    const tx = (await database()).transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    for (const [key, value] of entries) store.put(value, key);
    await transactionDone(tx);
  }

  async function clear(): Promise<void> {
    const tx = (await database()).transaction(STORE, 'readwrite');
    tx.objectStore(STORE).clear();
    await transactionDone(tx);
  }

  async function create(userId: string, deviceId: string): Promise<OpenedDevice> {
    await clear();
    const wrappingKey = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, [
      'encrypt',
      'decrypt',
    ]);
    const stateKey = new Uint8Array(STATE_KEY_BYTES);
    random(stateKey);
    const iv = new Uint8Array(12);
    random(iv);
    const wrapped = await subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: associatedData(userId, deviceId) },
      wrappingKey,
      stateKey,
    );
    const record: DeviceRecord = {
      userId,
      deviceId,
      wrappedStateKey: new Uint8Array(wrapped),
      iv,
      state: null,
    };
    await put([
      [WRAPPING_KEY, wrappingKey],
      [CURRENT, record],
    ]);
    return { stateKey, state: null };
  }

  return {
    async open(userId, deviceId) {
      const record = await get(CURRENT);
      if (!isRecord(record) || record.userId !== userId || record.deviceId !== deviceId) {
        const created = await create(userId, deviceId);
        opened = { userId, deviceId };
        return created;
      }
      const wrappingKey = await get(WRAPPING_KEY);
      if (!isCryptoKey(wrappingKey)) throw new DeviceStateLost('the wrapping key is missing');
      let stateKey: Uint8Array;
      try {
        stateKey = new Uint8Array(
          await subtle.decrypt(
            {
              name: 'AES-GCM',
              iv: record.iv as Uint8Array<ArrayBuffer>,
              additionalData: associatedData(userId, deviceId),
            },
            wrappingKey,
            record.wrappedStateKey as Uint8Array<ArrayBuffer>,
          ),
        );
      } catch {
        throw new DeviceStateLost('the state key does not unwrap');
      }
      if (stateKey.length !== STATE_KEY_BYTES) throw new DeviceStateLost('bad state key');
      opened = { userId, deviceId };
      return { stateKey, state: record.state };
    },

    async save(state) {
      if (!opened) throw new Error('no device is open');
      const { userId, deviceId } = opened;
      let tx: IDBTransaction;
      try {
        tx = (await database()).transaction(STORE, 'readwrite');
      } catch {
        throw new Error('the device was signed out: its state is no longer kept');
      }
      const store = tx.objectStore(STORE);
      // Read and write in one transaction: a logout (wipe) in between is never undone by it.
      const read = store.get(CURRENT);
      read.onsuccess = () => {
        const record: unknown = read.result;
        if (isRecord(record) && record.userId === userId && record.deviceId === deviceId) {
          store.put({ ...record, state }, CURRENT);
        } else {
          tx.abort();
        }
      };
      try {
        await transactionDone(tx);
      } catch {
        throw new Error('the device was signed out: its state is no longer kept');
      }
    },

    async wipe() {
      opened = null;
      try {
        await clear();
      } finally {
        const connection = await db?.catch(() => null);
        connection?.close();
        db = null;
        await new Promise<void>((resolve) => {
          const req = factory.deleteDatabase(name);
          req.onsuccess = () => resolve();
          req.onerror = () => resolve();
          // Another tab still has it open: the records are already cleared.
          req.onblocked = () => resolve();
        });
      }
    },
  };
}

/** For tests and browsers without IndexedDB: the state lasts one page load. */
export function memoryDeviceVault(
  random: (bytes: Uint8Array) => void = (bytes) => void globalThis.crypto.getRandomValues(bytes),
): DeviceVault & {
  stored(): { userId: string; deviceId: string; state: Uint8Array | null } | null;
} {
  let record: {
    userId: string;
    deviceId: string;
    stateKey: Uint8Array;
    state: Uint8Array | null;
  } | null = null;
  return {
    async open(userId, deviceId) {
      if (!record || record.userId !== userId || record.deviceId !== deviceId) {
        const stateKey = new Uint8Array(STATE_KEY_BYTES);
        random(stateKey);
        record = { userId, deviceId, stateKey, state: null };
      }
      return { stateKey: record.stateKey, state: record.state };
    },
    async save(state) {
      if (!record) throw new Error('no device is open');
      record.state = state;
    },
    async wipe() {
      record = null;
    },
    stored: () =>
      record ? { userId: record.userId, deviceId: record.deviceId, state: record.state } : null,
  };
}
