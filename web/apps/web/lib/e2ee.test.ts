/**
 * The web app's encryption glue on the real WebAssembly core (`@parley/core` in Node), between
 * devices that talk through an in-memory server: the same flows the browser runs, with
 * IndexedDB (fake-indexeddb) and WebCrypto (Node's) underneath.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MessageView } from '@parley/sdk';
import { downloadDecrypted, EncryptedUpload, SINGLE_UPLOAD_MAX } from './attachments';
import { createCryptoCore, cryptoErrorCode, type CoreModule, type CryptoCore } from './crypto';
import { indexedDbDeviceVault } from './deviceVault';
import { E2ee } from './e2ee';
import { FakeKeyServer } from './testing/fakeKeyServer';
import { loadCoreInNode } from './testing/nodeCore';

let core: CoreModule;
beforeAll(async () => {
  core = await loadCoreInNode();
});

interface TestDevice {
  userId: string;
  deviceId: string;
  idb: IDBFactory;
  core: CryptoCore;
  e2ee: E2ee;
  roomKeys: string[];
  warnings: string[];
  keyChanges: number;
}

async function device(
  server: FakeKeyServer,
  userId: string,
  deviceId: string = randomUUID(),
  idb = new IDBFactory(),
): Promise<TestDevice> {
  const client = server.client(userId, deviceId);
  const crypto = createCryptoCore({ loadCore: async () => core, vault: indexedDbDeviceVault(idb) });
  const made: TestDevice = {
    userId,
    deviceId,
    idb,
    core: crypto,
    roomKeys: [],
    warnings: [],
    keyChanges: 0,
    e2ee: null as unknown as E2ee,
  };
  made.e2ee = new E2ee({
    client,
    core: crypto,
    listener: {
      onRoomKey: (chatId) => made.roomKeys.push(chatId),
      onWarning: (_chatId, text) => made.warnings.push(text),
      onDeviceReport: (_user, report) => {
        made.keyChanges += report.key_changes.length;
      },
    },
  });
  await crypto.open({ userId, deviceId });
  await made.e2ee.publishKeys(deviceId, 'test');
  return made;
}

async function read(reader: TestDevice, message: MessageView): Promise<string> {
  const { content } = await reader.core.decryptMessage(message);
  return content.type === 'text' ? content.body : `file ${content.file.name}`;
}

const text = (body: string) => ({ type: 'text' as const, body });

/** Byte equality (vitest's deep equality is slow on megabytes). */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

describe('end-to-end encryption on the real core', () => {
  it('exchanges messages both ways, and a second device of the recipient reads them too', async () => {
    const server = new FakeKeyServer();
    const [aliceId, bobId] = [randomUUID(), randomUUID()];
    const alice = await device(server, aliceId);
    const bob = await device(server, bobId);
    const bobLaptop = await device(server, bobId);
    const chat = server.chat([aliceId, bobId]);

    const hello = await alice.e2ee.sendContent(chat, aliceId, text('hello Bob'), 'c1');
    // Before the room key is taken, the message cannot be read — and says why.
    const early = await bob.core.decryptMessage(hello).catch((error: unknown) => error);
    expect(cryptoErrorCode(early)).toBe('missing_room_key');

    await bob.e2ee.drainToDevice();
    await bobLaptop.e2ee.drainToDevice();
    expect(bob.roomKeys).toEqual([chat]);
    expect(await read(bob, hello)).toBe('hello Bob');
    expect(await read(bobLaptop, hello)).toBe('hello Bob');
    expect(await read(alice, hello)).toBe('hello Bob');
    expect(server.toDevice).toEqual([]);

    // Bob answers; his laptop (his own other device) gets his room key as well.
    const reply = await bob.e2ee.sendContent(chat, bobId, text('hi Alice'), 'c2');
    await alice.e2ee.drainToDevice();
    await bobLaptop.e2ee.drainToDevice();
    expect(await read(alice, reply)).toBe('hi Alice');
    expect(await read(bobLaptop, reply)).toBe('hi Alice');
    expect(hello.algorithm).toBe('parley.megolm.v1');

    // The next message reuses the session: no new key is shared.
    const before = server.log.length;
    const again = await alice.e2ee.sendContent(chat, aliceId, text('again'), 'c3');
    const calls = server.log.slice(before).map((entry) => entry.call);
    expect(calls).not.toContain('POST /to-device');
    expect(calls).not.toContain('POST /keys/claim');
    expect(await read(bob, again)).toBe('again');
  });

  it('keeps the keys across a reload (IndexedDB) and goes on over the same Olm session', async () => {
    const server = new FakeKeyServer();
    const [aliceId, bobId] = [randomUUID(), randomUUID()];
    const alice = await device(server, aliceId);
    const bob = await device(server, bobId);
    const chat = server.chat([aliceId, bobId]);
    const first = await alice.e2ee.sendContent(chat, aliceId, text('before the reload'), 'c1');
    await bob.e2ee.drainToDevice();
    await bob.core.close();

    const reloaded = await device(server, bobId, bob.deviceId, bob.idb);
    expect(await read(reloaded, first)).toBe('before the reload');
    const claimsBefore = server.log.filter((entry) => entry.call === 'POST /keys/claim').length;
    const answer = await reloaded.e2ee.sendContent(chat, bobId, text('after it'), 'c2');
    // Bob answers over the Olm session Alice started: nothing to claim.
    expect(server.log.filter((entry) => entry.call === 'POST /keys/claim').length).toBe(
      claimsBefore,
    );
    await alice.e2ee.drainToDevice();
    expect(await read(alice, answer)).toBe('after it');
    // Republishing at start sent the same identity keys (a changed one would be a 409).
    expect(server.devices.get(`${bobId}/${bob.deviceId}`)?.one_time_keys.length).toBeGreaterThan(0);
  });

  it('withholds a device whose identity keys changed, warns, and shares only once accepted', async () => {
    const server = new FakeKeyServer();
    const [aliceId, bobId] = [randomUUID(), randomUUID()];
    const alice = await device(server, aliceId);
    const bob = await device(server, bobId);
    const chat = server.chat([aliceId, bobId]);
    await alice.e2ee.sendContent(chat, aliceId, text('one'), 'c1');

    // The server now presents other (validly self-signed) keys for Bob's device id.
    const impostor = new core.Device(bobId, bob.deviceId);
    const keys = JSON.parse(impostor.keysUpload()) as { identity_keys: unknown };
    const entry = server.devices.get(`${bobId}/${bob.deviceId}`)!;
    entry.identity_keys = keys.identity_keys as typeof entry.identity_keys;

    const queued = server.toDevice.length;
    const two = await alice.e2ee.sendContent(chat, aliceId, text('two'), 'c2');
    expect(alice.keyChanges).toBe(1);
    expect(alice.warnings.join('\n')).toMatch(/keys changed/);
    expect(server.toDevice.length).toBe(queued);
    const pending = await alice.core.pendingKeyChanges();
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ user_id: bobId, device_id: bob.deviceId });
    expect(pending[0]!.presented_ed25519).not.toBe(pending[0]!.trusted_ed25519);
    expect(two.ciphertext).toBeTruthy();

    // Still withheld after a reload of Alice: the pending change is saved.
    await alice.core.close();
    const aliceAgain = await device(server, aliceId, alice.deviceId, alice.idb);
    expect(await aliceAgain.core.pendingKeyChanges()).toHaveLength(1);
    await aliceAgain.core.acceptKeyChange({ user_id: bobId, device_id: bob.deviceId });
    expect(await aliceAgain.core.pendingKeyChanges()).toEqual([]);
    await aliceAgain.e2ee.sendContent(chat, aliceId, text('three'), 'c3');
    expect(server.toDevice.some((item) => item.recipient === `${bobId}/${bob.deviceId}`)).toBe(
      true,
    );
    impostor.free();
  });

  it('reads device lists one by one when the batch is refused, leaving out who is hidden', async () => {
    const server = new FakeKeyServer();
    const [aliceId, bobId, carolId] = [randomUUID(), randomUUID(), randomUUID()];
    const alice = await device(server, aliceId);
    const bob = await device(server, bobId);
    await device(server, carolId);
    const group = server.chat([aliceId, bobId, carolId]);
    server.hidden.add(carolId);
    const message = await alice.e2ee.sendContent(group, aliceId, text('to the group'), 'c1');
    const calls = server.log.filter((entry) => entry.caller === aliceId).map((entry) => entry.call);
    expect(calls).toContain('POST /keys/query');
    expect(calls).toContain(`GET /keys/users/${carolId}`);
    await bob.e2ee.drainToDevice();
    expect(await read(bob, message)).toBe('to the group');
  });

  it('sends photos: encrypted while uploaded (resumed after a cut), verified and decrypted', async () => {
    const server = new FakeKeyServer();
    const [aliceId, bobId] = [randomUUID(), randomUUID()];
    const alice = await device(server, aliceId);
    const bob = await device(server, bobId);
    const chat = server.chat([aliceId, bobId]);
    const aliceClient = server.client(aliceId, alice.deviceId);
    const bobClient = server.client(bobId, bob.deviceId);

    for (const size of [1000, SINGLE_UPLOAD_MAX * 2 + 12_345]) {
      const bytes = new Uint8Array(randomBytes(size));
      const file = new File([bytes], 'beach.png', { type: 'image/png' });
      let cuts = 0;
      server.cutUpload = (offset, length) => (cuts++ === 1 ? Math.floor(length / 3) : null);
      const progress: number[] = [];
      const upload = new EncryptedUpload(aliceClient, alice.core, file, {
        onProgress: ({ sent }) => progress.push(sent),
        sleep: async () => undefined,
      });
      const info = await upload.run();
      server.cutUpload = null;
      expect(info).toMatchObject({ name: 'beach.png', content_type: 'image/png', size });
      expect(progress.at(-1)).toBe(size);
      // The cut chunk was resumed from the offset the server reported.
      const resumed = server.log.some((entry) => entry.call.startsWith('GET /media/uploads/'));
      expect(resumed).toBe(size > SINGLE_UPLOAD_MAX);
      expect(server.media.get(info.media_id)).toHaveLength(size);
      expect(same(server.media.get(info.media_id)!, bytes)).toBe(false);

      const sent = await alice.e2ee.sendContent(
        chat,
        aliceId,
        { type: 'file', file: info, body: 'the beach' },
        `file-${size}`,
        [info.media_id],
      );
      expect(sent.media_ids).toEqual([info.media_id]);
      await bob.e2ee.drainToDevice();
      const { content } = await bob.core.decryptMessage(sent);
      if (content.type !== 'file') throw new Error('expected a file message');
      expect(content.body).toBe('the beach');
      const blob = await downloadDecrypted(bobClient, bob.core, content.file);
      expect(blob.type).toBe('image/png');
      expect(same(new Uint8Array(await blob.arrayBuffer()), bytes)).toBe(true);

      // One flipped bit on the server: nothing is handed out.
      const stored = server.media.get(info.media_id)!;
      stored[size >> 1]! ^= 1;
      const refused = await downloadDecrypted(bobClient, bob.core, content.file).catch(
        (error: unknown) => error,
      );
      expect(cryptoErrorCode(refused)).toBe('attachment_hash_mismatch');
    }
  });

  it('resumes an upload that gave up, where the copy on the server ends', async () => {
    const server = new FakeKeyServer();
    const aliceId = randomUUID();
    const alice = await device(server, aliceId);
    const client = server.client(aliceId, alice.deviceId);
    const bytes = new Uint8Array(randomBytes(SINGLE_UPLOAD_MAX * 3));
    const file = new File([bytes], 'clip.mp4', { type: 'video/mp4' });
    const upload = new EncryptedUpload(client, alice.core, file, { sleep: async () => undefined });
    // The network breaks down during the second chunk, every time, keeping a little of each try.
    let patches = 0;
    server.cutUpload = (_offset, length) => (++patches >= 2 ? Math.min(1000, length) : null);
    await expect(upload.run()).rejects.toThrow(/network error/);
    const kept = [...server.uploads.values()][0]!.reduce((n, chunk) => n + chunk.length, 0);
    expect(kept).toBeGreaterThan(SINGLE_UPLOAD_MAX);

    server.cutUpload = null;
    const info = await upload.run();
    const uploadedChunks = server.log.filter((entry) => entry.call === 'POST /media/uploads');
    expect(uploadedChunks).toHaveLength(1);
    const blob = await downloadDecrypted(client, alice.core, info);
    expect(blob.type).toBe('video/mp4');
    expect(same(new Uint8Array(await blob.arrayBuffer()), bytes)).toBe(true);
  });
});
