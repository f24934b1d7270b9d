/**
 * The app's logic between the UI and the network: it owns the session, the SDK client, the
 * realtime connection and the store, and turns user intents and server frames into actions.
 * Everything it talks to is injected, so tests drive it with a fake `fetch`, socket and crypto
 * core.
 */
import {
  createParleyClient,
  errorDetail,
  type ChatSummary,
  type MessageView,
  type ParleyClient,
  type ServerFrame,
  type UserView,
} from '@parley/sdk';
import { EncryptedUpload, TransferError, type NamedBlob } from './attachments';
import { Calls, type CallsOptions } from './calls/calls';
import { createStore, type Store } from './createStore';
import type { AttachmentInfo, CryptoCore, MessageContent, PendingKeyChange } from './crypto';
import { bodyOf, MessageDecryption } from './decryption';
import type { DeviceLock } from './deviceLock';
import { ApiError, E2ee } from './e2ee';
import { Features, type FeatureOptions } from './features';
import { MediaLoader, type ObjectUrls } from './mediaLoader';
import { browserThumbnail, type Thumbnail, type ThumbnailMaker } from './thumbnails';
import {
  RealtimeConnection,
  type IntervalTimers,
  type SocketFactory,
  type SocketLike,
} from './realtime';
import { AuthError, browserTimers, Session, type LockManagerLike } from './session';
import { initialState, reduce, type Action, type AppState } from './store';
import type { TokenStore } from './tokenStore';

export interface ControllerOptions {
  baseUrl: string;
  tokenStore: TokenStore;
  crypto: CryptoCore;
  connect: SocketFactory;
  fetch?: typeof globalThis.fetch;
  locks?: LockManagerLike | null;
  /** One tab at a time holds the device (`null`: no other tabs to mind, e.g. tests). */
  deviceLock?: DeviceLock | null;
  objectUrls?: ObjectUrls;
  /** The name this device publishes with its keys. */
  deviceName?: string;
  timers?: IntervalTimers;
  now?: () => number;
  random?: () => number;
  newId?: () => string;
  /** Waits between upload attempts (tests pass a fake). */
  sleep?: (ms: number) => Promise<void>;
  /** Makes a photo's or video's thumbnail (default: the browser's canvas). */
  thumbnail?: ThumbnailMaker;
  features?: FeatureOptions;
  /** The browser's WebRTC and media devices (defaults: the page's own). */
  calls?: Partial<Pick<CallsOptions, 'getUserMedia' | 'createPeer' | 'connect' | 'newStream'>>;
}

/** The page's own WebRTC and media devices, looked up only when a call needs them. */
const browserCallMedia: Pick<
  CallsOptions,
  'getUserMedia' | 'createPeer' | 'connect' | 'newStream'
> = {
  getUserMedia: (constraints) => navigator.mediaDevices.getUserMedia(constraints),
  createPeer: () => new RTCPeerConnection(),
  connect: (url) => new WebSocket(url) as unknown as SocketLike,
  newStream: () => new MediaStream(),
};

/** A promise with its settle functions, for "the device is open". */
interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const promise = new Promise<void>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  // Nobody may be waiting when it fails; the reason is in the store.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** A file message on its way: the file (kept for a retry), its upload and its thumbnail. */
interface OutgoingFile {
  file: NamedBlob;
  upload: EncryptedUpload;
  info: AttachmentInfo | null;
  thumbnail: Promise<Thumbnail | null>;
}

export const PAGE_SIZE = 50;
/** At most this many pages are fetched when catching up after a reconnect. */
const CATCH_UP_PAGES = 10;
const CATCH_UP_PAGE_SIZE = 200;
/** Typing frames sent at most this often per chat (the server passes one per 2 s). */
export const TYPING_SEND_INTERVAL_MS = 2500;
/** How long a page waits for its bodies before it shows without them. */
const PAGE_DECRYPT_WAIT_MS = 150;
/** Direct chats whose peer is looked up at once. */
const LOOKUP_CONCURRENCY = 4;

export class AppController {
  readonly store: Store<AppState, Action>;
  readonly client: ParleyClient;
  readonly session: Session;
  readonly realtime: RealtimeConnection;
  /** Profile, groups, deleting, notifications, devices (`lib/features/`). */
  readonly features: Features;
  /** Voice and video calls (`lib/calls/`). */
  readonly calls: Calls;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly lastTypingSent = new Map<string, number>();
  private readonly requestedUsers = new Set<string>();
  private readonly requestedDetails = new Set<string>();
  private typingTimer: unknown = null;
  private disposed = false;
  readonly e2ee: E2ee;
  private readonly decryption: MessageDecryption;
  readonly media: MediaLoader;
  private device: Deferred = deferred();
  /** Lets go of the device lock (sign-out, dispose). */
  private releaseDevice: (() => void) | null = null;
  /** Bumped at every sign-in and sign-out: late results of an older one are dropped. */
  private deviceGeneration = 0;
  private readonly outgoingFiles = new Map<string, OutgoingFile>();

  constructor(private readonly options: ControllerOptions) {
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? (() => globalThis.crypto.randomUUID());
    this.store = createStore(reduce, initialState);
    this.client = createParleyClient({
      baseUrl: options.baseUrl,
      getToken: () => this.session.getToken(),
      onUnauthorized: () => void this.checkSession(),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    this.session = new Session({
      client: this.client,
      store: options.tokenStore,
      now: this.now,
      ...(options.timers ? { timers: options.timers } : {}),
      locks: options.locks ?? null,
      onToken: (token) => this.realtime.reauthenticate(token),
      onEnded: (reason) => void this.signedOut(`Signed out (${reason}).`),
    });
    this.realtime = new RealtimeConnection({
      baseUrl: options.baseUrl,
      getToken: () => this.session.getToken(),
      connect: options.connect,
      onFrame: (frame) => this.onFrame(frame),
      onStatus: (status) => this.dispatch({ type: 'connection/status', status }),
      onOpen: ({ reconnected }) => void this.onSocketOpen(reconnected),
      onAuthProblem: (code) => this.onAuthProblem(code),
      ...(options.timers ? { timers: options.timers } : {}),
      ...(options.random ? { random: options.random } : {}),
    });
    this.e2ee = new E2ee({
      client: this.client,
      core: options.crypto,
      nameOf: (userId) => this.userName(userId),
      listener: {
        onDeviceReport: (_userId, report) => {
          if (report.key_changes.length > 0 || this.state.keyChanges.length > 0) {
            void this.refreshKeyChanges();
          }
        },
        onRoomKey: (chatId) => this.decryption.roomKeyArrived(chatId),
        onWarning: (chatId, text) => this.dispatch({ type: 'e2ee/notice', chatId, text }),
      },
    });
    this.decryption = new MessageDecryption({
      crypto: options.crypto,
      ready: () => this.device.promise,
      drain: () => this.e2ee.drainToDevice(),
      setBodies: (bodies) => this.dispatch({ type: 'bodies/set', bodies }),
      timers: options.timers ?? browserTimers,
    });
    this.media = new MediaLoader({
      client: this.client,
      crypto: options.crypto,
      setMedia: (mediaId, media) => this.dispatch({ type: 'media/set', mediaId, media }),
      ...(options.objectUrls ? { objectUrls: options.objectUrls } : {}),
    });
    this.features = new Features(
      {
        client: this.client,
        store: this.store,
        ensureUsers: (ids) => this.ensureUsers(ids),
        loadChats: () => this.loadChats(),
        loadDetail: (chatId) => this.loadDetail(chatId),
        now: this.now,
        safety: {
          ready: () => this.device.promise,
          syncDevices: (userIds) => this.e2ee.syncDevices(userIds),
          listedDevices: (userId) => options.crypto.listedDevices(userId),
          safetyNumber: (userId) => options.crypto.safetyNumber(userId),
        },
      },
      options.features,
    );
    this.calls = new Calls({
      client: this.client,
      store: this.store,
      timers: options.timers ?? browserTimers,
      now: this.now,
      ...browserCallMedia,
      ...options.calls,
    });
  }

  get state(): AppState {
    return this.store.getState();
  }

  private get me(): string {
    return this.state.auth.userId ?? '';
  }

  private dispatch(action: Action) {
    if (!this.disposed) this.store.dispatch(action);
  }

  // --- session ------------------------------------------------------------------------------

  /** After a page load: signs in again from the stored refresh token, if any. */
  async start(): Promise<void> {
    this.disposed = false;
    try {
      const stored = await this.session.restore();
      if (!stored) {
        this.dispatch({ type: 'auth/signedOut' });
        return;
      }
      const { data: user } = await this.client.GET('/users/{id}', {
        params: { path: { id: stored.userId } },
      });
      if (!user) throw new Error('could not load your profile');
      await this.signedIn(user, stored.deviceId, false);
    } catch (error) {
      // Offline or the server is down: the stored session stays for the next try.
      this.dispatch({ type: 'auth/error', error: `Can't reach the server: ${message(error)}` });
    }
  }

  async login(email: string, password: string): Promise<void> {
    const auth = await this.session.login(email, password);
    await this.signedIn(auth.user, auth.device_id, true);
  }

  async register(name: string, email: string, password: string): Promise<void> {
    const auth = await this.session.register(name, email, password);
    await this.signedIn(auth.user, auth.device_id, true);
  }

  /** Signs out: the session on the server, the tokens, and this device's keys and state. */
  async logout(): Promise<void> {
    this.realtime.stop();
    try {
      await this.session.logout();
    } finally {
      await this.forgetDevice();
      this.dispatch({ type: 'auth/signedOut' });
    }
  }

  private async signedIn(user: UserView, deviceId: string, fresh: boolean) {
    this.dispatch({ type: 'auth/signedIn', user, deviceId });
    this.startTypingSweep();
    // The socket first: the server fixes its starting point at the upgrade, so whatever
    // happens while the lists load below still arrives as frames.
    this.realtime.start();
    void this.setUpDevice(user.id, deviceId, fresh);
    // Signed in even if the list fails to load: the socket's next open tries again.
    await this.loadChats().catch(() => undefined);
  }

  private async signedOut(error: string | null = null) {
    this.realtime.stop();
    await this.session.end().catch(() => undefined);
    // The session is over on the server, and with it this device: its keys are of no use.
    await this.forgetDevice();
    this.dispatch({ type: 'auth/signedOut', error });
  }

  /** Wipes the device's state (memory, IndexedDB, decrypted media) and lets go of its lock. */
  private async forgetDevice() {
    this.deviceGeneration += 1;
    this.device.reject(new Error('signed out'));
    this.device = deferred();
    this.decryption.reset();
    this.media.clear();
    for (const outgoing of this.outgoingFiles.values()) outgoing.upload.dispose();
    this.outgoingFiles.clear();
    await this.options.crypto.forgetDevice().catch(() => undefined);
    this.releaseDevice?.();
    this.releaseDevice = null;
  }

  /** A request answered 401: find out whether the session is over (refresh fails) or not. */
  private async checkSession() {
    if (!this.session.signedIn) return;
    try {
      await this.session.refresh();
    } catch (error) {
      if (error instanceof AuthError) await this.signedOut('Your session ended. Sign in again.');
    }
  }

  private async onAuthProblem(code: string): Promise<boolean> {
    if (!this.session.signedIn) return false;
    try {
      await this.session.refresh();
      return true;
    } catch (error) {
      if (error instanceof AuthError) {
        await this.signedOut(code === 'session_revoked' ? 'This session was signed out.' : null);
        return false;
      }
      return true;
    }
  }

  // --- end-to-end encryption (all crypto is the core's) -------------------------------------

  /**
   * Opens this device (restored from IndexedDB, or created and saved), publishes its keys and
   * takes the room keys that waited. Until it is done, decryption waits; if it fails, messages
   * show why and sending refuses.
   */
  private async setUpDevice(userId: string, deviceId: string, fresh: boolean) {
    const generation = this.deviceGeneration;
    const ready = this.device;
    const current = () => generation === this.deviceGeneration && !this.disposed;
    try {
      if (this.options.deviceLock && !this.releaseDevice) {
        const release = await this.options.deviceLock.acquire(() =>
          this.dispatch({
            type: 'e2ee/status',
            status: 'waiting',
            reason: 'Parley is open in another tab: encryption works in one tab at a time.',
          }),
        );
        if (!current()) {
          release();
          return;
        }
        this.releaseDevice = release;
      }
      await this.options.crypto.open({ userId, deviceId });
      if (!current()) return;
      try {
        await this.e2ee.publishKeys(deviceId, this.options.deviceName);
      } catch (error) {
        if (error instanceof ApiError && error.code === 'identity_keys_changed') {
          throw new Error(
            'this browser no longer has the keys this device published; sign out and in again',
          );
        }
        throw error;
      }
      if (!current()) return;
      this.dispatch({ type: 'e2ee/status', status: 'ready' });
      ready.resolve();
      await this.refreshKeyChanges();
      if (!fresh) await this.e2ee.drainToDevice().catch(() => undefined);
    } catch (error) {
      if (!current()) return;
      this.dispatch({ type: 'e2ee/status', status: 'unavailable', reason: message(error) });
      ready.reject(error);
    }
  }

  private get e2eeReady(): boolean {
    return this.state.e2ee.status === 'ready';
  }

  /** Reads the unaccepted key changes from the trust store into the UI. */
  private async refreshKeyChanges() {
    if (!this.e2eeReady) return;
    const changes = await this.options.crypto.pendingKeyChanges().catch(() => null);
    if (changes) this.dispatch({ type: 'e2ee/keyChanges', changes });
  }

  /**
   * Adopts a device's changed identity keys, after the user compared safety numbers. Nothing is
   * encrypted to that device, nor accepted from it, until then.
   */
  async acceptKeyChange(change: PendingKeyChange): Promise<void> {
    await this.device.promise;
    await this.options.crypto.acceptKeyChange({
      user_id: change.user_id,
      device_id: change.device_id,
    });
    await this.refreshKeyChanges();
  }

  /** The safety number with another user (60 digits in groups of 5). */
  async safetyNumber(userId: string): Promise<string> {
    await this.device.promise;
    return this.options.crypto.safetyNumber(userId);
  }

  private decrypt(messages: MessageView[]) {
    this.decryption.decrypt(messages, (id) => this.state.bodies[id]);
  }

  // --- chats -------------------------------------------------------------------------------

  async loadChats(): Promise<void> {
    const chats: ChatSummary[] = [];
    let cursor: string | undefined;
    do {
      const { data, error, response } = await this.client.GET('/chats', {
        params: { query: { limit: 200, ...(cursor ? { cursor } : {}) } },
      });
      if (!data) throw new Error(errorDetail(error, response.status).message);
      chats.push(...data.items);
      cursor = data.next_cursor ?? undefined;
    } while (cursor);
    this.dispatch({ type: 'chats/loaded', chats });
    this.decrypt(chats.flatMap((c) => (c.last_message ? [c.last_message] : [])));
    void this.loadDirectPeers(chats);
  }

  /** Direct chats have no name: their title is the other member's, which takes two lookups. */
  private async loadDirectPeers(chats: ChatSummary[]) {
    const queue = chats
      .filter(
        (c) => c.type === 'direct' && !this.state.details[c.id] && !this.requestedDetails.has(c.id),
      )
      .map((c) => c.id);
    queue.forEach((id) => this.requestedDetails.add(id));
    const worker = async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        const chatId = id;
        await this.loadDetail(chatId).catch(() => this.requestedDetails.delete(chatId));
      }
    };
    await Promise.all(Array.from({ length: LOOKUP_CONCURRENCY }, worker));
  }

  /** `GET /chats/{id}`: members and their read marks, then their profiles. */
  async loadDetail(chatId: string): Promise<void> {
    const { data, error, response } = await this.client.GET('/chats/{id}', {
      params: { path: { id: chatId } },
    });
    if (!data) {
      if (response.status === 404) this.dispatch({ type: 'chat/removed', chatId });
      throw new Error(errorDetail(error, response.status).message);
    }
    this.dispatch({ type: 'chat/detailLoaded', chat: data });
    await this.ensureUsers(data.members.map((m) => m.user_id));
  }

  /** Loads the profiles not known yet. */
  async ensureUsers(ids: string[]): Promise<void> {
    const missing = [...new Set(ids)].filter(
      (id) => !this.state.users[id] && !this.requestedUsers.has(id),
    );
    missing.forEach((id) => this.requestedUsers.add(id));
    const users = await Promise.all(
      missing.map(
        async (id) => (await this.client.GET('/users/{id}', { params: { path: { id } } })).data,
      ),
    );
    this.dispatch({ type: 'users/loaded', users: users.filter((u): u is UserView => !!u) });
  }

  /** The chat view mounted (or `null`: it unmounted). Loads its newest page and members. */
  async openChat(chatId: string | null): Promise<void> {
    this.dispatch({ type: 'chat/opened', chatId });
    if (!chatId) return;
    const detail = this.loadDetail(chatId).catch(() => undefined);
    const { data, error, response } = await this.client.GET('/chats/{id}/messages', {
      params: { path: { id: chatId }, query: { limit: PAGE_SIZE } },
    });
    if (!data) throw new Error(errorDetail(error, response.status).message);
    await this.showPage(chatId, data.items, 'newest', data.next_cursor ?? null);
    await detail;
    const members = this.state.details[chatId]?.members.map((m) => m.user_id) ?? [];
    if (members.length > 0) {
      // Changed keys show in the chat before anything is sent (once the device is open).
      void this.device.promise.then(() => this.e2ee.syncDevices(members)).catch(() => undefined);
    }
    await this.markRead(chatId);
  }

  /** The next older page, when the list is scrolled to its top. */
  async loadOlder(chatId: string): Promise<void> {
    const current = this.state.messages[chatId];
    if (!current?.olderCursor || current.loadingOlder) return;
    this.dispatch({ type: 'messages/loadingOlder', chatId, loading: true });
    const before = Number(current.olderCursor);
    const { data } = await this.client.GET('/chats/{id}/messages', {
      params: { path: { id: chatId }, query: { limit: PAGE_SIZE, before_seq: before } },
    });
    if (!data) {
      this.dispatch({ type: 'messages/loadingOlder', chatId, loading: false });
      return;
    }
    await this.showPage(chatId, data.items, 'older', data.next_cursor ?? null);
  }

  /**
   * Stores a page of messages. With the device open, the page is decrypted first and shown
   * with its bodies in one update (one render, no flash of placeholders), unless that takes
   * longer than {@link PAGE_DECRYPT_WAIT_MS} (the core busy with a big share, say): then the page
   * shows at once and its bodies follow, as they do while the device is not ready yet.
   */
  private async showPage(
    chatId: string,
    items: MessageView[],
    kind: 'newest' | 'older',
    olderCursor: string | null,
  ) {
    if (!this.e2eeReady) {
      this.dispatch({ type: 'messages/page', chatId, items, kind, olderCursor });
      this.decrypt(items);
      return;
    }
    const decrypting = this.decryption.bodiesFor(items, (id) => this.state.bodies[id]);
    const bodies = await this.within(decrypting, PAGE_DECRYPT_WAIT_MS);
    this.dispatch({
      type: 'messages/page',
      chatId,
      items,
      kind,
      olderCursor,
      ...(bodies ? { bodies } : {}),
    });
    if (!bodies) {
      const late = await decrypting;
      if (Object.keys(late).length > 0) this.dispatch({ type: 'bodies/set', bodies: late });
    }
  }

  /** `work`'s result, or `null` if it takes longer than `ms` (it goes on regardless). */
  private within<T>(work: Promise<T>, ms: number): Promise<T | null> {
    const timers = this.options.timers ?? browserTimers;
    return new Promise((resolve) => {
      const timer = timers.setTimeout(() => resolve(null), ms);
      void work.then((value) => {
        timers.clearTimeout(timer);
        resolve(value);
      });
    });
  }

  /** Marks everything up to the chat's newest message read (`POST /chats/{id}/mark-read`). */
  async markRead(chatId: string): Promise<void> {
    const chat = this.state.chats[chatId];
    const items = this.state.messages[chatId]?.items ?? [];
    const upTo = Math.max(chat?.last_seq ?? 0, items[items.length - 1]?.seq ?? 0);
    if (upTo < 1 || (chat && chat.unread_count === 0 && !this.hasUnreadFromOthers(chatId, upTo))) {
      return;
    }
    this.dispatch({ type: 'chat/readLocally', chatId, upToSeq: upTo });
    await this.client.POST('/chats/{id}/mark-read', {
      params: { path: { id: chatId } },
      body: { up_to_seq: upTo },
    });
  }

  private hasUnreadFromOthers(chatId: string, upTo: number): boolean {
    const mine = this.state.details[chatId]?.members.find((m) => m.user_id === this.me);
    return mine ? mine.read_up_to_seq < upTo : false;
  }

  /** `GET /users?q=`: people to start a chat with (yourself left out). */
  async searchUsers(query: string): Promise<UserView[]> {
    const q = query.trim();
    if (!q) return [];
    const { data, error, response } = await this.client.GET('/users', {
      params: { query: { q, limit: 20 } },
    });
    if (!data) throw new Error(errorDetail(error, response.status).message);
    this.dispatch({ type: 'users/loaded', users: data.items });
    return data.items.filter((u) => u.id !== this.me);
  }

  /** Opens the direct chat with someone (the server answers the existing one if there is one). */
  async startDirectChat(userId: string): Promise<string> {
    const { data, error, response } = await this.client.POST('/chats', {
      body: { type: 'direct', member_ids: [userId] },
    });
    if (!data) throw new Error(errorDetail(error, response.status).message);
    this.dispatch({ type: 'chat/detailLoaded', chat: data });
    await this.loadChats();
    return data.id;
  }

  async createGroup(name: string, memberIds: string[]): Promise<string> {
    const { data, error, response } = await this.client.POST('/chats', {
      body: { type: 'group', name: name.trim(), member_ids: memberIds },
    });
    if (!data) throw new Error(errorDetail(error, response.status).message);
    this.dispatch({ type: 'chat/detailLoaded', chat: data });
    await this.loadChats();
    return data.id;
  }

  // --- sending ------------------------------------------------------------------------------

  /** The device is open, or the reason it is not. */
  private async deviceOrReason(): Promise<void> {
    if (this.state.e2ee.status === 'waiting') {
      throw new Error(this.state.e2ee.reason ?? 'encryption is not ready');
    }
    await this.device.promise;
  }

  /**
   * Sends a text message: the room key goes to every member's devices first (Olm), then the
   * Megolm ciphertext. A message that fails stays in the list as failed, with Retry.
   */
  async sendText(chatId: string, text: string, clientMsgId = this.newId()): Promise<void> {
    const body = text.trim();
    if (!body) return;
    this.dispatch({
      type: 'message/pending',
      message: {
        client_msg_id: clientMsgId,
        chat_id: chatId,
        text: body,
        created_at: new Date(this.now()).toISOString(),
        status: 'sending',
      },
    });
    await this.sendContent(chatId, clientMsgId, { type: 'text', body }, []);
  }

  /**
   * Sends a photo, video or other file: encrypted while it is read and uploaded (with
   * progress; large files resumably), then a file message carrying its key. `caption` may be
   * empty.
   */
  async sendFile(
    chatId: string,
    file: NamedBlob,
    caption = '',
    clientMsgId = this.newId(),
  ): Promise<void> {
    const text = caption.trim();
    let outgoing = this.outgoingFiles.get(clientMsgId);
    if (!outgoing) {
      const upload = new EncryptedUpload(this.client, this.options.crypto, file, {
        onProgress: ({ sent }) =>
          this.dispatch({ type: 'message/progress', chatId, clientMsgId, sent }),
        ...(this.options.sleep ? { sleep: this.options.sleep } : {}),
      });
      // Made while the file uploads; a thumbnail that cannot be made is left out.
      const makeThumbnail = this.options.thumbnail ?? browserThumbnail;
      const thumbnail = makeThumbnail(file, upload.contentType).catch(() => null);
      outgoing = { file, upload, info: null, thumbnail };
      this.outgoingFiles.set(clientMsgId, outgoing);
      this.dispatch({
        type: 'message/pending',
        message: {
          client_msg_id: clientMsgId,
          chat_id: chatId,
          text,
          created_at: new Date(this.now()).toISOString(),
          status: 'uploading',
          file: { name: file.name, size: file.size, content_type: upload.contentType, sent: 0 },
        },
      });
    }
    const generation = this.deviceGeneration;
    try {
      if (!outgoing.info) {
        this.dispatch({ type: 'message/status', chatId, clientMsgId, status: 'uploading' });
        await this.deviceOrReason();
        outgoing.info = await outgoing.upload.run();
      }
    } catch (error) {
      const resumable = error instanceof TransferError && error.retry;
      const text = resumable
        ? `the upload stopped (${error.message}); Retry resumes it`
        : message(error);
      this.dispatch({ type: 'message/failed', chatId, clientMsgId, error: text });
      return;
    }
    if (generation !== this.deviceGeneration) return;
    const info = outgoing.info;
    this.dispatch({ type: 'message/status', chatId, clientMsgId, status: 'sending' });
    const thumbnail = await outgoing.thumbnail;
    const content: MessageContent = {
      type: 'file',
      file: info,
      body: text,
      ...(thumbnail ? { thumbnail } : {}),
    };
    if (await this.sendContent(chatId, clientMsgId, content, [info.media_id])) {
      this.media.adopt(info.media_id, outgoing.file);
      this.outgoingFiles.delete(clientMsgId);
    }
  }

  /** Encrypts and posts; `true` once the server has the message. */
  private async sendContent(
    chatId: string,
    clientMsgId: string,
    content: MessageContent,
    mediaIds: string[],
  ): Promise<boolean> {
    try {
      await this.deviceOrReason();
      const sent = await this.e2ee.sendContent(chatId, this.me, content, clientMsgId, mediaIds);
      // The sender knows what it wrote; its own history is read back through the core.
      this.dispatch({ type: 'bodies/set', bodies: { [sent.id]: bodyOf(content) } });
      this.dispatch({ type: 'message/sent', message: sent, me: this.me });
      return true;
    } catch (error) {
      this.dispatch({ type: 'message/failed', chatId, clientMsgId, error: message(error) });
      return false;
    }
  }

  /** Sends a failed message again under the same `client_msg_id` (the server de-duplicates). */
  async retry(chatId: string, clientMsgId: string): Promise<void> {
    const pending = this.state.messages[chatId]?.pending.find(
      (p) => p.client_msg_id === clientMsgId,
    );
    if (!pending) return;
    const outgoing = this.outgoingFiles.get(clientMsgId);
    if (pending.file && outgoing) {
      await this.sendFile(chatId, outgoing.file, pending.text, clientMsgId);
    } else if (!pending.file) {
      await this.sendText(chatId, pending.text, clientMsgId);
    }
  }

  /** Clears the encryption warnings shown in a chat. */
  dismissNotices(chatId: string): void {
    this.dispatch({ type: 'e2ee/noticesDismissed', chatId });
  }

  /** Downloads and decrypts an attachment for display (once). */
  loadMedia(info: AttachmentInfo): void {
    void this.media.load(info);
  }

  /** Tells the others you are typing, at most every {@link TYPING_SEND_INTERVAL_MS} per chat. */
  notifyTyping(chatId: string): void {
    const now = this.now();
    const last = this.lastTypingSent.get(chatId) ?? 0;
    if (now - last < TYPING_SEND_INTERVAL_MS) return;
    if (this.realtime.send({ type: 'typing', chat_id: chatId }))
      this.lastTypingSent.set(chatId, now);
  }

  // --- realtime -----------------------------------------------------------------------------

  private onFrame({ event }: ServerFrame) {
    const me = this.me;
    this.dispatch({ type: 'frame', event, me, now: this.now() });
    switch (event.type) {
      case 'message.created': {
        const { chat_id: chatId } = event.data;
        if (!this.state.chats[chatId]) {
          void this.loadChats().catch(() => undefined);
        }
        this.decrypt([event.data]);
        if (this.state.openChatId === chatId && event.data.sender_id !== me && isVisible()) {
          void this.markRead(chatId).catch(() => undefined);
        }
        break;
      }
      case 'chat.member_added':
        if (event.data.user_ids.includes(me)) void this.loadChats().catch(() => undefined);
        else void this.ensureUsers(event.data.user_ids).catch(() => undefined);
        break;
      case 'typing':
        void this.ensureUsers([event.data.user_id]).catch(() => undefined);
        break;
      case 'to_device':
        // Before the device is open, the queue is read once it is (the message stays queued).
        if (this.e2eeReady) void this.e2ee.receiveToDevice(event.data).catch(() => undefined);
        break;
      case 'one_time_keys.low': {
        const deviceId = this.state.auth.deviceId;
        if (event.data.device_id === deviceId && this.e2eeReady) {
          void this.e2ee.replenish(deviceId, event.data.remaining).catch(() => undefined);
        }
        break;
      }
      case 'device_list.changed':
        if (this.e2eeReady) {
          void this.e2ee.syncDevices([event.data.user_id]).catch(() => undefined);
        }
        break;
      case 'error':
        if (event.data.code === 'session_revoked')
          void this.signedOut('This session was signed out.');
        break;
      default:
        break;
    }
  }

  /**
   * After a reconnect the server replays the feed from our cursor, if we had one (a socket that
   * saw no feed frame has none, and then the server starts from the present). So the list and
   * the open chat are read again after every reconnect.
   */
  private async onSocketOpen(reconnected: boolean) {
    // Room keys sent while the socket was down (their frames may also come again).
    if (reconnected && this.e2eeReady) void this.e2ee.drainToDevice().catch(() => undefined);
    if (!reconnected && this.state.chatsLoaded) return;
    await this.loadChats().catch(() => undefined);
    const open = this.state.openChatId;
    if (open) await this.catchUp(open).catch(() => undefined);
  }

  private async catchUp(chatId: string) {
    for (let page = 0; page < CATCH_UP_PAGES; page += 1) {
      const items = this.state.messages[chatId]?.items ?? [];
      const after = items[items.length - 1]?.seq ?? 0;
      const { data } = await this.client.GET('/chats/{id}/messages', {
        params: { path: { id: chatId }, query: { after_seq: after, limit: CATCH_UP_PAGE_SIZE } },
      });
      if (!data) return;
      this.dispatch({ type: 'messages/page', chatId, items: data.items, kind: 'newer' });
      this.decrypt(data.items);
      if (data.items.length < CATCH_UP_PAGE_SIZE) return;
    }
  }

  private startTypingSweep() {
    if (this.typingTimer !== null) return;
    const timers = this.options.timers ?? {
      setTimeout: (handler: () => void, ms: number) => globalThis.setTimeout(handler, ms),
      clearTimeout: (handle: unknown) =>
        globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    const sweep = () => {
      this.dispatch({ type: 'typing/expire', now: this.now() });
      this.typingTimer = this.disposed ? null : timers.setTimeout(sweep, 1000);
    };
    this.typingTimer = timers.setTimeout(sweep, 1000);
  }

  /** The browser is back online or the tab became visible: reconnect without waiting. */
  wake(): void {
    this.realtime.reconnectNow();
    this.calls.wake();
  }

  dispose(): void {
    this.disposed = true;
    this.calls.dispose();
    this.realtime.stop();
    this.media.clear();
    this.deviceGeneration += 1;
    this.device.reject(new Error('closed'));
    this.device = deferred();
    this.decryption.reset();
    this.releaseDevice?.();
    this.releaseDevice = null;
    void this.options.crypto.close().catch(() => undefined);
  }

  /** For components that show who someone is. */
  userName(userId: string): string {
    return this.state.users[userId]?.name ?? 'Someone';
  }

  /** Loads the member list of a chat the UI shows, once. */
  ensureDetail(chatId: string): void {
    if (this.state.details[chatId] || this.requestedDetails.has(chatId)) return;
    this.requestedDetails.add(chatId);
    void this.loadDetail(chatId).catch(() => this.requestedDetails.delete(chatId));
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isVisible(): boolean {
  return typeof document === 'undefined' || document.visibilityState !== 'hidden';
}
