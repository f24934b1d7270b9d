//! WebAssembly binding of `parley-client-core` for browsers, built by `scripts/build-wasm` into the
//! `@parley/core` package (`web/packages/core`).
//!
//! JavaScript sees:
//! - [`Device`]: the core's `OwnDevice` (keys, trust, Olm, Megolm, encrypted save/restore);
//! - [`AttachmentEncryptor`], [`AttachmentDecryptor`], [`AttachmentVerifier`]: streaming attachment crypto.
//!
//! Structured values cross the boundary as JSON text in the serde shapes of the core's own types, which are
//! the shapes of `docs/e2ee.md` and of the REST API: pass the server's JSON in, send what comes out. The
//! TypeScript declarations name each shape (`Json<DeviceKeysJson>` is a string holding a `DeviceKeysJson`).
//! Failures throw a `ParleyCoreError` ([`Error`]). The same API is plain Rust on other targets, which is
//! how the host tests drive it.

mod attachment;
mod convert;
mod device;
mod error;

pub use attachment::{AttachmentDecryptor, AttachmentEncryptor, AttachmentVerifier};
pub use device::Device;
pub use error::Error;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const JSON_SHAPES: &str = r#"
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
"#;
