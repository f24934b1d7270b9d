//! `Device`: this browser's end-to-end encryption state, the core's `OwnDevice`.

use std::collections::BTreeSet;

use parley_client_core::payloads::ToDevicePayload;
use parley_client_core::{ClaimedOneTimeKey, DeviceAddress, IncomingToDevice, MessageContent, OwnDevice, UserDevices};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

use crate::convert::{address, from_json, key32, to_json, uuid, whole_number};
use crate::Error;

/// This device: its Olm account, the trust store (trust on first use), its Olm sessions with other devices
/// and its Megolm sessions per chat. Sans-IO: every method takes what the server answered (as the REST
/// API's JSON) and returns what to send (as JSON text); the caller owns the network, storage and clock.
///
/// Methods that fail throw a `ParleyCoreError` (an `Error` with `code` and sometimes `details`). After any
/// call that changes the state (most of them), persist it with `save` before acting on the result where the
/// protocol says so (e.g. before acknowledging to-device messages or sending a message).
#[wasm_bindgen]
pub struct Device {
    inner: OwnDevice,
}

#[wasm_bindgen]
impl Device {
    /// A new device for `user_id` whose id is `device_id` (the session id of the login that registers it),
    /// with fresh identity keys, 50 one-time keys and a fallback key, none published yet: publish them with
    /// `keysUpload` then `markPublished`.
    #[wasm_bindgen(constructor)]
    pub fn new(user_id: &str, device_id: &str) -> Result<Device, Error> {
        Ok(Self { inner: OwnDevice::new(uuid("user id", user_id)?, uuid("device id", device_id)?) })
    }

    /// Restores a device saved by `save` with the same 32-byte `key`. Throws `state_decryption` when the key
    /// is wrong or the bytes were altered.
    pub fn restore(bytes: &[u8], key: &[u8]) -> Result<Device, Error> {
        let key = key32("state key", key)?;
        Ok(Self { inner: OwnDevice::from_encrypted_bytes(bytes, &key)? })
    }

    /// The whole state, encrypted (ChaCha20-Poly1305) under the caller's 32-byte `key`, for IndexedDB or
    /// similar. Contains every private key: never store it unencrypted elsewhere, never send it anywhere.
    pub fn save(&self, key: &[u8]) -> Result<Vec<u8>, Error> {
        let key = key32("state key", key)?;
        Ok(self.inner.to_encrypted_bytes(&key)?)
    }

    /// The user this device belongs to (UUID).
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> String {
        self.inner.address().user_id.to_string()
    }

    /// This device's id (UUID).
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.inner.address().device_id.to_string()
    }

    /// This device's public identity keys: `DeviceKeysJson` (`{user_id, device_id, curve25519, ed25519}`).
    #[wasm_bindgen(js_name = identityKeys, unchecked_return_type = "Json<DeviceKeysJson>")]
    pub fn identity_keys(&self) -> Result<String, Error> {
        to_json(&self.inner.identity_keys())
    }

    // ----- Publishing keys -----

    /// The body of `PUT /keys/devices/{device_id}` (`DeviceKeysUploadJson`): the signed identity keys and
    /// every one-time and fallback key not published yet. Call `markPublished` once the server answered 200.
    #[wasm_bindgen(js_name = keysUpload, unchecked_return_type = "Json<DeviceKeysUploadJson>")]
    pub fn keys_upload(&self, display_name: Option<String>) -> Result<String, Error> {
        to_json(&self.inner.keys_upload(display_name.as_deref())?)
    }

    /// Records that the last upload body was accepted by the server (its keys are no longer offered).
    #[wasm_bindgen(js_name = markPublished)]
    pub fn mark_published(&mut self) {
        self.inner.mark_published();
    }

    /// Given the server's one-time key count (the upload answer's `one_time_key_count` or the
    /// `one_time_keys.low` frame's `remaining`) and whether it has a fallback key, generates the keys to top
    /// it up (to 50 once below 10; a new fallback key when it has none). Returns the upload body
    /// (`DeviceKeysUploadJson`) when there is anything to publish, else `undefined`; after a successful
    /// upload call `markPublished`.
    #[wasm_bindgen(js_name = replenishOneTimeKeys, unchecked_return_type = "Json<DeviceKeysUploadJson> | undefined")]
    pub fn replenish_one_time_keys(
        &mut self,
        server_one_time_key_count: f64,
        server_has_fallback_key: bool,
    ) -> Result<Option<String>, Error> {
        let count = whole_number("one-time key count", server_one_time_key_count)?;
        match self.inner.replenish_one_time_keys(count, server_has_fallback_key)? {
            Some(upload) => Ok(Some(to_json(&upload)?)),
            None => Ok(None),
        }
    }

    // ----- Trust -----

    /// Compares one user's device listing, the answer of `GET /keys/users/{user_id}` or one item of the
    /// `POST /keys/query` answer's `users` (`UserDevicesJson`), with the trust store. New devices with valid
    /// signatures are trusted; changed keys are reported and withheld until `acceptKeyChange`. Returns a
    /// `DeviceListReportJson` (`{new_devices, removed_devices, key_changes, rejected_devices}`).
    #[wasm_bindgen(js_name = observeUserDevices, unchecked_return_type = "Json<DeviceListReportJson>")]
    pub fn observe_user_devices(&mut self, listing_json: &str) -> Result<String, Error> {
        let listing: UserDevices = from_json("device listing", listing_json)?;
        to_json(&self.inner.observe_user_devices(&listing))
    }

    /// Adopts the changed keys of a device after the user compared safety numbers out of band. Returns the
    /// now trusted keys (`DeviceKeysJson`). Throws `unknown_devices` for an unknown device and
    /// `envelope_mismatch` when it has no pending key change.
    #[wasm_bindgen(js_name = acceptKeyChange, unchecked_return_type = "Json<DeviceKeysJson>")]
    pub fn accept_key_change(&mut self, user_id: &str, device_id: &str) -> Result<String, Error> {
        to_json(&self.inner.accept_key_change(address(user_id, device_id)?)?)
    }

    /// What the trust store knows about one device (`KnownDeviceJson`: `{keys, display_name, listed,
    /// pending_key_change}`), or `undefined` when its keys were never fetched.
    #[wasm_bindgen(js_name = knownDevice, unchecked_return_type = "Json<KnownDeviceJson> | undefined")]
    pub fn known_device(&self, user_id: &str, device_id: &str) -> Result<Option<String>, Error> {
        match self.inner.trust_store().device(address(user_id, device_id)?) {
            Some(known) => Ok(Some(to_json(known)?)),
            None => Ok(None),
        }
    }

    /// The user's devices the server's last listing contained, with their trusted keys (`DeviceKeysJson[]`).
    /// The recipients of a chat message are these devices of every member (this device is left out by
    /// `prepareSend` itself).
    #[wasm_bindgen(js_name = listedDevices, unchecked_return_type = "Json<DeviceKeysJson[]>")]
    pub fn listed_devices(&self, user_id: &str) -> Result<String, Error> {
        to_json(&self.inner.trust_store().listed_devices(uuid("user id", user_id)?))
    }

    /// The whole trust store (`TrustStoreJson`: `{devices: KnownDeviceJson[]}`), e.g. for a device list UI.
    #[wasm_bindgen(js_name = trustStore, unchecked_return_type = "Json<TrustStoreJson>")]
    pub fn trust_store(&self) -> Result<String, Error> {
        to_json(self.inner.trust_store())
    }

    /// The safety number between this user and `other_user_id` over the devices currently listed for both:
    /// `SafetyNumberJson` (`{digits, grouped}`: 60 digits, and 12 groups of 5 separated by spaces).
    #[wasm_bindgen(js_name = safetyNumber, unchecked_return_type = "Json<SafetyNumberJson>")]
    pub fn safety_number(&self, other_user_id: &str) -> Result<String, Error> {
        let number = self.inner.safety_number_with(uuid("other user id", other_user_id)?);
        to_json(&json!({"digits": number.compact(), "grouped": number.grouped()}))
    }

    // ----- Olm -----

    /// Whether an Olm session with the device exists (otherwise reaching it needs a claimed one-time key).
    #[wasm_bindgen(js_name = hasOlmSession)]
    pub fn has_olm_session(&self, user_id: &str, device_id: &str) -> Result<bool, Error> {
        Ok(self.inner.has_olm_session(address(user_id, device_id)?))
    }

    /// Encrypts a to-device payload (`ToDevicePayloadJson`, `{"type": "parley.room_key", "content": {...}}`)
    /// for one trusted device, over the most recent Olm session with it or a new one from `one_time_key_json`
    /// (one item of the `POST /keys/claim` answer's `keys`, signature verified first). Returns the
    /// `POST /to-device` item (`OutgoingToDeviceJson`). Chat room keys are better sent with `shareRoomKey`.
    #[wasm_bindgen(js_name = encryptToDevice, unchecked_return_type = "Json<OutgoingToDeviceJson>")]
    pub fn encrypt_to_device(
        &mut self,
        user_id: &str,
        device_id: &str,
        one_time_key_json: Option<String>,
        payload_json: &str,
    ) -> Result<String, Error> {
        let recipient = address(user_id, device_id)?;
        let one_time_key: Option<ClaimedOneTimeKey> = match one_time_key_json {
            Some(json) => Some(from_json("claimed one-time key", &json)?),
            None => None,
        };
        let payload: ToDevicePayload = from_json("to-device payload", payload_json)?;
        to_json(&self.inner.encrypt_to_device(recipient, one_time_key.as_ref(), payload)?)
    }

    /// Decrypts one to-device message as `GET /to-device` or the `to_device` realtime frame delivers it
    /// (`IncomingToDeviceJson`, `{id, sender_id, sender_device_id, ciphertext}`), checks it and applies it (a
    /// room key is stored). Returns a `ToDeviceEventJson` (`{"RoomKey": {chat_id, session_id, sender}}`).
    /// Throws `unknown_devices` when the sender's keys were never fetched: fetch them
    /// (`observeUserDevices`) and retry before acknowledging; `unresolved_key_change` while the sender's key
    /// change is not accepted (leave the message queued).
    #[wasm_bindgen(js_name = decryptToDevice, unchecked_return_type = "Json<ToDeviceEventJson>")]
    pub fn decrypt_to_device(&mut self, message_json: &str) -> Result<String, Error> {
        let message: IncomingToDevice = from_json("to-device message", message_json)?;
        to_json(&self.inner.decrypt_to_device(&message)?)
    }

    // ----- Megolm -----

    /// Makes sure the chat has an outbound Megolm session for exactly `recipients_json` (a
    /// `DeviceAddressJson[]`, `[{user_id, device_id}]`: every listed device of every member; this device is
    /// left out automatically), starting a new one when the recipients changed, after 100 messages or 7
    /// days. `now_unix_secs` is the current time in seconds (`Date.now() / 1000`). Returns a
    /// `SendPreparationJson` (`{session_id, rotated, needs_room_key, needs_one_time_key, withheld}`): claim
    /// keys for `needs_one_time_key` (`POST /keys/claim`) and call `shareRoomKey`. Throws
    /// `unknown_devices` when a recipient's keys were never fetched.
    #[wasm_bindgen(js_name = prepareSend, unchecked_return_type = "Json<SendPreparationJson>")]
    pub fn prepare_send(&mut self, chat_id: &str, recipients_json: &str, now_unix_secs: f64) -> Result<String, Error> {
        let chat_id = uuid("chat id", chat_id)?;
        let recipients: BTreeSet<DeviceAddress> = from_json("recipients", recipients_json)?;
        let now = whole_number("time", now_unix_secs)?;
        to_json(&self.inner.prepare_send(chat_id, &recipients, now)?)
    }

    /// Encrypts the chat's current room key for every recipient that lacks it, over existing Olm sessions or
    /// the claimed one-time keys `claimed_keys_json`: the `POST /keys/claim` answer (`{"keys": [...]}`) or its
    /// `keys` array (`ClaimedOneTimeKeyJson[]`); `"[]"` when nothing was claimed. Returns a
    /// `RoomKeyShareJson`: send `messages` with `POST /to-device`; the devices listed in
    /// `devices_without_one_time_key`, `rejected_one_time_keys` and `withheld` did not get the key.
    #[wasm_bindgen(js_name = shareRoomKey, unchecked_return_type = "Json<RoomKeyShareJson>")]
    pub fn share_room_key(&mut self, chat_id: &str, claimed_keys_json: &str) -> Result<String, Error> {
        let chat_id = uuid("chat id", chat_id)?;
        let claimed = claimed_keys(claimed_keys_json)?;
        to_json(&self.inner.share_room_key(chat_id, &claimed)?)
    }

    /// Forgets the chat's outbound session, so the next `prepareSend` starts a new one (e.g. when a
    /// recipient device is suspected to be compromised).
    #[wasm_bindgen(js_name = discardOutboundSession)]
    pub fn discard_outbound_session(&mut self, chat_id: &str) -> Result<(), Error> {
        self.inner.discard_outbound_session(uuid("chat id", chat_id)?);
        Ok(())
    }

    /// Encrypts a chat message (`MessageContentJson`: `{"type": "text", "body": ...}` or
    /// `{"type": "file", "file": AttachmentInfoJson, "body": caption, "thumbnail"?: ThumbnailJson}`; a
    /// thumbnail that is not a small raster image is left out) with the chat's current outbound
    /// session. Returns `EncryptedMessageJson` (`{algorithm, ciphertext}`), the message API's fields. Save
    /// the state before sending it. Throws `no_outbound_session` without a current session: call
    /// `prepareSend` first.
    #[wasm_bindgen(js_name = encryptMessage, unchecked_return_type = "Json<EncryptedMessageJson>")]
    pub fn encrypt_message(&mut self, chat_id: &str, content_json: &str, now_unix_secs: f64) -> Result<String, Error> {
        let chat_id = uuid("chat id", chat_id)?;
        let content: MessageContent = from_json("message content", content_json)?;
        let now = whole_number("time", now_unix_secs)?;
        to_json(&self.inner.encrypt_message(chat_id, &content, now)?)
    }

    /// Decrypts a chat message of `chat_id` sent by the device (`sender_id`, `sender_device_id`) as the server
    /// reports it, from the message's `algorithm` and `ciphertext`. Returns `DecryptedMessageJson`
    /// (`{content, session_id, message_index}`; the same session and index under two message ids is a
    /// replay). Throws `missing_room_key` when that device's room key has not arrived (yet).
    #[wasm_bindgen(js_name = decryptMessage, unchecked_return_type = "Json<DecryptedMessageJson>")]
    pub fn decrypt_message(
        &mut self,
        chat_id: &str,
        sender_id: &str,
        sender_device_id: &str,
        algorithm: &str,
        ciphertext: &str,
    ) -> Result<String, Error> {
        let chat_id = uuid("chat id", chat_id)?;
        let sender = address(sender_id, sender_device_id)?;
        to_json(&self.inner.decrypt_message(chat_id, sender, algorithm, ciphertext)?)
    }
}

/// The claimed keys: the whole `POST /keys/claim` answer or its `keys` array.
fn claimed_keys(json: &str) -> Result<Vec<ClaimedOneTimeKey>, Error> {
    let mut value: Value = from_json("claimed one-time keys", json)?;
    if let Some(keys) = value.as_object_mut().and_then(|answer| answer.remove("keys")) {
        value = keys;
    }
    serde_json::from_value(value).map_err(|error| Error::invalid_argument("claimed one-time keys", error))
}
