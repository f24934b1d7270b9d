import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppController } from './controller';
import type { CryptoCore, PendingKeyChange } from './crypto';
import type { DeviceLock } from './deviceLock';
import type { ObjectUrls } from './mediaLoader';
import { selectKeyChanges } from './store';
import type { Thumbnail, ThumbnailMaker } from './thumbnails';
import { MISSING_KEY_REASON, REPLAY_REASON } from './decryption';
import { FakeApi } from './testing/fakeApi';
import { fakeCore } from './testing/fakeCore';
import { FakeSocket, connectFake } from './testing/fakeSocket';
import { ALICE, CHAT, ME, detail, message, summary, user } from './testing/fixtures';
import { memoryTokenStore, type TokenStore } from './tokenStore';

const NOT_LOADED = 'the encryption core did not load: 404';

function setUp(
  options: {
    crypto?: CryptoCore;
    store?: TokenStore;
    api?: FakeApi;
    deviceLock?: DeviceLock;
    objectUrls?: ObjectUrls;
    thumbnail?: ThumbnailMaker;
  } = {},
) {
  const api = options.api ?? new FakeApi();
  api.users.set(ME, { ...user(ME, 'Me'), email: 'me@example.org', password: 'password1' });
  api.users.set(ALICE, { ...user(ALICE, 'Alice'), email: 'alice@example.org', password: 'x' });
  const store = options.store ?? memoryTokenStore();
  const controller = new AppController({
    baseUrl: 'http://api.test',
    tokenStore: store,
    crypto: options.crypto ?? fakeCore(),
    connect: connectFake,
    fetch: api.fetch,
    random: () => 0,
    newId: () => 'client-1',
    ...(options.deviceLock ? { deviceLock: options.deviceLock } : {}),
    ...(options.objectUrls ? { objectUrls: options.objectUrls } : {}),
    thumbnail: options.thumbnail ?? (async () => null),
  });
  return { api, store, controller };
}

function withDirectChat(api: FakeApi) {
  api.chats.set(CHAT, summary(CHAT, { last_seq: 3, last_message: message(3), unread_count: 2 }));
  api.details.set(
    CHAT,
    detail(CHAT, [
      [ME, 1],
      [ALICE, 3],
    ]),
  );
  api.messages.set(CHAT, [message(1), message(2), message(3)]);
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.reset();
});
afterEach(() => vi.useRealTimers());

describe('AppController when the crypto core fails to load', () => {
  it('registers, loads the chats, opens the socket, and says encryption is unavailable', async () => {
    const { api, store, controller } = setUp({ crypto: fakeCore({ failOpen: NOT_LOADED }) });
    withDirectChat(api);
    await controller.register('New', 'new@example.org', 'password1');
    await vi.advanceTimersByTimeAsync(0);
    const state = controller.state;
    expect(state.auth.status).toBe('signed_in');
    expect(state.chatsLoaded).toBe(true);
    expect(state.e2ee).toEqual({ status: 'unavailable', reason: NOT_LOADED });
    // Nothing was published on the device's behalf.
    expect(api.callsTo('PUT', /^\/keys\/devices\//)).toHaveLength(0);
    expect(FakeSocket.last().protocols).toEqual(['bearer', 'access-1']);
    expect(await store.load()).toEqual({ userId: expect.any(String), deviceId: api.deviceId });
    expect(api.refreshCookie).toBe('refresh-1');
    // The direct chat's title comes from its other member.
    expect(state.users[ALICE]?.name).toBe('Alice');
  });

  it('shows messages as encrypted and fails to send without faking encryption', async () => {
    const { api, controller } = setUp({ crypto: fakeCore({ failOpen: NOT_LOADED }) });
    withDirectChat(api);
    await controller.login('me@example.org', 'password1');
    await controller.openChat(CHAT);
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.state.bodies[message(3).id]).toEqual({
      status: 'error',
      reason: NOT_LOADED,
    });
    await controller.sendText(CHAT, 'hello');
    const pending = controller.state.messages[CHAT]?.pending[0];
    expect(pending).toMatchObject({ status: 'failed', error: NOT_LOADED, text: 'hello' });
    expect(api.callsTo('POST', `/chats/${CHAT}/messages`)).toHaveLength(0);
  });

  it('leaves to-device messages queued on the server', async () => {
    const { api, controller } = setUp({ crypto: fakeCore({ failOpen: NOT_LOADED }) });
    await controller.login('me@example.org', 'password1');
    FakeSocket.last().open();
    FakeSocket.last().receive({
      type: 'to_device',
      data: {
        id: '0190a3a0-0000-7000-8000-000000000007',
        sender_id: ALICE,
        sender_device_id: '0190a3a0-0000-7000-8000-000000000008',
        ciphertext: '{}',
        created_at: '2026-11-28T10:03:00Z',
      },
      cursor: null,
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(api.callsTo('POST', '/to-device/ack')).toHaveLength(0);
  });
});

describe('AppController', () => {
  it('restores a session with the refresh cookie', async () => {
    const first = setUp();
    await first.controller.login('me@example.org', 'password1');
    first.controller.dispose();
    const { controller } = setUp({ api: first.api, store: first.store });
    await controller.start();
    expect(controller.state.auth).toMatchObject({ status: 'signed_in', userId: ME });
    expect(first.api.callsTo('POST', '/auth/refresh-cookie')).toHaveLength(1);
    expect(first.api.refreshCookie).toBe('refresh-2');
  });

  it('stays signed in when the chat list fails, and loads it once the socket opens', async () => {
    const { api, controller } = setUp();
    withDirectChat(api);
    let failures = 1;
    api.route('GET', /^\/chats$/, () =>
      failures-- > 0
        ? Response.json({ error: { code: 'unavailable', message: 'down' } }, { status: 503 })
        : Response.json({ items: [...api.chats.values()], next_cursor: null }),
    );
    await controller.login('me@example.org', 'password1');
    expect(controller.state.auth.status).toBe('signed_in');
    expect(controller.state.chatsLoaded).toBe(false);
    FakeSocket.last().open();
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.state.chatsLoaded).toBe(true);
    expect(Object.keys(controller.state.chats)).toEqual([CHAT]);
  });

  it('shows the login form when nothing is stored', async () => {
    const { controller } = setUp();
    await controller.start();
    expect(controller.state.auth.status).toBe('signed_out');
  });

  it('publishes the device keys the core made', async () => {
    const crypto = fakeCore();
    const { api, controller } = setUp({ crypto });
    await controller.login('me@example.org', 'password1');
    await vi.advanceTimersByTimeAsync(0);
    expect(api.callsTo('PUT', `/keys/devices/${api.deviceId}`)[0]?.body).toEqual({
      identity_keys: { curve25519: 'c', ed25519: 'e', signature: 's' },
    });
    expect(crypto.log).toEqual([`open ${api.deviceId}`, 'published']);
    // A new device has nothing queued yet: the queue is read on later starts and reconnects.
    expect(api.callsTo('GET', '/to-device')).toHaveLength(0);
    expect(controller.state.e2ee.status).toBe('ready');
  });

  it('opens a chat at its newest page, marks it read and pages back', async () => {
    const { api, controller } = setUp({ crypto: fakeCore() });
    withDirectChat(api);
    api.messages.set(
      CHAT,
      Array.from({ length: 120 }, (_, i) => message(i + 1)),
    );
    api.chats.set(CHAT, summary(CHAT, { last_seq: 120, unread_count: 5 }));
    await controller.login('me@example.org', 'password1');
    await controller.openChat(CHAT);
    await vi.advanceTimersByTimeAsync(0);
    let chat = controller.state.messages[CHAT]!;
    expect(chat.items.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 71 + i));
    expect(chat.olderCursor).toBe('71');
    expect(controller.state.bodies[message(120).id]).toEqual({ status: 'ok', text: 'plain 120' });
    expect(api.callsTo('POST', `/chats/${CHAT}/mark-read`)[0]?.body).toEqual({ up_to_seq: 120 });
    expect(controller.state.chats[CHAT]?.unread_count).toBe(0);

    await controller.loadOlder(CHAT);
    chat = controller.state.messages[CHAT]!;
    expect(api.callsTo('GET', `/chats/${CHAT}/messages`).at(-1)?.query.get('before_seq')).toBe(
      '71',
    );
    expect(chat.items[0]?.seq).toBe(21);
  });

  it('shows an opened chat’s page together with its decrypted bodies, in one update', async () => {
    const { api, controller } = setUp({ crypto: fakeCore() });
    withDirectChat(api);
    api.messages.set(
      CHAT,
      Array.from({ length: 80 }, (_, i) => message(i + 1)),
    );
    await controller.login('me@example.org', 'password1');
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.state.e2ee.status).toBe('ready');
    const updates: number[] = [];
    const unsubscribe = controller.store.subscribe(() => {
      const page = controller.state.messages[CHAT]?.items ?? [];
      updates.push(page.filter((m) => controller.state.bodies[m.id]?.status === 'ok').length);
    });
    await controller.openChat(CHAT);
    await vi.advanceTimersByTimeAsync(0);
    unsubscribe();
    // No update ever showed the page without its bodies: the first with messages has all 50.
    expect(updates.find((decrypted) => decrypted > 0)).toBe(50);
    expect(updates.filter((decrypted) => decrypted > 0 && decrypted < 50)).toEqual([]);
  });

  it('sends a message: devices, room keys, then the ciphertext', async () => {
    const crypto = fakeCore();
    const { api, controller } = setUp({ crypto });
    withDirectChat(api);
    await controller.login('me@example.org', 'password1');
    await vi.advanceTimersByTimeAsync(0);
    const before = api.calls.length;
    await controller.sendText(CHAT, '  hello  ');
    const order = api.calls
      .slice(before)
      .map((c) => `${c.method} ${c.path}`)
      .filter((c) => /keys|to-device|chats/.test(c));
    expect(order).toEqual([
      'GET /to-device',
      `GET /chats/${CHAT}`,
      'POST /keys/query',
      'POST /keys/claim',
      'POST /to-device',
      `POST /chats/${CHAT}/messages`,
    ]);
    const sent = api.callsTo('POST', `/chats/${CHAT}/messages`)[0]?.body;
    expect(sent).toEqual({
      client_msg_id: 'client-1',
      algorithm: 'parley.megolm.v1',
      ciphertext: btoa(JSON.stringify({ type: 'text', body: 'hello' })),
    });
    const chat = controller.state.messages[CHAT]!;
    expect(chat.pending).toEqual([]);
    const mine = chat.items.at(-1)!;
    expect(controller.state.bodies[mine.id]).toEqual({ status: 'ok', text: 'hello' });
  });

  it('applies frames: new messages, typing, and acknowledges handled room keys', async () => {
    const { api, controller } = setUp({ crypto: fakeCore() });
    withDirectChat(api);
    await controller.login('me@example.org', 'password1');
    await vi.advanceTimersByTimeAsync(0);
    const socket = FakeSocket.last();
    socket.open();
    socket.receive({ type: 'typing', data: { chat_id: CHAT, user_id: ALICE }, cursor: null });
    expect(Object.keys(controller.state.typing[CHAT] ?? {})).toEqual([ALICE]);
    socket.receive({ type: 'message.created', data: message(4), cursor: '10' });
    expect(controller.state.chats[CHAT]).toMatchObject({ last_seq: 4, unread_count: 3 });
    expect(controller.state.typing[CHAT]).toEqual({});
    socket.receive({
      type: 'to_device',
      data: {
        id: '0190a3a0-0000-7000-8000-000000000007',
        sender_id: ALICE,
        sender_device_id: '0190a3a0-0000-7000-8000-000000000008',
        ciphertext: '{}',
        created_at: '2026-11-28T10:03:00Z',
      },
      cursor: null,
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(api.callsTo('POST', '/to-device/ack')[0]?.body).toEqual({
      ids: ['0190a3a0-0000-7000-8000-000000000007'],
    });
  });

  it('catches up the open chat after a reconnect', async () => {
    const { api, controller } = setUp({ crypto: fakeCore() });
    withDirectChat(api);
    await controller.login('me@example.org', 'password1');
    FakeSocket.last().open();
    await controller.openChat(CHAT);
    FakeSocket.last().receive({
      type: 'chat.read',
      data: { chat_id: CHAT, user_id: ALICE, up_to_seq: 3 },
      cursor: '20',
    });
    FakeSocket.last().serverClose(1006);
    api.messages.set(CHAT, [...api.messages.get(CHAT)!, message(4), message(5)]);
    await vi.advanceTimersByTimeAsync(250);
    expect(FakeSocket.last().url).toBe('ws://api.test/ws?cursor=20');
    FakeSocket.last().open();
    await vi.advanceTimersByTimeAsync(0);
    expect(api.callsTo('GET', `/chats/${CHAT}/messages`).at(-1)?.query.get('after_seq')).toBe('3');
    expect(controller.state.messages[CHAT]!.items.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('catches up after a reconnect that had no cursor to replay from', async () => {
    const { api, controller } = setUp({ crypto: fakeCore() });
    withDirectChat(api);
    await controller.login('me@example.org', 'password1');
    FakeSocket.last().open();
    await controller.openChat(CHAT);
    FakeSocket.last().serverClose(1006);
    api.messages.set(CHAT, [...api.messages.get(CHAT)!, message(4)]);
    api.chats.set(CHAT, summary(CHAT, { last_seq: 4, last_message: message(4), unread_count: 1 }));
    await vi.advanceTimersByTimeAsync(250);
    expect(FakeSocket.last().url).toBe('ws://api.test/ws');
    FakeSocket.last().open();
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.state.messages[CHAT]!.items.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(controller.state.chats[CHAT]?.last_seq).toBe(4);
  });

  it('signs out when the server revokes the session', async () => {
    const { api, store, controller } = setUp();
    await controller.login('me@example.org', 'password1');
    const socket = FakeSocket.last();
    socket.open();
    api.refreshTokens.clear();
    socket.receive({
      type: 'error',
      data: { code: 'session_revoked', message: 'signed out' },
      cursor: null,
    });
    socket.serverClose(4001, 'session revoked');
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.state.auth).toMatchObject({ status: 'signed_out' });
    expect(await store.load()).toBeNull();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.created).toHaveLength(1);
  });

  it('searches people and starts a direct chat', async () => {
    const { api, controller } = setUp();
    await controller.login('me@example.org', 'password1');
    const found = await controller.searchUsers('ali');
    expect(found.map((u) => u.name)).toEqual(['Alice']);
    const chatId = await controller.startDirectChat(ALICE);
    expect(api.callsTo('POST', '/chats')[0]?.body).toEqual({ type: 'direct', member_ids: [ALICE] });
    expect(controller.state.chats[chatId]).toBeDefined();
    const group = await controller.createGroup(' Team ', [ALICE]);
    expect(api.callsTo('POST', '/chats')[1]?.body).toEqual({
      type: 'group',
      name: 'Team',
      member_ids: [ALICE],
    });
    expect(controller.state.chats[group]?.name).toBe('Team');
  });

  it('sends typing at most every 2.5 s per chat', async () => {
    const { controller } = setUp();
    await controller.login('me@example.org', 'password1');
    const socket = FakeSocket.last();
    socket.open();
    controller.notifyTyping(CHAT);
    controller.notifyTyping(CHAT);
    await vi.advanceTimersByTimeAsync(2_500);
    controller.notifyTyping(CHAT);
    expect(socket.sent.filter((f) => (f as { type: string }).type === 'typing')).toHaveLength(2);
  });

  it('logs out: server, store, socket and device state', async () => {
    const crypto = fakeCore();
    const { api, store, controller } = setUp({ crypto });
    await controller.login('me@example.org', 'password1');
    const socket = FakeSocket.last();
    socket.open();
    await controller.logout();
    expect(api.callsTo('POST', '/auth/logout')).toHaveLength(1);
    expect(await store.load()).toBeNull();
    expect(socket.closedWith?.code).toBe(1000);
    expect(crypto.log.at(-1)).toBe('forget');
    expect(controller.state.auth.status).toBe('signed_out');
  });
});

/** Signed in, with the chat open and its message 3 waiting for a room key. */
async function openWaitingForKey() {
  const crypto = fakeCore();
  const { api, controller } = setUp({ crypto });
  withDirectChat(api);
  crypto.missingKeys.add(message(3).id);
  await controller.login('me@example.org', 'password1');
  await controller.openChat(CHAT);
  await vi.advanceTimersByTimeAsync(0);
  expect(controller.state.bodies[message(3).id]).toEqual({ status: 'waiting' });
  return { crypto, api, controller };
}

describe('AppController encryption', () => {
  const toDevice = (id: string) => ({
    type: 'to_device' as const,
    data: {
      id,
      sender_id: ALICE,
      sender_device_id: '0190a3a0-0000-7000-8000-000000000008',
      ciphertext: '{}',
      created_at: '2026-11-28T10:03:00Z',
    },
    cursor: null,
  });

  it('saves and acknowledges a burst of room keys once, and retries waiting messages once', async () => {
    const { crypto, api, controller } = await openWaitingForKey();
    crypto.missingKeys.clear();
    const savesBefore = crypto.log.filter((entry) => entry === 'save').length;
    const ids = Array.from(
      { length: 30 },
      (_, i) => `0190a3a0-0000-7000-8000-${String(100 + i).padStart(12, '0')}`,
    );
    FakeSocket.last().open();
    for (const id of ids) FakeSocket.last().receive(toDevice(id));
    await vi.advanceTimersByTimeAsync(0);
    const acks = api.callsTo('POST', '/to-device/ack');
    expect(acks.map((call) => (call.body as { ids: string[] }).ids)).toEqual([ids]);
    expect(crypto.log.filter((entry) => entry === 'save').length - savesBefore).toBe(1);
    // Every key was decrypted before the one save, and the save came before the ack.
    expect(crypto.log.lastIndexOf('save')).toBeGreaterThan(
      crypto.log.indexOf(`to-device ${ids.at(-1)}`),
    );
    expect(controller.state.bodies[message(3).id]).toEqual({ status: 'ok', text: 'plain 3' });
  });

  it('shows a message as waiting for its key, and decrypts it when the key arrives', async () => {
    const { crypto, api, controller } = await openWaitingForKey();
    // The queue was read at once to look for the key.
    expect(api.callsTo('GET', '/to-device').length).toBeGreaterThan(0);
    crypto.missingKeys.clear();
    FakeSocket.last().open();
    FakeSocket.last().receive(toDevice('0190a3a0-0000-7000-8000-000000000007'));
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.state.bodies[message(3).id]).toEqual({ status: 'ok', text: 'plain 3' });
    // The key was saved before it was acknowledged.
    const log = crypto.log;
    expect(log.indexOf('save')).toBeGreaterThan(
      log.indexOf('to-device 0190a3a0-0000-7000-8000-000000000007'),
    );
  });

  it('says a message cannot be decrypted only after looking for its key twice', async () => {
    const { crypto, api, controller } = await openWaitingForKey();
    await vi.advanceTimersByTimeAsync(3000);
    expect(controller.state.bodies[message(3).id]).toEqual({
      status: 'error',
      reason: MISSING_KEY_REASON,
    });
    expect(api.callsTo('GET', '/to-device').length).toBeGreaterThanOrEqual(2);
    // A key for the chat that comes later still helps.
    crypto.missingKeys.clear();
    FakeSocket.last().open();
    FakeSocket.last().receive(toDevice('0190a3a0-0000-7000-8000-000000000009'));
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.state.bodies[message(3).id]).toEqual({ status: 'ok', text: 'plain 3' });
  });

  it('surfaces changed identity keys in the chat and adopts them only when accepted', async () => {
    const crypto = fakeCore();
    const change: PendingKeyChange = {
      user_id: ALICE,
      device_id: '0190a3a0-0000-7000-8000-000000000008',
      display_name: 'phone',
      trusted_ed25519: 'old',
      presented_ed25519: 'new',
    };
    crypto.keyChanges = [change];
    const { api, controller } = setUp({ crypto });
    withDirectChat(api);
    await controller.login('me@example.org', 'password1');
    await controller.openChat(CHAT);
    await vi.advanceTimersByTimeAsync(0);
    expect(selectKeyChanges(controller.state, CHAT)).toEqual([change]);
    // Opening the chat re-read its members' devices.
    expect(crypto.log).toContain(`observe ${ALICE}`);
    expect(await controller.safetyNumber(ALICE)).toBe('12345 67890');
    await controller.acceptKeyChange(change);
    expect(crypto.log).toContain(`accept ${ALICE}/${change.device_id}`);
    expect(controller.state.keyChanges).toEqual([]);
  });

  it('carries a photo’s thumbnail inside the message, and shows it to the reader', async () => {
    const thumbnail: Thumbnail = {
      content_type: 'image/jpeg',
      width: 4,
      height: 3,
      data: btoa('jpeg'),
    };
    const made: string[] = [];
    const { api, controller } = setUp({
      thumbnail: async (file, contentType) => {
        made.push(`${(file as File).name} ${contentType}`);
        return thumbnail;
      },
    });
    withDirectChat(api);
    await controller.login('me@example.org', 'password1');
    await vi.advanceTimersByTimeAsync(0);
    const photo = new File([new Uint8Array([1, 2, 3])], 'cat.png', { type: 'image/png' });
    await controller.sendFile(CHAT, photo);
    expect(made).toEqual(['cat.png image/png']);
    const sent = api.callsTo('POST', `/chats/${CHAT}/messages`)[0]?.body as { ciphertext: string };
    expect(JSON.parse(atob(sent.ciphertext))).toMatchObject({ type: 'file', thumbnail });
    const mine = controller.state.messages[CHAT]!.items.at(-1)!;
    expect(controller.state.bodies[mine.id]).toMatchObject({ status: 'ok', thumbnail });
  });

  it('sends a file without a thumbnail when none can be made', async () => {
    const { api, controller } = setUp({
      thumbnail: async () => {
        throw new Error('cannot decode');
      },
    });
    withDirectChat(api);
    await controller.login('me@example.org', 'password1');
    await vi.advanceTimersByTimeAsync(0);
    await controller.sendFile(
      CHAT,
      new File([new Uint8Array([1])], 'x.mp4', { type: 'video/mp4' }),
    );
    const sent = api.callsTo('POST', `/chats/${CHAT}/messages`)[0]?.body as { ciphertext: string };
    const content = JSON.parse(atob(sent.ciphertext)) as Record<string, unknown>;
    expect(content.type).toBe('file');
    expect('thumbnail' in content).toBe(false);
  });

  it('sends a photo: encrypted bytes uploaded, then a file message naming the upload', async () => {
    const crypto = fakeCore();
    const created: Blob[] = [];
    const objectUrls: ObjectUrls = {
      create: (blob) => {
        created.push(blob);
        return `blob:test/${created.length}`;
      },
      revoke: () => undefined,
    };
    const { api, controller } = setUp({ crypto, objectUrls });
    withDirectChat(api);
    await controller.login('me@example.org', 'password1');
    await vi.advanceTimersByTimeAsync(0);
    const photo = new File([new Uint8Array([1, 2, 3, 4])], 'cat.png', { type: 'image/png' });
    await controller.sendFile(CHAT, photo, ' a cat ');
    const uploaded = api.callsTo('POST', '/media')[0]?.body as Uint8Array;
    expect([...uploaded]).toEqual([1 ^ 0x5a, 2 ^ 0x5a, 3 ^ 0x5a, 4 ^ 0x5a]);
    const sent = api.callsTo('POST', `/chats/${CHAT}/messages`)[0]?.body as {
      media_ids: string[];
      ciphertext: string;
    };
    const mediaId = '00000000-0000-4000-8000-00000000a001';
    expect(sent.media_ids).toEqual([mediaId]);
    const content = JSON.parse(atob(sent.ciphertext)) as {
      type: string;
      body: string;
      file: object;
    };
    expect(content).toMatchObject({
      type: 'file',
      body: 'a cat',
      file: { media_id: mediaId, name: 'cat.png', content_type: 'image/png' },
    });
    const mine = controller.state.messages[CHAT]!.items.at(-1)!;
    expect(controller.state.bodies[mine.id]).toMatchObject({ status: 'ok', text: 'a cat' });
    expect(controller.state.messages[CHAT]!.pending).toEqual([]);
    // The sender shows its own file without downloading it.
    expect(controller.state.media[mediaId]).toEqual({ status: 'ready', url: 'blob:test/1' });
    expect(created[0]).toBe(photo);
  });

  it('waits while another tab holds the device, leaving to-device messages queued', async () => {
    const crypto = fakeCore();
    const deviceLock: DeviceLock = {
      acquire: (onWaiting) => {
        onWaiting();
        return new Promise(() => undefined);
      },
    };
    const { api, controller } = setUp({ crypto, deviceLock });
    await controller.login('me@example.org', 'password1');
    FakeSocket.last().open();
    FakeSocket.last().receive(toDevice('0190a3a0-0000-7000-8000-000000000007'));
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.state.e2ee.status).toBe('waiting');
    expect(crypto.log).toEqual([]);
    expect(api.callsTo('POST', '/to-device/ack')).toHaveLength(0);
    await controller.sendText(CHAT, 'hello');
    expect(controller.state.messages[CHAT]?.pending[0]?.status).toBe('failed');
  });

  it('tops up one-time keys when the server says they run low', async () => {
    const crypto = fakeCore();
    const { api, controller } = setUp({ crypto });
    await controller.login('me@example.org', 'password1');
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.last().open();
    FakeSocket.last().receive({
      type: 'one_time_keys.low',
      data: { device_id: api.deviceId, remaining: 3 },
      cursor: null,
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(crypto.log).toContain('replenish 3');
    expect(api.callsTo('PUT', `/keys/devices/${api.deviceId}`)).toHaveLength(2);
  });

  it('refuses a message that replays an earlier one under another id', async () => {
    const crypto = fakeCore();
    const { api, controller } = setUp({ crypto });
    withDirectChat(api);
    // Message 3 decrypts to the same session and index as message 2.
    crypto.messageIndex = (m) => (m.seq === 3 ? 2 : m.seq);
    await controller.login('me@example.org', 'password1');
    await controller.openChat(CHAT);
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.state.bodies[message(2).id]).toEqual({ status: 'ok', text: 'plain 2' });
    expect(controller.state.bodies[message(3).id]).toEqual({
      status: 'error',
      reason: REPLAY_REASON,
    });
  });
});
