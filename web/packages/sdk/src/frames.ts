/**
 * The realtime frames of `GET /ws`, typed: the TypeScript mirror of the Rust SDK's
 * `sdk/src/frames.rs`.
 *
 * The server sends `{"type", "data", "cursor"}` ({@link ServerFrame}): frames from the user's feed
 * carry a `cursor` (pass the last one you saw as `?cursor=` when reconnecting to replay what came
 * after it); `typing`, `pong`, `auth.ok`, `error` and the key directory's `to_device`,
 * `device_list.changed` and `one_time_keys.low` carry `null`. A frame of a type this SDK does not
 * know yet parses as `{type: "unknown"}` rather than failing, so a newer server does not break an
 * older client. The client sends {@link ClientFrame}s (at most 64 KiB each).
 *
 * Times are RFC 3339 strings; ids are UUID strings.
 */
import type { MessageView } from './types';

/** A chat message (`message.created`): the same shape as `GET /chats/{id}/messages` items. */
export type Message = MessageView;

/** Who a message was deleted for (`other` for values this SDK does not know). */
export type DeletedFor = 'everyone' | 'me' | 'other';

export interface MessageDeleted {
  chat_id: string;
  seq: number;
  message_id: string;
  for: DeletedFor;
}

export interface ChatRead {
  chat_id: string;
  user_id: string;
  /** Every message up to this `seq` is read by `user_id`. */
  up_to_seq: number;
}

export interface ChatMemberAdded {
  chat_id: string;
  user_ids: string[];
  /** Absent when the chat was created with them or they joined by invite. */
  added_by?: string | null;
}

export interface ChatMemberRemoved {
  chat_id: string;
  user_id: string;
  /** Who removed them (themselves when they left). */
  removed_by: string;
}

export interface ChatMemberUpdated {
  chat_id: string;
  user_id: string;
  /** `admin` or `member`. */
  role: string;
}

export interface CallRinging {
  call_id: string;
  chat_id: string;
  /** `audio` or `video`. */
  kind: string;
  initiator_id: string;
  created_at: string;
}

/** What changed in a call (`other` for values this SDK does not know). */
export type CallChange =
  | 'accepted'
  | 'rejected'
  | 'connected'
  | 'left'
  | 'ended'
  /** The call's SFU node died and the api placed it on another: join again (`POST /calls/{id}/accept`). */
  | 'media_moved'
  | 'other';

export interface CallUpdated {
  call_id: string;
  chat_id: string;
  change: CallChange;
  /** Whose change it is (every change but `ended`). */
  user_id?: string | null;
  /** With `ended`: `ended`, `rejected` or `missed`. */
  status?: string | null;
  /** With `left`: `hung_up`, `disconnected` or `removed`. */
  reason?: string | null;
}

/** A notification (`notification.created`), as `GET /notifications` lists it. */
export interface Notification {
  id: string;
  /** `message`, `added_to_group`, `incoming_call` or `missed_call`. */
  kind: string;
  /** Ids that say what it is about, e.g. `{chat_id, message_id, seq, sender_id}`. */
  data: unknown;
  created_at: string;
  read: boolean;
}

export interface Typing {
  chat_id: string;
  user_id: string;
}

export interface AuthOk {
  /** When the token the socket now lives on expires. */
  expires_at: string | null;
}

export interface ErrorData {
  /** E.g. `invalid_frame`, `not_found`, `session_revoked`, `token_expired`, `invalid_token`. */
  code: string;
  message: string;
}

/** An Olm-encrypted message to one device (`to_device`), also listed by `GET /to-device`. */
export interface ToDeviceMessage {
  /** Acknowledge it with `POST /to-device/ack` once handled. */
  id: string;
  /** The sender as the server authenticated it. */
  sender_id: string;
  sender_device_id: string;
  /** The JSON Olm envelope as a string (`{"algorithm":"parley.olm.v1", ...}`). */
  ciphertext: string;
  created_at: string;
}

/** A profile changed: only the fields that did (`avatar_media_id: null` = picture removed). */
export interface UserUpdated {
  user_id: string;
  name?: string;
  status?: string;
  avatar_media_id?: string | null;
}

export interface DeviceListChanged {
  user_id: string;
}

export interface OneTimeKeysLow {
  device_id: string;
  /** One-time keys the device has left on the server. */
  remaining: number;
}

/** The `data` of each known frame type. */
export interface ServerEventMap {
  'message.created': Message;
  'message.deleted': MessageDeleted;
  'chat.read': ChatRead;
  'chat.member_added': ChatMemberAdded;
  'chat.member_removed': ChatMemberRemoved;
  'chat.member_updated': ChatMemberUpdated;
  'user.updated': UserUpdated;
  'call.ringing': CallRinging;
  'call.updated': CallUpdated;
  'notification.created': Notification;
  typing: Typing;
  pong: null;
  'auth.ok': AuthOk;
  error: ErrorData;
  to_device: ToDeviceMessage;
  'device_list.changed': DeviceListChanged;
  'one_time_keys.low': OneTimeKeysLow;
}

export type KnownFrameType = keyof ServerEventMap;

/** What a server frame says, by its `type`. */
export type ServerEvent =
  | { [K in KnownFrameType]: { type: K; data: ServerEventMap[K] } }[KnownFrameType]
  /** A frame type this SDK does not know, kept as it came (`kind` is its `type`). */
  | { type: 'unknown'; kind: string; data: unknown };

/** One frame from the server: what happened, and its feed cursor if it is stored in the feed. */
export interface ServerFrame {
  event: ServerEvent;
  /** The frame's position in the user's feed (opaque; send it back as `?cursor=`), or `null`. */
  cursor: string | null;
}

/** Every `type` the typed events cover, in the Rust SDK's order. */
export const KNOWN_TYPES: readonly KnownFrameType[] = [
  'message.created',
  'message.deleted',
  'chat.read',
  'chat.member_added',
  'chat.member_removed',
  'chat.member_updated',
  'user.updated',
  'call.ringing',
  'call.updated',
  'notification.created',
  'typing',
  'pong',
  'auth.ok',
  'error',
  'to_device',
  'device_list.changed',
  'one_time_keys.low',
];

/** A frame that is not JSON, has no `type`, or a known `type` whose `data` does not fit. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

// --- validation of `data` -------------------------------------------------------------------

type FieldKind =
  'uuid' | 'uuid?' | 'uuid[]' | 'string' | 'string?' | 'int' | 'bool' | 'time' | 'time?' | 'any';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// RFC 3339 date-time, as chrono writes and reads it.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function fits(kind: FieldKind, value: unknown): boolean {
  const optional = kind.endsWith('?');
  if (optional && (value === undefined || value === null)) {
    return true;
  }
  switch (kind) {
    case 'uuid':
    case 'uuid?':
      return typeof value === 'string' && UUID.test(value);
    case 'uuid[]':
      return (
        Array.isArray(value) && value.every((item) => typeof item === 'string' && UUID.test(item))
      );
    case 'string':
    case 'string?':
      return typeof value === 'string';
    case 'int':
      return typeof value === 'number' && Number.isInteger(value);
    case 'bool':
      return typeof value === 'boolean';
    case 'time':
    case 'time?':
      return typeof value === 'string' && RFC3339.test(value);
    case 'any':
      return value !== undefined;
  }
}

const MESSAGE: Record<string, FieldKind> = {
  id: 'uuid',
  chat_id: 'uuid',
  sender_id: 'uuid',
  sender_device_id: 'uuid?',
  seq: 'int',
  client_msg_id: 'string',
  ciphertext: 'string?',
  algorithm: 'string',
  media_ids: 'uuid[]',
  reply_to: 'uuid?',
  created_at: 'time',
  deleted: 'bool',
};

/** The fields each known type's `data` must have (`null` = no data). */
const SHAPES: { [K in KnownFrameType]: Record<string, FieldKind> | null } = {
  'message.created': MESSAGE,
  'message.deleted': { chat_id: 'uuid', seq: 'int', message_id: 'uuid', for: 'string' },
  'chat.read': { chat_id: 'uuid', user_id: 'uuid', up_to_seq: 'int' },
  'chat.member_added': { chat_id: 'uuid', user_ids: 'uuid[]', added_by: 'uuid?' },
  'chat.member_removed': { chat_id: 'uuid', user_id: 'uuid', removed_by: 'uuid' },
  'chat.member_updated': { chat_id: 'uuid', user_id: 'uuid', role: 'string' },
  'user.updated': { user_id: 'uuid', name: 'string?', status: 'string?', avatar_media_id: 'uuid?' },
  'call.ringing': {
    call_id: 'uuid',
    chat_id: 'uuid',
    kind: 'string',
    initiator_id: 'uuid',
    created_at: 'time',
  },
  'call.updated': {
    call_id: 'uuid',
    chat_id: 'uuid',
    change: 'string',
    user_id: 'uuid?',
    status: 'string?',
    reason: 'string?',
  },
  'notification.created': {
    id: 'uuid',
    kind: 'string',
    data: 'any',
    created_at: 'time',
    read: 'bool',
  },
  typing: { chat_id: 'uuid', user_id: 'uuid' },
  pong: null,
  'auth.ok': { expires_at: 'time?' },
  error: { code: 'string', message: 'string' },
  to_device: {
    id: 'uuid',
    sender_id: 'uuid',
    sender_device_id: 'uuid',
    ciphertext: 'string',
    created_at: 'time',
  },
  'device_list.changed': { user_id: 'uuid' },
  'one_time_keys.low': { device_id: 'uuid', remaining: 'int' },
};

function isKnown(type: string): type is KnownFrameType {
  return Object.prototype.hasOwnProperty.call(SHAPES, type);
}

function checkData(type: KnownFrameType, data: unknown): unknown {
  const shape = SHAPES[type];
  if (shape === null) {
    return null;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new FrameError(`\`${type}\` frame: data is not an object`);
  }
  const record = data as Record<string, unknown>;
  for (const [field, kind] of Object.entries(shape)) {
    if (!fits(kind, record[field])) {
      throw new FrameError(`\`${type}\` frame: field \`${field}\` is not a valid ${kind}`);
    }
  }
  // Enums the Rust SDK reads with `#[serde(other)]`: unknown values become `other`.
  if (type === 'message.deleted' && !['everyone', 'me'].includes(record.for as string)) {
    return { ...record, for: 'other' };
  }
  if (
    type === 'call.updated' &&
    !['accepted', 'rejected', 'connected', 'left', 'ended', 'media_moved'].includes(
      record.change as string,
    )
  ) {
    return { ...record, change: 'other' };
  }
  return record;
}

/** Parses one text message of the socket. Throws {@link FrameError} when it does not fit. */
export function parseServerFrame(text: string): ServerFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FrameError('frame is not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new FrameError('frame is not a JSON object');
  }
  const { type, data = null, cursor = null } = raw as Record<string, unknown>;
  if (typeof type !== 'string') {
    throw new FrameError('frame has no `type`');
  }
  if (cursor !== null && typeof cursor !== 'string') {
    throw new FrameError('frame `cursor` is not a string');
  }
  const event = isKnown(type)
    ? ({ type, data: checkData(type, data) } as ServerEvent)
    : ({ type: 'unknown', kind: type, data } as const);
  return { event, cursor };
}

/** Writes a frame back as the server would (the inverse of {@link parseServerFrame}). */
export function serializeServerFrame(frame: ServerFrame): string {
  const { event, cursor } = frame;
  const type = event.type === 'unknown' ? event.kind : event.type;
  return JSON.stringify({ type, data: event.data, cursor });
}

// --- client frames --------------------------------------------------------------------------

/** A frame the client sends. */
export type ClientFrame =
  /** Answered with `pong`. */
  | { type: 'ping' }
  /** Tells the chat's other members you are typing (rate-limited; excess frames are dropped). */
  | { type: 'typing'; chat_id: string }
  /**
   * A fresh access token of the same user, sent before the current one expires; answered with
   * `auth.ok`, or `invalid_token` and close code 4001.
   */
  | { type: 'auth'; token: string };

/** The frame as the text message to send. */
export function clientFrameToJson(frame: ClientFrame): string {
  return JSON.stringify(frame);
}

/** Close code of a socket whose right ended: session revoked, token expired or refused. */
export const CLOSE_UNAUTHORIZED = 4001;

/** The subprotocol a browser offers before its access token: `Sec-WebSocket-Protocol: bearer, <token>`. */
export const BEARER_PROTOCOL = 'bearer';

/**
 * The `/ws` URL for an api origin (`http(s)://host` → `ws(s)://host/ws`), with the cursor to
 * replay from. The token never goes in the URL: pass {@link webSocketProtocols} to `WebSocket`.
 */
export function webSocketUrl(baseUrl: string, cursor?: string | null): string {
  const url = new URL('/ws', baseUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (cursor) {
    url.searchParams.set('cursor', cursor);
  }
  return url.toString();
}

/** The subprotocols that carry the access token: `new WebSocket(url, webSocketProtocols(token))`. */
export function webSocketProtocols(accessToken: string): string[] {
  return [BEARER_PROTOCOL, accessToken];
}
