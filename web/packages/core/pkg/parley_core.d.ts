/* tslint:disable */
/* eslint-disable */

/** A string holding the JSON of a `T` (parse it with `JSON.parse`). */
export type Json<T> = string & { readonly __json?: T };

/** One device of one user. Ids are lowercase hyphenated UUIDs; keys are unpadded base64. */
export interface DeviceAddressJson { user_id: string; device_id: string }
/** A device's identity keys after their self-signature verified. */
export interface DeviceKeysJson { user_id: string; device_id: string; curve25519: string; ed25519: string }
export interface SignedIdentityKeysJson { curve25519: string; ed25519: string; signature: string }
export interface SignedOneTimeKeyJson { key_id: string; curve25519: string; signature: string }
/** The body of `PUT /keys/devices/{device_id}`. */
export interface DeviceKeysUploadJson {
    display_name?: string;
    identity_keys: SignedIdentityKeysJson;
    one_time_keys?: SignedOneTimeKeyJson[];
    fallback_key?: SignedOneTimeKeyJson;
}
export interface PublishedDeviceJson { device_id: string; display_name?: string | null; identity_keys: SignedIdentityKeysJson }
/** `GET /keys/users/{user_id}`, or one item of `POST /keys/query`'s `users`. */
export interface UserDevicesJson { user_id: string; devices: PublishedDeviceJson[] }
/** One item of the `POST /keys/claim` answer's `keys`. */
export interface ClaimedOneTimeKeyJson {
    user_id: string; device_id: string; key_id: string; curve25519: string; signature: string;
    fallback: boolean; remaining?: number | null;
}
export interface KeyChangeJson { device: DeviceAddressJson; trusted: DeviceKeysJson; presented: DeviceKeysJson }
export interface RejectedDeviceJson { device: DeviceAddressJson; reason: string }
/** The device set changed when `new_devices` or `removed_devices` is not empty. */
export interface DeviceListReportJson {
    new_devices: DeviceKeysJson[]; removed_devices: DeviceAddressJson[];
    key_changes: KeyChangeJson[]; rejected_devices: RejectedDeviceJson[];
}
export interface KnownDeviceJson {
    keys: DeviceKeysJson; display_name: string | null; listed: boolean; pending_key_change: DeviceKeysJson | null;
}
export interface TrustStoreJson { devices: KnownDeviceJson[] }
export interface SafetyNumberJson { digits: string; grouped: string }
export interface SendPreparationJson {
    session_id: string; rotated: boolean; needs_room_key: DeviceAddressJson[];
    needs_one_time_key: DeviceAddressJson[]; withheld: DeviceAddressJson[];
}
/** One item of `POST /to-device`'s `messages`. */
export interface OutgoingToDeviceJson { user_id: string; device_id: string; ciphertext: string }
export interface RoomKeyShareJson {
    messages: OutgoingToDeviceJson[]; devices_without_one_time_key: DeviceAddressJson[];
    rejected_one_time_keys: [DeviceAddressJson, string][]; withheld: DeviceAddressJson[];
}
/** A to-device message as `GET /to-device` or the `to_device` realtime frame delivers it. */
export interface IncomingToDeviceJson { id: string; sender_id: string; sender_device_id: string; ciphertext: string }
export type ToDeviceEventJson = { RoomKey: { chat_id: string; session_id: string; sender: DeviceAddressJson } };
export type ToDevicePayloadJson = {
    type: "parley.room_key";
    content: { algorithm: "parley.megolm.v1"; chat_id: string; session_id: string; session_key: string };
};
export interface AttachmentInfoJson {
    media_id: string; content_type: string; size: number; name: string;
    key: string; iv: string; sha256: string; algorithm: "parley.aes-ctr-256.v1";
}
/** `AttachmentInfoJson` without `media_id`, `content_type` and `name`. */
export type EncryptedAttachmentKeysJson = Omit<AttachmentInfoJson, "media_id" | "content_type" | "name">;
/** A file message's preview image (`data`: padded base64; at most 16 KiB, 640 px a side). */
export interface ThumbnailJson {
    content_type: "image/jpeg" | "image/png" | "image/webp"; width: number; height: number; data: string;
}
export type MessageContentJson =
| { type: "text"; body: string }
| { type: "file"; file: AttachmentInfoJson; body?: string; thumbnail?: ThumbnailJson };
/** The message API's `algorithm` and `ciphertext`. */
export interface EncryptedMessageJson { algorithm: string; ciphertext: string }
export interface DecryptedMessageJson { content: MessageContentJson; session_id: string; message_index: number }

export type ParleyCoreErrorCode =
| "invalid_argument" | "finished" | "malformed" | "bad_signature" | "unknown_devices"
| "unresolved_key_change" | "unsupported_algorithm" | "envelope_mismatch" | "missing_one_time_key"
| "olm" | "megolm" | "missing_room_key" | "no_outbound_session" | "attachment_hash_mismatch"
| "attachment_size_mismatch" | "attachment_too_large" | "state_decryption" | "random" | "internal";
/** What every method throws. */
export interface ParleyCoreError extends Error {
    name: "ParleyCoreError";
    code: ParleyCoreErrorCode;
    /** `{devices}` (unknown_devices), `{device}` (unresolved_key_change, missing_one_time_key), `{what, device}`
     * (bad_signature), `{chat_id, session_id, sender}` (missing_room_key), `{expected, actual}`
     * (attachment_size_mismatch). */
    details?: Record<string, unknown>;
}



/**
 * Decrypts a downloaded attachment while hashing it. Everything `update` returns is **untrusted** until
 * `finish` returned without throwing: a caller that shows or stores the plaintext early must discard it when
 * `finish` throws. (For a check before any plaintext exists, run an `AttachmentVerifier` first.)
 */
export class AttachmentDecryptor {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Ends the stream: throws `attachment_size_mismatch` or `attachment_hash_mismatch` when the ciphertext
     * was not the one described (then discard all plaintext). The object can no longer be used.
     */
    finish(): void;
    /**
     * A decryptor for the attachment `info_json` (`AttachmentInfoJson`, from the decrypted message) describes.
     */
    constructor(info_json: string);
    /**
     * Hashes the next ciphertext chunk (any length) and returns its plaintext (same length, untrusted until
     * `finish`).
     */
    update(chunk: Uint8Array | number[]): Uint8Array;
}

/**
 * Encrypts one attachment under a fresh random key: pass every chunk of the file, in order, to `update`
 * and upload what it returns, then call `finish` for the keys.
 */
export class AttachmentEncryptor {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Ends the stream. Returns `EncryptedAttachmentKeysJson`: `{size, key, iv, sha256, algorithm}`, the
     * fields of the message's `AttachmentInfoJson` except `media_id`, `content_type` and `name`, which the
     * caller adds once the upload returned the media id. The object can no longer be used.
     */
    finish(): Json<EncryptedAttachmentKeysJson>;
    /**
     * A new encryptor with a random key and IV.
     */
    constructor();
    /**
     * Encrypts the next plaintext chunk (any length) and returns its ciphertext (same length); the input is
     * left as it was.
     */
    update(chunk: Uint8Array | number[]): Uint8Array;
}

/**
 * Checks a downloaded ciphertext's size and hash without decrypting it (a first pass before an
 * `AttachmentDecryptor`, when no plaintext may be produced from unverified bytes).
 */
export class AttachmentVerifier {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Throws `attachment_size_mismatch` or `attachment_hash_mismatch` unless the whole ciphertext had the
     * described size and hash. The object can no longer be used.
     */
    finish(): void;
    /**
     * A verifier for the attachment `info_json` (`AttachmentInfoJson`) describes.
     */
    constructor(info_json: string);
    /**
     * Hashes the next ciphertext chunk.
     */
    update(chunk: Uint8Array | number[]): void;
}

/**
 * This device: its Olm account, the trust store (trust on first use), its Olm sessions with other devices
 * and its Megolm sessions per chat. Sans-IO: every method takes what the server answered (as the REST
 * API's JSON) and returns what to send (as JSON text); the caller owns the network, storage and clock.
 *
 * Methods that fail throw a `ParleyCoreError` (an `Error` with `code` and sometimes `details`). After any
 * call that changes the state (most of them), persist it with `save` before acting on the result where the
 * protocol says so (e.g. before acknowledging to-device messages or sending a message).
 */
export class Device {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Adopts the changed keys of a device after the user compared safety numbers out of band. Returns the
     * now trusted keys (`DeviceKeysJson`). Throws `unknown_devices` for an unknown device and
     * `envelope_mismatch` when it has no pending key change.
     */
    acceptKeyChange(user_id: string, device_id: string): Json<DeviceKeysJson>;
    /**
     * Decrypts a chat message of `chat_id` sent by the device (`sender_id`, `sender_device_id`) as the server
     * reports it, from the message's `algorithm` and `ciphertext`. Returns `DecryptedMessageJson`
     * (`{content, session_id, message_index}`; the same session and index under two message ids is a
     * replay). Throws `missing_room_key` when that device's room key has not arrived (yet).
     */
    decryptMessage(chat_id: string, sender_id: string, sender_device_id: string, algorithm: string, ciphertext: string): Json<DecryptedMessageJson>;
    /**
     * Decrypts one to-device message as `GET /to-device` or the `to_device` realtime frame delivers it
     * (`IncomingToDeviceJson`, `{id, sender_id, sender_device_id, ciphertext}`), checks it and applies it (a
     * room key is stored). Returns a `ToDeviceEventJson` (`{"RoomKey": {chat_id, session_id, sender}}`).
     * Throws `unknown_devices` when the sender's keys were never fetched: fetch them
     * (`observeUserDevices`) and retry before acknowledging; `unresolved_key_change` while the sender's key
     * change is not accepted (leave the message queued).
     */
    decryptToDevice(message_json: string): Json<ToDeviceEventJson>;
    /**
     * Forgets the chat's outbound session, so the next `prepareSend` starts a new one (e.g. when a
     * recipient device is suspected to be compromised).
     */
    discardOutboundSession(chat_id: string): void;
    /**
     * Encrypts a chat message (`MessageContentJson`: `{"type": "text", "body": ...}` or
     * `{"type": "file", "file": AttachmentInfoJson, "body": caption, "thumbnail"?: ThumbnailJson}`; a
     * thumbnail that is not a small raster image is left out) with the chat's current outbound
     * session. Returns `EncryptedMessageJson` (`{algorithm, ciphertext}`), the message API's fields. Save
     * the state before sending it. Throws `no_outbound_session` without a current session: call
     * `prepareSend` first.
     */
    encryptMessage(chat_id: string, content_json: string, now_unix_secs: number): Json<EncryptedMessageJson>;
    /**
     * Encrypts a to-device payload (`ToDevicePayloadJson`, `{"type": "parley.room_key", "content": {...}}`)
     * for one trusted device, over the most recent Olm session with it or a new one from `one_time_key_json`
     * (one item of the `POST /keys/claim` answer's `keys`, signature verified first). Returns the
     * `POST /to-device` item (`OutgoingToDeviceJson`). Chat room keys are better sent with `shareRoomKey`.
     */
    encryptToDevice(user_id: string, device_id: string, one_time_key_json: string | null | undefined, payload_json: string): Json<OutgoingToDeviceJson>;
    /**
     * Whether an Olm session with the device exists (otherwise reaching it needs a claimed one-time key).
     */
    hasOlmSession(user_id: string, device_id: string): boolean;
    /**
     * This device's public identity keys: `DeviceKeysJson` (`{user_id, device_id, curve25519, ed25519}`).
     */
    identityKeys(): Json<DeviceKeysJson>;
    /**
     * The body of `PUT /keys/devices/{device_id}` (`DeviceKeysUploadJson`): the signed identity keys and
     * every one-time and fallback key not published yet. Call `markPublished` once the server answered 200.
     */
    keysUpload(display_name?: string | null): Json<DeviceKeysUploadJson>;
    /**
     * What the trust store knows about one device (`KnownDeviceJson`: `{keys, display_name, listed,
     * pending_key_change}`), or `undefined` when its keys were never fetched.
     */
    knownDevice(user_id: string, device_id: string): Json<KnownDeviceJson> | undefined;
    /**
     * The user's devices the server's last listing contained, with their trusted keys (`DeviceKeysJson[]`).
     * The recipients of a chat message are these devices of every member (this device is left out by
     * `prepareSend` itself).
     */
    listedDevices(user_id: string): Json<DeviceKeysJson[]>;
    /**
     * Records that the last upload body was accepted by the server (its keys are no longer offered).
     */
    markPublished(): void;
    /**
     * A new device for `user_id` whose id is `device_id` (the session id of the login that registers it),
     * with fresh identity keys, 50 one-time keys and a fallback key, none published yet: publish them with
     * `keysUpload` then `markPublished`.
     */
    constructor(user_id: string, device_id: string);
    /**
     * Compares one user's device listing, the answer of `GET /keys/users/{user_id}` or one item of the
     * `POST /keys/query` answer's `users` (`UserDevicesJson`), with the trust store. New devices with valid
     * signatures are trusted; changed keys are reported and withheld until `acceptKeyChange`. Returns a
     * `DeviceListReportJson` (`{new_devices, removed_devices, key_changes, rejected_devices}`).
     */
    observeUserDevices(listing_json: string): Json<DeviceListReportJson>;
    /**
     * Makes sure the chat has an outbound Megolm session for exactly `recipients_json` (a
     * `DeviceAddressJson[]`, `[{user_id, device_id}]`: every listed device of every member; this device is
     * left out automatically), starting a new one when the recipients changed, after 100 messages or 7
     * days. `now_unix_secs` is the current time in seconds (`Date.now() / 1000`). Returns a
     * `SendPreparationJson` (`{session_id, rotated, needs_room_key, needs_one_time_key, withheld}`): claim
     * keys for `needs_one_time_key` (`POST /keys/claim`) and call `shareRoomKey`. Throws
     * `unknown_devices` when a recipient's keys were never fetched.
     */
    prepareSend(chat_id: string, recipients_json: string, now_unix_secs: number): Json<SendPreparationJson>;
    /**
     * Given the server's one-time key count (the upload answer's `one_time_key_count` or the
     * `one_time_keys.low` frame's `remaining`) and whether it has a fallback key, generates the keys to top
     * it up (to 50 once below 10; a new fallback key when it has none). Returns the upload body
     * (`DeviceKeysUploadJson`) when there is anything to publish, else `undefined`; after a successful
     * upload call `markPublished`.
     */
    replenishOneTimeKeys(server_one_time_key_count: number, server_has_fallback_key: boolean): Json<DeviceKeysUploadJson> | undefined;
    /**
     * Restores a device saved by `save` with the same 32-byte `key`. Throws `state_decryption` when the key
     * is wrong or the bytes were altered.
     */
    static restore(bytes: Uint8Array | number[], key: Uint8Array | number[]): Device;
    /**
     * The safety number between this user and `other_user_id` over the devices currently listed for both:
     * `SafetyNumberJson` (`{digits, grouped}`: 60 digits, and 12 groups of 5 separated by spaces).
     */
    safetyNumber(other_user_id: string): Json<SafetyNumberJson>;
    /**
     * The whole state, encrypted (ChaCha20-Poly1305) under the caller's 32-byte `key`, for IndexedDB or
     * similar. Contains every private key: never store it unencrypted elsewhere, never send it anywhere.
     */
    save(key: Uint8Array | number[]): Uint8Array;
    /**
     * Encrypts the chat's current room key for every recipient that lacks it, over existing Olm sessions or
     * the claimed one-time keys `claimed_keys_json`: the `POST /keys/claim` answer (`{"keys": [...]}`) or its
     * `keys` array (`ClaimedOneTimeKeyJson[]`); `"[]"` when nothing was claimed. Returns a
     * `RoomKeyShareJson`: send `messages` with `POST /to-device`; the devices listed in
     * `devices_without_one_time_key`, `rejected_one_time_keys` and `withheld` did not get the key.
     */
    shareRoomKey(chat_id: string, claimed_keys_json: string): Json<RoomKeyShareJson>;
    /**
     * The whole trust store (`TrustStoreJson`: `{devices: KnownDeviceJson[]}`), e.g. for a device list UI.
     */
    trustStore(): Json<TrustStoreJson>;
    /**
     * This device's id (UUID).
     */
    readonly deviceId: string;
    /**
     * The user this device belongs to (UUID).
     */
    readonly userId: string;
}

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_attachmentdecryptor_free: (a: number, b: number) => void;
    readonly __wbg_attachmentencryptor_free: (a: number, b: number) => void;
    readonly __wbg_attachmentverifier_free: (a: number, b: number) => void;
    readonly __wbg_device_free: (a: number, b: number) => void;
    readonly attachmentdecryptor_finish: (a: number) => [number, number];
    readonly attachmentdecryptor_new: (a: number, b: number) => [number, number, number];
    readonly attachmentdecryptor_update: (a: number, b: number, c: number) => [number, number, number, number];
    readonly attachmentencryptor_finish: (a: number) => [number, number, number, number];
    readonly attachmentencryptor_new: () => [number, number, number];
    readonly attachmentencryptor_update: (a: number, b: number, c: number) => [number, number, number, number];
    readonly attachmentverifier_finish: (a: number) => [number, number];
    readonly attachmentverifier_new: (a: number, b: number) => [number, number, number];
    readonly attachmentverifier_update: (a: number, b: number, c: number) => [number, number];
    readonly device_acceptKeyChange: (a: number, b: number, c: number, d: number, e: number) => [number, number, number, number];
    readonly device_decryptMessage: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number, j: number, k: number) => [number, number, number, number];
    readonly device_decryptToDevice: (a: number, b: number, c: number) => [number, number, number, number];
    readonly device_deviceId: (a: number) => [number, number];
    readonly device_discardOutboundSession: (a: number, b: number, c: number) => [number, number];
    readonly device_encryptMessage: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number, number, number];
    readonly device_encryptToDevice: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number) => [number, number, number, number];
    readonly device_hasOlmSession: (a: number, b: number, c: number, d: number, e: number) => [number, number, number];
    readonly device_identityKeys: (a: number) => [number, number, number, number];
    readonly device_keysUpload: (a: number, b: number, c: number) => [number, number, number, number];
    readonly device_knownDevice: (a: number, b: number, c: number, d: number, e: number) => [number, number, number, number];
    readonly device_listedDevices: (a: number, b: number, c: number) => [number, number, number, number];
    readonly device_markPublished: (a: number) => void;
    readonly device_new: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly device_observeUserDevices: (a: number, b: number, c: number) => [number, number, number, number];
    readonly device_prepareSend: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number, number, number];
    readonly device_replenishOneTimeKeys: (a: number, b: number, c: number) => [number, number, number, number];
    readonly device_restore: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly device_safetyNumber: (a: number, b: number, c: number) => [number, number, number, number];
    readonly device_save: (a: number, b: number, c: number) => [number, number, number, number];
    readonly device_shareRoomKey: (a: number, b: number, c: number, d: number, e: number) => [number, number, number, number];
    readonly device_trustStore: (a: number) => [number, number, number, number];
    readonly device_userId: (a: number) => [number, number];
    readonly __wbindgen_exn_store: (a: number) => void;
    readonly __externref_table_alloc: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
