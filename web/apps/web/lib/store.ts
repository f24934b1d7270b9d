/**
 * The app's UI state: one plain object, changed only by {@link reduce}. No React in here, so the
 * rules (ordering, unread counts, receipts, typing) are unit-tested directly.
 */
import type {
  ChatSummary,
  ChatView,
  MemberView,
  MessageView,
  ServerEvent,
  UserView,
} from '@parley/sdk';
import type { Thumbnail } from './thumbnails';
import type { AttachmentInfo, PendingKeyChange } from './crypto';
import {
  initialFeatureState,
  isFeatureAction,
  reduceFeatures,
  type FeatureAction,
  type FeatureState,
} from './features/state';

/** How long a `typing` frame shows (the server lets one through per user and chat every 2 s). */
export const TYPING_TTL_MS = 6000;
/** Encryption warnings kept per chat. */
const NOTICES_KEPT = 5;

export type AuthStatus = 'restoring' | 'signed_out' | 'signed_in';
export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'reconnecting';

/** A file being sent: what the composer picked, and how much of it the server has. */
export interface PendingFile {
  name: string;
  size: number;
  content_type: string;
  /** Encrypted bytes the server has. */
  sent: number;
}

/** A message typed here that the server has not confirmed (yet). */
export interface PendingMessage {
  client_msg_id: string;
  chat_id: string;
  /** The text, or a file's caption. */
  text: string;
  created_at: string;
  /** `uploading`: the file is being encrypted and uploaded; `sending`: the message itself. */
  status: 'uploading' | 'sending' | 'failed';
  error?: string;
  file?: PendingFile;
}

/**
 * What a message says, once the crypto core had a go at it. `waiting`: its room key has not
 * arrived (yet); `error` is final (until a key for its chat arrives after all).
 */
export type Body =
  | { status: 'ok'; text: string; file?: AttachmentInfo; thumbnail?: Thumbnail }
  | { status: 'waiting' }
  | { status: 'error'; reason: string }
  | { status: 'deleted' };

/** A decrypted attachment, by media id. */
export type MediaState =
  | { status: 'loading'; received: number; total: number }
  | { status: 'ready'; url: string }
  | { status: 'error'; reason: string };

/** End-to-end encryption on this device. */
export type E2eeStatus = 'unknown' | 'ready' | 'waiting' | 'unavailable';

export interface ChatMessages {
  /** Ascending by `seq`, one entry per message id. */
  items: MessageView[];
  /** The newest page arrived. */
  loaded: boolean;
  loadingOlder: boolean;
  /** `before_seq` for the next older page; `null` when there is none. */
  olderCursor: string | null;
  pending: PendingMessage[];
}

export interface AppState extends FeatureState {
  auth: {
    status: AuthStatus;
    userId: string | null;
    deviceId: string | null;
    error: string | null;
  };
  /**
   * End-to-end encryption on this device: `unknown` while it starts, `waiting` while another
   * tab holds the device, `unavailable` when it failed (with the reason).
   */
  e2ee: { status: E2eeStatus; reason: string | null };
  /** Devices whose identity keys changed and were not accepted (from the trust store). */
  keyChanges: PendingKeyChange[];
  /** Encryption warnings by chat id (`''`: not about one chat), newest last. */
  notices: Record<string, string[]>;
  /** Decrypted attachments by media id. */
  media: Record<string, MediaState>;
  connection: ConnectionStatus;
  users: Record<string, UserView>;
  chats: Record<string, ChatSummary>;
  chatsLoaded: boolean;
  details: Record<string, ChatView>;
  messages: Record<string, ChatMessages>;
  /** By message id. */
  bodies: Record<string, Body>;
  /** chat id → user id → when the indicator ends (ms since the epoch). */
  typing: Record<string, Record<string, number>>;
  /** The chat on screen: its new messages do not count as unread. */
  openChatId: string | null;
}

export const initialState: AppState = {
  auth: { status: 'restoring', userId: null, deviceId: null, error: null },
  e2ee: { status: 'unknown', reason: null },
  keyChanges: [],
  notices: {},
  media: {},
  connection: 'idle',
  users: {},
  chats: {},
  chatsLoaded: false,
  details: {},
  messages: {},
  bodies: {},
  typing: {},
  openChatId: null,
  ...initialFeatureState,
};

export type Action = CoreAction | FeatureAction;

type CoreAction =
  | { type: 'auth/signedIn'; user: UserView; deviceId: string }
  | { type: 'auth/signedOut'; error?: string | null }
  | { type: 'auth/error'; error: string | null }
  | { type: 'e2ee/status'; status: E2eeStatus; reason?: string | null }
  | { type: 'e2ee/keyChanges'; changes: PendingKeyChange[] }
  | { type: 'e2ee/notice'; chatId: string | null; text: string }
  | { type: 'e2ee/noticesDismissed'; chatId: string }
  | { type: 'media/set'; mediaId: string; media: MediaState }
  | { type: 'connection/status'; status: ConnectionStatus }
  | { type: 'users/loaded'; users: UserView[] }
  | { type: 'chats/loaded'; chats: ChatSummary[] }
  | { type: 'chat/detailLoaded'; chat: ChatView }
  | { type: 'chat/opened'; chatId: string | null }
  | { type: 'chat/readLocally'; chatId: string; upToSeq: number }
  | { type: 'chat/removed'; chatId: string }
  | {
      type: 'messages/page';
      chatId: string;
      items: MessageView[];
      /** `newest`: the first page; `older`: paging back; `newer`: catching up after a gap. */
      kind: 'newest' | 'older' | 'newer';
      olderCursor?: string | null;
      /** Bodies decrypted before the page is shown, stored with it in one update. */
      bodies?: Record<string, Body>;
    }
  | { type: 'messages/loadingOlder'; chatId: string; loading: boolean }
  | { type: 'message/pending'; message: PendingMessage }
  | { type: 'message/failed'; chatId: string; clientMsgId: string; error: string }
  | { type: 'message/progress'; chatId: string; clientMsgId: string; sent: number }
  | { type: 'message/status'; chatId: string; clientMsgId: string; status: 'uploading' | 'sending' }
  | { type: 'message/sent'; message: MessageView; me: string }
  | { type: 'bodies/set'; bodies: Record<string, Body> }
  | { type: 'frame'; event: ServerEvent; me: string; now: number }
  | { type: 'typing/expire'; now: number };

// --- helpers ---------------------------------------------------------------------------------

const emptyMessages: ChatMessages = {
  items: [],
  loaded: false,
  loadingOlder: false,
  olderCursor: null,
  pending: [],
};

/** Merges messages into an ascending, de-duplicated list (later copies of an id win). */
export function mergeMessages(existing: MessageView[], incoming: MessageView[]): MessageView[] {
  if (incoming.length === 0) {
    return existing;
  }
  const byId = new Map<string, MessageView>();
  for (const message of existing) byId.set(message.id, message);
  for (const message of incoming) byId.set(message.id, message);
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

function later(a: string, b: string): string {
  return Date.parse(a) >= Date.parse(b) ? a : b;
}

function tombstone(message: MessageView): MessageView {
  return { ...message, ciphertext: null, media_ids: [], deleted: true };
}

function withChat(state: AppState, chatId: string, change: (chat: ChatSummary) => ChatSummary) {
  const chat = state.chats[chatId];
  return chat ? { ...state.chats, [chatId]: change(chat) } : state.chats;
}

function withoutKey<T>(record: Record<string, T>, key: string): Record<string, T> {
  if (!(key in record)) return record;
  const { [key]: _removed, ...rest } = record;
  void _removed;
  return rest;
}

function withMembers(
  state: AppState,
  chatId: string,
  change: (members: MemberView[]) => MemberView[],
): Record<string, ChatView> {
  const detail = state.details[chatId];
  return detail
    ? { ...state.details, [chatId]: { ...detail, members: change(detail.members) } }
    : state.details;
}

// --- the reducer -----------------------------------------------------------------------------

function onMessageCreated(state: AppState, message: MessageView, me: string): AppState {
  const chatId = message.chat_id;
  const fromMe = message.sender_id === me;
  const chats = withChat(state, chatId, (chat) => {
    const isNew = message.seq > chat.last_seq;
    const newest = isNew || chat.last_message?.id === message.id;
    let unread = chat.unread_count;
    if (fromMe) {
      // Sending moves the sender's own read mark to the message (no `chat.read` frame).
      unread = 0;
    } else if (isNew && state.openChatId !== chatId) {
      unread += 1;
    }
    return {
      ...chat,
      last_seq: Math.max(chat.last_seq, message.seq),
      last_message: newest ? message : chat.last_message,
      last_activity_at: later(chat.last_activity_at, message.created_at),
      unread_count: unread,
    };
  });
  const details = fromMe ? moveReadMark(state, chatId, me, message.seq) : state.details;
  const current = state.messages[chatId];
  const messages = current
    ? {
        ...state.messages,
        [chatId]: {
          ...current,
          items: mergeMessages(current.items, [message]),
          pending: current.pending.filter((p) => p.client_msg_id !== message.client_msg_id),
        },
      }
    : state.messages;
  const chatTyping = state.typing[chatId];
  const typing =
    chatTyping && message.sender_id in chatTyping
      ? { ...state.typing, [chatId]: withoutKey(chatTyping, message.sender_id) }
      : state.typing;
  return { ...state, chats, details, messages, typing };
}

function onFrame(state: AppState, event: ServerEvent, me: string, now: number): AppState {
  switch (event.type) {
    case 'message.created':
      return onMessageCreated(state, event.data, me);
    case 'message.deleted': {
      const { chat_id: chatId, message_id: id } = event.data;
      const forEveryone = event.data.for === 'everyone';
      const current = state.messages[chatId];
      const items = current
        ? forEveryone
          ? current.items.map((m) => (m.id === id ? tombstone(m) : m))
          : current.items.filter((m) => m.id !== id)
        : undefined;
      const messages =
        current && items ? { ...state.messages, [chatId]: { ...current, items } } : state.messages;
      const chats = withChat(state, chatId, (chat) => {
        if (chat.last_message?.id !== id) return chat;
        const previous = items?.[items.length - 1] ?? null;
        return {
          ...chat,
          last_message: forEveryone ? tombstone(chat.last_message) : previous,
        };
      });
      const bodies = forEveryone
        ? { ...state.bodies, [id]: { status: 'deleted' as const } }
        : withoutKey(state.bodies, id);
      return { ...state, chats, messages, bodies };
    }
    case 'chat.read': {
      const { chat_id: chatId, user_id: userId, up_to_seq: upTo } = event.data;
      const details = moveReadMark(state, chatId, userId, upTo);
      const chats =
        userId === me ? withChat(state, chatId, (chat) => readUpTo(chat, upTo)) : state.chats;
      return { ...state, details, chats };
    }
    case 'chat.member_added': {
      const { chat_id: chatId, user_ids: userIds } = event.data;
      const known = new Set(state.details[chatId]?.members.map((m) => m.user_id));
      const added = userIds.filter((id) => !known.has(id));
      const joinedAt = new Date(now).toISOString();
      const details = withMembers(state, chatId, (members) => [
        ...members,
        ...added.map((user_id) => ({
          user_id,
          role: 'member',
          joined_at: joinedAt,
          read_up_to_seq: 0,
        })),
      ]);
      const chats = state.details[chatId]
        ? withChat(state, chatId, (chat) => ({
            ...chat,
            member_count: chat.member_count + added.length,
          }))
        : state.chats;
      return { ...state, details, chats };
    }
    case 'chat.member_removed': {
      const { chat_id: chatId, user_id: userId } = event.data;
      if (userId === me) {
        return reduce(state, { type: 'chat/removed', chatId });
      }
      const wasMember = state.details[chatId]?.members.some((m) => m.user_id === userId);
      const details = withMembers(state, chatId, (members) =>
        members.filter((m) => m.user_id !== userId),
      );
      const chats = wasMember
        ? withChat(state, chatId, (chat) => ({
            ...chat,
            member_count: Math.max(0, chat.member_count - 1),
          }))
        : state.chats;
      const chatTyping = state.typing[chatId];
      const typing = chatTyping
        ? { ...state.typing, [chatId]: withoutKey(chatTyping, userId) }
        : state.typing;
      return { ...state, details, chats, typing };
    }
    case 'user.updated': {
      const { user_id: userId, ...changed } = event.data;
      const known = state.users[userId];
      // Someone not shown anywhere yet is loaded in full when they are.
      if (!known) return state;
      const updated: UserView = {
        ...known,
        ...(changed.name !== undefined ? { name: changed.name } : {}),
        ...(changed.status !== undefined ? { status: changed.status } : {}),
        ...('avatar_media_id' in changed
          ? {
              avatar_media_id: changed.avatar_media_id ?? null,
              avatar_url: changed.avatar_media_id ? `/media/${changed.avatar_media_id}` : null,
            }
          : {}),
      };
      return { ...state, users: { ...state.users, [userId]: updated } };
    }
    case 'chat.member_updated': {
      const { chat_id: chatId, user_id: userId, role } = event.data;
      const details = withMembers(state, chatId, (members) =>
        members.map((m) => (m.user_id === userId ? { ...m, role } : m)),
      );
      return { ...state, details };
    }
    case 'typing': {
      const { chat_id: chatId, user_id: userId } = event.data;
      if (userId === me) return state;
      return {
        ...state,
        typing: {
          ...state.typing,
          [chatId]: { ...state.typing[chatId], [userId]: now + TYPING_TTL_MS },
        },
      };
    }
    default:
      return state;
  }
}

function moveReadMark(state: AppState, chatId: string, userId: string, upTo: number) {
  return withMembers(state, chatId, (members) =>
    members.map((m) =>
      m.user_id === userId ? { ...m, read_up_to_seq: Math.max(m.read_up_to_seq, upTo) } : m,
    ),
  );
}

function readUpTo(chat: ChatSummary, upTo: number): ChatSummary {
  return { ...chat, unread_count: Math.min(chat.unread_count, Math.max(0, chat.last_seq - upTo)) };
}

export function reduce(state: AppState, action: Action): AppState {
  return reduceFeatures(isFeatureAction(action) ? state : reduceCore(state, action), action);
}

function reduceCore(state: AppState, action: CoreAction): AppState {
  switch (action.type) {
    case 'auth/signedIn':
      return {
        ...state,
        auth: {
          status: 'signed_in',
          userId: action.user.id,
          deviceId: action.deviceId,
          error: null,
        },
        users: { ...state.users, [action.user.id]: action.user },
      };
    case 'auth/signedOut':
      return {
        ...initialState,
        auth: { status: 'signed_out', userId: null, deviceId: null, error: action.error ?? null },
      };
    case 'auth/error':
      return { ...state, auth: { ...state.auth, error: action.error } };
    case 'e2ee/status':
      return { ...state, e2ee: { status: action.status, reason: action.reason ?? null } };
    case 'e2ee/keyChanges':
      return { ...state, keyChanges: action.changes };
    case 'e2ee/notice': {
      const key = action.chatId ?? '';
      const earlier = (state.notices[key] ?? []).filter((text) => text !== action.text);
      const notices = [...earlier, action.text].slice(-NOTICES_KEPT);
      return { ...state, notices: { ...state.notices, [key]: notices } };
    }
    case 'e2ee/noticesDismissed': {
      const notices = withoutKey(withoutKey(state.notices, action.chatId), '');
      return { ...state, notices };
    }
    case 'media/set':
      return { ...state, media: { ...state.media, [action.mediaId]: action.media } };
    case 'connection/status':
      return state.connection === action.status ? state : { ...state, connection: action.status };
    case 'users/loaded': {
      if (action.users.length === 0) return state;
      const users = { ...state.users };
      for (const user of action.users) users[user.id] = user;
      return { ...state, users };
    }
    case 'chats/loaded': {
      const chats: Record<string, ChatSummary> = {};
      for (const chat of action.chats) {
        const known = state.chats[chat.id];
        // A frame may have moved the chat on while the list was in flight.
        chats[chat.id] = known && known.last_seq > chat.last_seq ? known : chat;
        if (state.openChatId === chat.id) chats[chat.id] = { ...chats[chat.id]!, unread_count: 0 };
      }
      return { ...state, chats, chatsLoaded: true };
    }
    case 'chat/detailLoaded':
      return { ...state, details: { ...state.details, [action.chat.id]: action.chat } };
    case 'chat/opened':
      return { ...state, openChatId: action.chatId };
    case 'chat/readLocally':
      return {
        ...state,
        chats: withChat(state, action.chatId, (chat) => readUpTo(chat, action.upToSeq)),
        details: state.auth.userId
          ? moveReadMark(state, action.chatId, state.auth.userId, action.upToSeq)
          : state.details,
      };
    case 'chat/removed':
      return {
        ...state,
        chats: withoutKey(state.chats, action.chatId),
        details: withoutKey(state.details, action.chatId),
        messages: withoutKey(state.messages, action.chatId),
        typing: withoutKey(state.typing, action.chatId),
      };
    case 'messages/page': {
      const current = state.messages[action.chatId] ?? emptyMessages;
      const next: ChatMessages = {
        ...current,
        items: mergeMessages(current.items, action.items),
        loaded: true,
        loadingOlder: action.kind === 'older' ? false : current.loadingOlder,
        olderCursor:
          action.kind === 'newer'
            ? current.olderCursor
            : action.kind === 'newest' && current.loaded
              ? current.olderCursor
              : (action.olderCursor ?? null),
      };
      const bodies = action.bodies ? { ...state.bodies, ...action.bodies } : state.bodies;
      return { ...state, bodies, messages: { ...state.messages, [action.chatId]: next } };
    }
    case 'messages/loadingOlder': {
      const current = state.messages[action.chatId] ?? emptyMessages;
      return {
        ...state,
        messages: {
          ...state.messages,
          [action.chatId]: { ...current, loadingOlder: action.loading },
        },
      };
    }
    case 'message/pending': {
      const chatId = action.message.chat_id;
      const current = state.messages[chatId] ?? emptyMessages;
      const pending = [
        ...current.pending.filter((p) => p.client_msg_id !== action.message.client_msg_id),
        action.message,
      ];
      return { ...state, messages: { ...state.messages, [chatId]: { ...current, pending } } };
    }
    case 'message/failed': {
      const current = state.messages[action.chatId];
      if (!current) return state;
      const pending = current.pending.map((p) =>
        p.client_msg_id === action.clientMsgId
          ? { ...p, status: 'failed' as const, error: action.error }
          : p,
      );
      return {
        ...state,
        messages: { ...state.messages, [action.chatId]: { ...current, pending } },
      };
    }
    case 'message/progress':
    case 'message/status': {
      const current = state.messages[action.chatId];
      if (!current) return state;
      const pending = current.pending.map((p) => {
        if (p.client_msg_id !== action.clientMsgId) return p;
        if (action.type === 'message/status') {
          const { error: _error, ...rest } = p;
          void _error;
          return { ...rest, status: action.status };
        }
        return p.file ? { ...p, file: { ...p.file, sent: action.sent } } : p;
      });
      return {
        ...state,
        messages: { ...state.messages, [action.chatId]: { ...current, pending } },
      };
    }
    case 'message/sent':
      return onMessageCreated(state, action.message, action.me);
    case 'bodies/set':
      return { ...state, bodies: { ...state.bodies, ...action.bodies } };
    case 'frame':
      return onFrame(state, action.event, action.me, action.now);
    case 'typing/expire': {
      let changed = false;
      const typing: AppState['typing'] = {};
      for (const [chatId, users] of Object.entries(state.typing)) {
        const live = Object.fromEntries(
          Object.entries(users).filter(([, until]) => until > action.now),
        );
        if (Object.keys(live).length !== Object.keys(users).length) changed = true;
        if (Object.keys(live).length > 0) typing[chatId] = live;
        else changed = true;
      }
      return changed ? { ...state, typing } : state;
    }
  }
}

// --- selectors -------------------------------------------------------------------------------

/** Chats by newest activity first. */
export function selectChatList(state: AppState): ChatSummary[] {
  return Object.values(state.chats).sort(
    (a, b) =>
      Date.parse(b.last_activity_at) - Date.parse(a.last_activity_at) ||
      b.last_seq - a.last_seq ||
      a.id.localeCompare(b.id),
  );
}

/** The other member of a direct chat, when its members are known. */
export function directPeer(state: AppState, chatId: string): string | null {
  const me = state.auth.userId;
  return state.details[chatId]?.members.find((m) => m.user_id !== me)?.user_id ?? null;
}

/** A chat's name: the group's, or the other person's in a direct chat. */
export function selectChatTitle(state: AppState, chatId: string): string {
  const chat = state.chats[chatId] ?? state.details[chatId];
  if (chat?.name) return chat.name;
  const peer = directPeer(state, chatId);
  if (peer) return state.users[peer]?.name ?? 'Someone';
  return chat?.type === 'group' ? 'Group' : 'Direct chat';
}

/** Who is typing in a chat (the controller sweeps out ended indicators every second). */
export function selectTyping(state: AppState, chatId: string): string[] {
  return Object.keys(state.typing[chatId] ?? {});
}

export type Ticks = 'sending' | 'failed' | 'sent' | 'read';

/**
 * Receipts for one of your messages: `read` once every other member's read mark reached it
 * (members come from `GET /chats/{id}`, marks move with `chat.read` frames).
 */
export function messageTicks(state: AppState, message: MessageView): Ticks {
  const members = state.details[message.chat_id]?.members;
  const others = members?.filter((m) => m.user_id !== message.sender_id) ?? [];
  if (others.length > 0 && others.every((m) => m.read_up_to_seq >= message.seq)) {
    return 'read';
  }
  return 'sent';
}

/** One row of a chat's timeline: a confirmed message or a pending one (always last). */
export type TimelineItem =
  | { kind: 'message'; key: string; message: MessageView }
  | { kind: 'pending'; key: string; pending: PendingMessage };

export function selectTimeline(state: AppState, chatId: string): TimelineItem[] {
  return timelineOf(state.messages[chatId]);
}

/**
 * A chat's rows from its messages alone, so a view can recompute them only when those change
 * (not at every store update: a long chat has thousands).
 */
export function timelineOf(chat: ChatMessages | undefined): TimelineItem[] {
  if (!chat) return [];
  return [
    ...chat.items.map((message) => ({ kind: 'message' as const, key: message.id, message })),
    ...chat.pending.map((pending) => ({
      kind: 'pending' as const,
      key: `pending:${pending.client_msg_id}`,
      pending,
    })),
  ];
}

/** A short description of a decrypted message (chat list previews). */
export function bodySummary(body: Body & { status: 'ok' }): string {
  if (!body.file) return body.text;
  const kind = body.file.content_type.split('/')[0];
  const what = kind === 'image' ? 'Photo' : kind === 'video' ? 'Video' : `File: ${body.file.name}`;
  return body.text ? `${what}: ${body.text}` : what;
}

/** What a chat list row shows under the title. */
export function previewText(state: AppState, chat: ChatSummary): string {
  const last = chat.last_message;
  if (!last) return 'No messages yet';
  if (last.deleted) return 'Message deleted';
  const body = state.bodies[last.id];
  if (body?.status === 'ok') return bodySummary(body);
  if (body?.status === 'waiting') return 'Waiting for the key to this message';
  if (body?.status === 'error') return 'Cannot decrypt this message';
  return 'Encrypted message';
}

/**
 * Unaccepted key changes that matter in a chat: its members' devices (this user's own other
 * devices included).
 */
export function selectKeyChanges(state: AppState, chatId: string): PendingKeyChange[] {
  const members = new Set(state.details[chatId]?.members.map((m) => m.user_id));
  if (state.auth.userId) members.add(state.auth.userId);
  return state.keyChanges.filter((change) => members.has(change.user_id));
}
