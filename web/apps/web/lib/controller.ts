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
  type ClaimedKey,
  type DeviceRef,
  type MessageView,
  type ParleyClient,
  type ServerFrame,
  type ToDeviceMessage,
  type UserView,
} from '@parley/sdk';
import { createStore, type Store } from './createStore';
import type { CryptoCore } from './crypto';
import { Features, type FeatureOptions } from './features';
import { RealtimeConnection, type IntervalTimers, type SocketFactory } from './realtime';
import { AuthError, Session, type LockManagerLike } from './session';
import { initialState, reduce, type Action, type AppState, type Body } from './store';
import type { TokenStore } from './tokenStore';

export interface ControllerOptions {
  baseUrl: string;
  tokenStore: TokenStore;
  crypto: CryptoCore;
  connect: SocketFactory;
  fetch?: typeof globalThis.fetch;
  locks?: LockManagerLike | null;
  timers?: IntervalTimers;
  now?: () => number;
  random?: () => number;
  newId?: () => string;
  features?: FeatureOptions;
}

export const PAGE_SIZE = 50;
/** At most this many pages are fetched when catching up after a reconnect. */
const CATCH_UP_PAGES = 10;
const CATCH_UP_PAGE_SIZE = 200;
/** Typing frames sent at most this often per chat (the server passes one per 2 s). */
export const TYPING_SEND_INTERVAL_MS = 2500;
/** Direct chats whose peer is looked up at once. */
const LOOKUP_CONCURRENCY = 4;

export class AppController {
  readonly store: Store<AppState, Action>;
  readonly client: ParleyClient;
  readonly session: Session;
  readonly realtime: RealtimeConnection;
  /** Profile, groups, deleting, notifications, devices (`lib/features/`). */
  readonly features: Features;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly lastTypingSent = new Map<string, number>();
  private readonly decrypting = new Set<string>();
  private readonly requestedUsers = new Set<string>();
  private readonly requestedDetails = new Set<string>();
  private typingTimer: unknown = null;
  private disposed = false;

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
    this.features = new Features(
      {
        client: this.client,
        store: this.store,
        ensureUsers: (ids) => this.ensureUsers(ids),
        loadChats: () => this.loadChats(),
        loadDetail: (chatId) => this.loadDetail(chatId),
        now: this.now,
      },
      options.features,
    );
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

  async logout(): Promise<void> {
    this.realtime.stop();
    try {
      await this.session.logout();
    } finally {
      await this.options.crypto.forgetDevice().catch(() => undefined);
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
    this.dispatch({ type: 'auth/signedOut', error });
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

  private async setUpDevice(userId: string, deviceId: string, fresh: boolean) {
    try {
      let upload = await this.options.crypto.openDevice({ userId, deviceId });
      while (upload) {
        const { data, error, response } = await this.client.PUT('/keys/devices/{device_id}', {
          params: { path: { device_id: deviceId } },
          body: upload,
        });
        if (!data) throw new Error(errorDetail(error, response.status).message);
        upload = await this.options.crypto.keysPublished(data);
      }
      this.dispatch({ type: 'e2ee/status', status: 'ready' });
      if (!fresh) await this.drainToDeviceQueue();
    } catch (error) {
      this.dispatch({ type: 'e2ee/status', status: 'unavailable', reason: message(error) });
    }
  }

  /** Room keys that arrived while no socket was open (the socket also resends them). */
  private async drainToDeviceQueue() {
    const { data } = await this.client.GET('/to-device', { params: { query: { limit: 200 } } });
    for (const item of data?.items ?? []) await this.receiveToDevice(item);
  }

  private async receiveToDevice(message: ToDeviceMessage) {
    try {
      const event = await this.options.crypto.receiveToDevice(message);
      await this.client.POST('/to-device/ack', { body: { ids: [message.id] } });
      if (event.type === 'room_key') this.retryDecryption(event.chat_id);
    } catch {
      // Not acknowledged: it stays queued on the server and comes again.
    }
  }

  private async replenishKeys(remaining: number) {
    const deviceId = this.state.auth.deviceId;
    if (!deviceId) return;
    try {
      const upload = await this.options.crypto.replenishOneTimeKeys(remaining);
      if (!upload) return;
      const { data } = await this.client.PUT('/keys/devices/{device_id}', {
        params: { path: { device_id: deviceId } },
        body: upload,
      });
      if (data) await this.options.crypto.keysPublished(data);
    } catch {
      // The next `one_time_keys.low` (or the next start) tries again.
    }
  }

  private decrypt(messages: MessageView[]) {
    for (const m of messages) {
      if (m.deleted || m.ciphertext == null) {
        if (m.deleted)
          this.dispatch({ type: 'bodies/set', bodies: { [m.id]: { status: 'deleted' } } });
        continue;
      }
      if (this.state.bodies[m.id]?.status === 'ok' || this.decrypting.has(m.id)) continue;
      this.decrypting.add(m.id);
      this.options.crypto
        .decryptMessage(m)
        .then((decrypted): Body => {
          const { content } = decrypted;
          const text =
            content.type === 'text'
              ? content.body
              : content.body || `Attachment: ${content.file.name}`;
          return { status: 'ok', text };
        })
        .catch((error: unknown): Body => ({ status: 'error', reason: message(error) }))
        .then((body) => {
          this.decrypting.delete(m.id);
          this.dispatch({ type: 'bodies/set', bodies: { [m.id]: body } });
        });
    }
  }

  private retryDecryption(chatId: string) {
    const failed = (this.state.messages[chatId]?.items ?? []).filter(
      (m) => this.state.bodies[m.id]?.status === 'error',
    );
    const last = this.state.chats[chatId]?.last_message;
    if (last && this.state.bodies[last.id]?.status === 'error') failed.push(last);
    this.decrypt(failed);
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
    this.dispatch({
      type: 'messages/page',
      chatId,
      items: data.items,
      kind: 'newest',
      olderCursor: data.next_cursor ?? null,
    });
    this.decrypt(data.items);
    await detail;
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
    this.dispatch({
      type: 'messages/page',
      chatId,
      items: data.items,
      kind: 'older',
      olderCursor: data.next_cursor ?? null,
    });
    this.decrypt(data.items);
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

  /**
   * Sends a text message: the room key goes to every member's devices first (Olm, by the
   * core), then the Megolm ciphertext. Without the crypto core this fails, and the message
   * stays in the list as failed.
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
    try {
      const recipients = await this.recipientDevices(chatId);
      const share = await this.options.crypto.prepareAndShareRoomKeys(
        chatId,
        recipients,
        (devices) => this.claimKeys(devices),
      );
      if (share.messages.length > 0) {
        const sent = await this.client.POST('/to-device', { body: { messages: share.messages } });
        if (!sent.data) throw new Error(errorDetail(sent.error, sent.response.status).message);
      }
      const encrypted = await this.options.crypto.encryptMessage(chatId, { type: 'text', body });
      const { data, error, response } = await this.client.POST('/chats/{id}/messages', {
        params: { path: { id: chatId } },
        body: { client_msg_id: clientMsgId, ...encrypted },
      });
      if (!data) throw new Error(errorDetail(error, response.status).message);
      // The sender knows what it wrote; its own history is read back through the core.
      this.dispatch({ type: 'bodies/set', bodies: { [data.id]: { status: 'ok', text: body } } });
      this.dispatch({ type: 'message/sent', message: data, me: this.me });
    } catch (error) {
      this.dispatch({ type: 'message/failed', chatId, clientMsgId, error: message(error) });
    }
  }

  /** Sends a failed message again under the same `client_msg_id` (the server de-duplicates). */
  async retry(chatId: string, clientMsgId: string): Promise<void> {
    const pending = this.state.messages[chatId]?.pending.find(
      (p) => p.client_msg_id === clientMsgId,
    );
    if (pending) await this.sendText(chatId, pending.text, clientMsgId);
  }

  /** Every listed device of every member, checked by the core (`POST /keys/query`). */
  private async recipientDevices(chatId: string): Promise<DeviceRef[]> {
    if (!this.state.details[chatId]) await this.loadDetail(chatId);
    const members = this.state.details[chatId]?.members.map((m) => m.user_id) ?? [];
    const { data, error, response } = await this.client.POST('/keys/query', {
      body: { user_ids: members },
    });
    if (!data) throw new Error(errorDetail(error, response.status).message);
    const devices: DeviceRef[] = [];
    for (const listing of data.users) {
      await this.options.crypto.observeUserDevices(listing);
      for (const device of listing.devices) {
        devices.push({ user_id: listing.user_id, device_id: device.device_id });
      }
    }
    return devices;
  }

  private async claimKeys(devices: DeviceRef[]): Promise<ClaimedKey[]> {
    if (devices.length === 0) return [];
    const { data, error, response } = await this.client.POST('/keys/claim', { body: { devices } });
    if (!data) throw new Error(errorDetail(error, response.status).message);
    return data.keys;
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
        void this.receiveToDevice(event.data);
        break;
      case 'one_time_keys.low':
        if (event.data.device_id === this.state.auth.deviceId)
          void this.replenishKeys(event.data.remaining);
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
  }

  dispose(): void {
    this.disposed = true;
    this.realtime.stop();
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
