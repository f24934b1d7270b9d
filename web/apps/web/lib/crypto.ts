/**
 * Every piece of end-to-end encryption the web app needs, behind one interface.
 *
 * The implementation is the WebAssembly client core (`@parley/core`, the browser build of
 * `parley-client-core`), which is not wired in yet: until it is, each function below throws
 * `crypto core not wired yet`. Nothing here fakes encryption; the app shows messages it cannot
 * decrypt as such and refuses to send what it cannot encrypt.
 *
 * Shapes follow `docs/e2ee.md` and the core's Rust API (`OwnDevice`): the core is sans-IO, so
 * the app does the HTTP (publishing keys, querying devices, claiming one-time keys, posting
 * to-device messages) and hands the answers in. Ids are lowercase hyphenated UUIDs.
 */
import type {
  ClaimedKey,
  DeviceRef,
  MessageView,
  OutgoingToDevice,
  PublishKeysRequest,
  PublishKeysResponse,
  ToDeviceMessage,
  UserDevices,
} from '@parley/sdk';

export const NOT_WIRED = 'crypto core not wired yet';

/** `parley.megolm.v1`: chat messages. */
export const MEGOLM_ALGORITHM = 'parley.megolm.v1';

/** This device: the login session's user and `device_id` (from register/login). */
export interface DeviceContext {
  userId: string;
  deviceId: string;
}

/** An encrypted attachment's description inside a message (`docs/e2ee.md`, "Attachments"). */
export interface AttachmentInfo {
  media_id: string;
  content_type: string;
  /** Plaintext size in bytes (equal to the ciphertext's). */
  size: number;
  name: string;
  /** b64 of the 32-byte AES key. */
  key: string;
  /** b64 of the 16-byte initial counter block. */
  iv: string;
  /** b64 of the SHA-256 over the ciphertext. */
  sha256: string;
  algorithm: 'parley.aes-ctr-256.v1';
}

/** The Megolm plaintext's content (without its `chat_id`, which the core adds and checks). */
export type MessageContent =
  { type: 'text'; body: string } | { type: 'file'; file: AttachmentInfo; body?: string };

/** What goes into `POST /chats/{id}/messages` besides `client_msg_id`. */
export interface EncryptedMessage {
  algorithm: typeof MEGOLM_ALGORITHM;
  /** b64pad of `{"session_id","body"}`. */
  ciphertext: string;
}

export interface DecryptedMessage {
  content: MessageContent;
  /** The Megolm session that encrypted it. */
  session_id: string;
  /** Its index in that session: the same (session, index) under two message ids is a replay. */
  message_index: number;
}

/** What `observeUserDevices` found in a listing (trust on first use). */
export interface DeviceListReport {
  new_devices: DeviceRef[];
  removed_devices: DeviceRef[];
  /** Known devices whose keys changed: withheld from room keys until the user accepts. */
  key_changes: DeviceRef[];
  /** Devices whose signature failed, with the reason. */
  rejected: { device: DeviceRef; reason: string }[];
}

/** What `prepareAndShareRoomKeys` produced. */
export interface RoomKeyShare {
  /** Items for `POST /to-device` (empty when every recipient already has the key). */
  messages: OutgoingToDevice[];
  /** Devices the server had no one-time key for: retried on the next send. */
  devices_without_one_time_key: DeviceRef[];
  /** Devices whose claimed key was refused (bad signature), with the reason. */
  rejected_one_time_keys: { device: DeviceRef; reason: string }[];
  /** Devices with an unaccepted key change: not given the key. */
  withheld: DeviceRef[];
}

/** A decrypted to-device message. */
export type ToDeviceEvent = {
  type: 'room_key';
  chat_id: string;
  session_id: string;
  sender: DeviceRef;
};

/** `POST /keys/claim` for the devices given, as the app performs it. */
export type ClaimOneTimeKeys = (devices: DeviceRef[]) => Promise<ClaimedKey[]>;

/** The interface the WebAssembly core implements. */
export interface CryptoCore {
  /**
   * Loads this device's saved state, or creates a new Olm account (50 one-time keys and a
   * fallback key). Returns the body for `PUT /keys/devices/{device_id}` when keys still need
   * publishing, `null` otherwise.
   */
  openDevice(device: DeviceContext): Promise<PublishKeysRequest | null>;
  /** After a 2xx of `PUT /keys/devices/{id}`: marks the keys published; a top-up body if needed. */
  keysPublished(response: PublishKeysResponse): Promise<PublishKeysRequest | null>;
  /** After `one_time_keys.low`: new one-time keys to upload (or `null`). */
  replenishOneTimeKeys(remaining: number): Promise<PublishKeysRequest | null>;
  /** Verifies and remembers a listing of `GET /keys/users/{id}` / `POST /keys/query`. */
  observeUserDevices(listing: UserDevices): Promise<DeviceListReport>;
  /**
   * Makes sure the chat has a current outbound Megolm session for exactly `recipients` (every
   * listed device of every member, this one left out automatically), claims one-time keys for
   * the devices without an Olm session through `claim`, and encrypts the room key for each
   * device that lacks it. Post the result's `messages` with `POST /to-device` before sending.
   */
  prepareAndShareRoomKeys(
    chatId: string,
    recipients: DeviceRef[],
    claim: ClaimOneTimeKeys,
  ): Promise<RoomKeyShare>;
  /** Encrypts a message with the chat's current outbound session. */
  encryptMessage(chatId: string, content: MessageContent): Promise<EncryptedMessage>;
  /** Decrypts a message of the history or a `message.created` frame. */
  decryptMessage(message: MessageView): Promise<DecryptedMessage>;
  /** Decrypts and applies a `to_device` message; acknowledge it only after this resolved. */
  receiveToDevice(message: ToDeviceMessage): Promise<ToDeviceEvent>;
  /** Forgets this device's state (logout). */
  forgetDevice(): Promise<void>;
}

function notWired(): Promise<never> {
  return Promise.reject(new Error(NOT_WIRED));
}

/** Whether a real core is behind this module. */
export const cryptoCoreWired = false;

export const openDevice: CryptoCore['openDevice'] = () => notWired();
export const keysPublished: CryptoCore['keysPublished'] = () => notWired();
export const replenishOneTimeKeys: CryptoCore['replenishOneTimeKeys'] = () => notWired();
export const observeUserDevices: CryptoCore['observeUserDevices'] = () => notWired();
export const prepareAndShareRoomKeys: CryptoCore['prepareAndShareRoomKeys'] = () => notWired();
export const encryptMessage: CryptoCore['encryptMessage'] = () => notWired();
export const decryptMessage: CryptoCore['decryptMessage'] = () => notWired();
export const receiveToDevice: CryptoCore['receiveToDevice'] = () => notWired();
/** Without a core there is no device state to forget. */
export const forgetDevice: CryptoCore['forgetDevice'] = () => Promise.resolve();

/** A safety number (`docs/e2ee.md`, "Safety numbers"): the core's `SafetyNumberJson`. */
export interface SafetyNumber {
  /** 60 digits. */
  digits: string;
  /** The same as 12 groups of 5 separated by spaces. */
  grouped: string;
}

/**
 * The safety number between this user and `otherUserId` (the core's `Device.safetyNumber`), over
 * the devices the core last observed for both: hand it both users' listings
 * (`observeUserDevices`) first.
 */
export const safetyNumber = (otherUserId: string): Promise<SafetyNumber> => {
  void otherUserId;
  return notWired();
};

/** The module as one object, for injection (tests give the controller a fake core). */
export const cryptoCore: CryptoCore = {
  openDevice,
  keysPublished,
  replenishOneTimeKeys,
  observeUserDevices,
  prepareAndShareRoomKeys,
  encryptMessage,
  decryptMessage,
  receiveToDevice,
  forgetDevice,
};
