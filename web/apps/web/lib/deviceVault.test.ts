import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import {
  DeviceStateLost,
  indexedDbDeviceVault,
  memoryDeviceVault,
  VAULT_DATABASE,
} from './deviceVault';

const USER = '00000000-0000-4000-8000-000000000001';
const DEVICE = '00000000-0000-4000-8000-0000000000d1';
const OTHER_DEVICE = '00000000-0000-4000-8000-0000000000d2';

/** Everything the database holds, by key. */
async function dump(factory: IDBFactory): Promise<Map<string, unknown>> {
  const entries = new Map<string, unknown>();
  const names = (await factory.databases()).map((info) => info.name);
  if (!names.includes(VAULT_DATABASE)) return entries;
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = factory.open(VAULT_DATABASE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  if (!db.objectStoreNames.contains('device')) {
    db.close();
    return entries;
  }
  const store = db.transaction('device').objectStore('device');
  await new Promise<void>((resolve) => {
    const cursor = store.openCursor();
    cursor.onsuccess = () => {
      const at = cursor.result;
      if (!at) return resolve();
      entries.set(String(at.key), at.value);
      at.continue();
    };
  });
  db.close();
  return entries;
}

describe('indexedDbDeviceVault', () => {
  it('keeps the state key only wrapped, by a non-extractable key, and gets it back', async () => {
    const factory = new IDBFactory();
    const vault = indexedDbDeviceVault(factory);
    const created = await vault.open(USER, DEVICE);
    expect(created.state).toBeNull();
    expect(created.stateKey).toHaveLength(32);
    await vault.save(new Uint8Array([1, 2, 3]));

    const stored = await dump(factory);
    const wrappingKey = stored.get('wrapping-key') as CryptoKey;
    expect(wrappingKey.extractable).toBe(false);
    expect(wrappingKey.algorithm).toMatchObject({ name: 'AES-GCM', length: 256 });
    await expect(crypto.subtle.exportKey('raw', wrappingKey)).rejects.toThrow();
    const record = stored.get('current') as Record<string, unknown>;
    expect(record).toMatchObject({
      userId: USER,
      deviceId: DEVICE,
      state: new Uint8Array([1, 2, 3]),
    });
    // The state key is not stored in the clear anywhere.
    const wrapped = record.wrappedStateKey as Uint8Array;
    expect(wrapped).toHaveLength(32 + 16);
    expect(JSON.stringify([...wrapped])).not.toContain(
      JSON.stringify([...created.stateKey]).slice(1, -1),
    );

    // A new page load: another vault object on the same database.
    const reopened = await indexedDbDeviceVault(factory).open(USER, DEVICE);
    expect(reopened.stateKey).toEqual(created.stateKey);
    expect(reopened.state).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('replaces what was kept for another device', async () => {
    const factory = new IDBFactory();
    const vault = indexedDbDeviceVault(factory);
    const first = await vault.open(USER, DEVICE);
    await vault.save(new Uint8Array([9]));
    const second = await indexedDbDeviceVault(factory).open(USER, OTHER_DEVICE);
    expect(second.state).toBeNull();
    expect(second.stateKey).not.toEqual(first.stateKey);
    expect((await dump(factory)).get('current')).toMatchObject({ deviceId: OTHER_DEVICE });
  });

  it('refuses a wrapped key moved to another device id or altered', async () => {
    const factory = new IDBFactory();
    const vault = indexedDbDeviceVault(factory);
    await vault.open(USER, DEVICE);
    await vault.save(new Uint8Array([7]));
    const record = (await dump(factory)).get('current') as Record<string, unknown>;
    const write = async (value: unknown) => {
      const db = await new Promise<IDBDatabase>((resolve) => {
        const req = factory.open(VAULT_DATABASE);
        req.onsuccess = () => resolve(req.result);
      });
      const tx = db.transaction('device', 'readwrite');
      tx.objectStore('device').put(value, 'current');
      await new Promise((resolve) => (tx.oncomplete = resolve));
      db.close();
    };
    const tampered = new Uint8Array(record.wrappedStateKey as Uint8Array);
    tampered[0]! ^= 1;
    await write({ ...record, wrappedStateKey: tampered });
    await expect(indexedDbDeviceVault(factory).open(USER, DEVICE)).rejects.toBeInstanceOf(
      DeviceStateLost,
    );
    // The same wrapped key relabelled as another device does not unwrap either.
    await write({ ...record, deviceId: OTHER_DEVICE });
    await expect(indexedDbDeviceVault(factory).open(USER, OTHER_DEVICE)).rejects.toBeInstanceOf(
      DeviceStateLost,
    );
  });

  it('wipes everything, and a late save does not bring it back', async () => {
    const factory = new IDBFactory();
    const vault = indexedDbDeviceVault(factory);
    await vault.open(USER, DEVICE);
    await vault.save(new Uint8Array([1]));
    const otherTab = indexedDbDeviceVault(factory);
    await otherTab.open(USER, DEVICE);
    await vault.wipe();
    expect((await dump(factory)).size).toBe(0);
    await expect(otherTab.save(new Uint8Array([2]))).rejects.toThrow(/signed out/);
    expect((await dump(factory)).size).toBe(0);
    await expect(vault.save(new Uint8Array([3]))).rejects.toThrow(/no device is open/);
  });
});

describe('memoryDeviceVault', () => {
  it('keeps one device for the page load', async () => {
    const vault = memoryDeviceVault();
    const { stateKey } = await vault.open(USER, DEVICE);
    await vault.save(new Uint8Array([5]));
    expect(await vault.open(USER, DEVICE)).toEqual({ stateKey, state: new Uint8Array([5]) });
    await vault.wipe();
    expect(vault.stored()).toBeNull();
  });
});
