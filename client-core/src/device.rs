//! This device's end-to-end encryption state: its Olm account, the trust store, Olm sessions with other
//! devices, and Megolm sessions per chat. Sans-IO: every method takes what the server said and returns what
//! to send; the caller owns the network, the storage and the clock.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vodozemac::megolm::{GroupSession, InboundGroupSession, MegolmMessage, SessionKey, SessionOrdering};
use vodozemac::olm::{Account, OlmMessage, Session};
use vodozemac::Curve25519PublicKey;

use crate::canonical::{device_keys_signing_input, one_time_key_signing_input};
use crate::encoding::{b64_decode, b64_padded_decode, b64_padded_encode};
use crate::keys::{verify_claimed_key, ClaimedOneTimeKey, DeviceKeys, DeviceKeysUpload, SignedIdentityKeys};
use crate::keys::{SignedOneTimeKey, UserDevices};
use crate::payloads::{
    EncryptedMessage, IncomingToDevice, MegolmEnvelope, MegolmPlaintext, MessageContent, OlmEnvelope, OlmPlaintext,
    OutgoingToDevice, RoomKeyContent, ToDevicePayload, MEGOLM_ALGORITHM, OLM_ALGORITHM,
};
use crate::safety::{safety_number, SafetyNumber};
use crate::trust::{DeviceListReport, TrustStore};
use crate::{CoreError, DeviceAddress, Result};

/// One-time keys the server should hold for this device.
pub const ONE_TIME_KEY_TARGET: u64 = 50;
/// Below this many one-time keys on the server, top up to [`ONE_TIME_KEY_TARGET`] (the server's
/// `one_time_keys.low` threshold).
pub const ONE_TIME_KEY_THRESHOLD: u64 = 10;
/// An outbound Megolm session encrypts at most this many messages.
pub const MEGOLM_ROTATION_MESSAGES: u32 = 100;
/// An outbound Megolm session is used for at most this long.
pub const MEGOLM_ROTATION_SECONDS: u64 = 7 * 24 * 60 * 60;
/// Olm sessions kept per peer device; older ones are dropped (a peer may start a new session any time).
const OLM_SESSIONS_PER_DEVICE: usize = 8;

/// What `prepare_send` found for a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendPreparation {
    /// The outbound Megolm session the next message will use.
    pub session_id: String,
    /// Whether a new session was started (recipients changed, 100 messages, 7 days, or none yet).
    pub rotated: bool,
    /// Recipient devices that have not been sent this session's key yet: call `share_room_key`.
    pub needs_room_key: Vec<DeviceAddress>,
    /// The subset of `needs_room_key` without an Olm session: claim a one-time key for each
    /// (`POST /keys/claim`) and pass the answer to `share_room_key`.
    pub needs_one_time_key: Vec<DeviceAddress>,
    /// Recipients whose keys changed without being accepted: they are not given the key.
    pub withheld: Vec<DeviceAddress>,
}

/// What `share_room_key` produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomKeyShare {
    /// Items for `POST /to-device`.
    pub messages: Vec<OutgoingToDevice>,
    /// Devices with neither an Olm session nor a claimed key (the server had none): retry later.
    pub devices_without_one_time_key: Vec<DeviceAddress>,
    /// Devices whose claimed key was refused (bad signature or malformed), with the reason.
    pub rejected_one_time_keys: Vec<(DeviceAddress, String)>,
    /// Devices whose keys changed since `prepare_send` and were not given the key (the next
    /// `prepare_send` rotates the session).
    pub withheld: Vec<DeviceAddress>,
}

impl RoomKeyShare {
    /// Files a device the key could not be encrypted for under its reason; returns the errors that end
    /// the whole share instead.
    fn sort_failure(&mut self, device: DeviceAddress, error: CoreError) -> Option<CoreError> {
        match error {
            CoreError::MissingOneTimeKey(_) => self.devices_without_one_time_key.push(device),
            CoreError::UnresolvedKeyChange(_) => self.withheld.push(device),
            error @ (CoreError::BadSignature { .. } | CoreError::Malformed { .. }) => {
                self.rejected_one_time_keys.push((device, error.to_string()));
            }
            error => return Some(error),
        }
        None
    }
}

/// One to-device encryption: everything it needs from the device's state, so that many can run at once
/// against a shared `&Account`.
struct OlmJob<'k> {
    recipient: DeviceAddress,
    recipient_keys: DeviceKeys,
    /// The recipient's Curve25519 key (base64), the key of its sessions in `olm_sessions`.
    peer_key: String,
    plaintext: Vec<u8>,
    /// The most recently used session with the recipient, taken out of the store; `None` starts one
    /// from `one_time_key`.
    session: Option<Session>,
    one_time_key: Option<&'k ClaimedOneTimeKey>,
}

/// A finished [`OlmJob`]: the session to put back (even when encrypting failed) and the message.
struct OlmOutcome {
    recipient: DeviceAddress,
    peer_key: String,
    session: Option<Session>,
    message: Result<OutgoingToDevice>,
}

impl OlmJob<'_> {
    fn run(self, account: &Account) -> OlmOutcome {
        let OlmJob { recipient, recipient_keys, peer_key, plaintext, session, one_time_key } = self;
        let mut session = match (session, one_time_key) {
            (Some(session), _) => session,
            (None, Some(claimed)) => match start_olm_session(account, &recipient_keys, claimed) {
                Ok(session) => session,
                Err(error) => return OlmOutcome { recipient, peer_key, session: None, message: Err(error) },
            },
            (None, None) => {
                let message = Err(CoreError::MissingOneTimeKey(recipient));
                return OlmOutcome { recipient, peer_key, session: None, message };
            }
        };
        let message =
            session.encrypt(plaintext).map_err(|error| CoreError::Olm(error.to_string())).and_then(|message| {
                let (message_type, body) = message.to_parts();
                let envelope = OlmEnvelope {
                    algorithm: OLM_ALGORITHM.to_owned(),
                    sender_key: account.identity_keys().curve25519.to_base64(),
                    message_type: if message_type == 0 { 0 } else { 1 },
                    body: crate::encoding::b64_encode(body),
                };
                let ciphertext =
                    serde_json::to_string(&envelope).map_err(|error| CoreError::malformed("Olm envelope", error))?;
                Ok(OutgoingToDevice { user_id: recipient.user_id, device_id: recipient.device_id, ciphertext })
            });
        OlmOutcome { recipient, peer_key, session: Some(session), message }
    }
}

/// An outbound Olm session to `recipient` from its claimed one-time key, whose signature is checked first.
fn start_olm_session(account: &Account, recipient: &DeviceKeys, claimed: &ClaimedOneTimeKey) -> Result<Session> {
    let one_time_key = verify_claimed_key(recipient, claimed)?;
    account
        .create_outbound_session(vodozemac::olm::SessionConfig::version_1(), recipient.curve25519, one_time_key)
        .map_err(|error| CoreError::Olm(error.to_string()))
}

/// A decrypted to-device message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToDeviceEvent {
    /// A room key was stored; messages of that session from `sender` in `chat_id` can now be decrypted.
    RoomKey {
        /// The chat.
        chat_id: Uuid,
        /// The Megolm session id.
        session_id: String,
        /// The device that sent the key (and alone may use it).
        sender: DeviceAddress,
    },
}

/// A decrypted chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecryptedMessage {
    /// The content.
    pub content: MessageContent,
    /// The Megolm session that encrypted it.
    pub session_id: String,
    /// Its index in that session: the same (session, index) under two message ids is a replay.
    pub message_index: u32,
}

pub(crate) struct OutboundRoomSession {
    pub(crate) session: GroupSession,
    /// The session key at index 0: every device in `recipients` may read every message of the session.
    pub(crate) initial_session_key: String,
    pub(crate) created_at_unix_secs: u64,
    pub(crate) recipients: BTreeSet<DeviceAddress>,
    pub(crate) shared_with: BTreeSet<DeviceAddress>,
}

impl OutboundRoomSession {
    fn is_expired(&self, now_unix_secs: u64) -> bool {
        self.session.message_index() >= MEGOLM_ROTATION_MESSAGES
            || now_unix_secs.saturating_sub(self.created_at_unix_secs) >= MEGOLM_ROTATION_SECONDS
    }
}

pub(crate) struct InboundRoomSession {
    pub(crate) session: InboundGroupSession,
    pub(crate) chat_id: Uuid,
    pub(crate) sender: DeviceAddress,
}

/// This device: its account and every session it holds.
pub struct OwnDevice {
    pub(crate) user_id: Uuid,
    pub(crate) device_id: Uuid,
    pub(crate) account: Account,
    pub(crate) trust: TrustStore,
    /// Olm sessions by the peer's Curve25519 key (base64), most recently used first.
    pub(crate) olm_sessions: BTreeMap<String, Vec<Session>>,
    pub(crate) outbound: BTreeMap<Uuid, OutboundRoomSession>,
    /// Inbound Megolm sessions by session id.
    pub(crate) inbound: BTreeMap<String, InboundRoomSession>,
}

impl OwnDevice {
    /// A new device with fresh identity keys, [`ONE_TIME_KEY_TARGET`] one-time keys and a fallback key, none
    /// published yet.
    pub fn new(user_id: Uuid, device_id: Uuid) -> Self {
        let mut account = Account::new();
        account.generate_one_time_keys(ONE_TIME_KEY_TARGET as usize);
        account.generate_fallback_key();
        let mut device = Self {
            user_id,
            device_id,
            account,
            trust: TrustStore::new(),
            olm_sessions: BTreeMap::new(),
            outbound: BTreeMap::new(),
            inbound: BTreeMap::new(),
        };
        device.trust.insert_own(device.identity_keys());
        device
    }

    /// This device's address.
    pub const fn address(&self) -> DeviceAddress {
        DeviceAddress::new(self.user_id, self.device_id)
    }

    /// This device's public identity keys.
    pub fn identity_keys(&self) -> DeviceKeys {
        let keys = self.account.identity_keys();
        DeviceKeys {
            user_id: self.user_id,
            device_id: self.device_id,
            curve25519: keys.curve25519,
            ed25519: keys.ed25519,
        }
    }

    /// The trust store (read-only).
    pub const fn trust_store(&self) -> &TrustStore {
        &self.trust
    }

    // ----- Publishing keys -----

    /// The body of `PUT /keys/devices/{device_id}`: signed identity keys and every unpublished one-time and
    /// fallback key. Call [`mark_published`](Self::mark_published) after the server answered 200.
    pub fn keys_upload(&self, display_name: Option<&str>) -> Result<DeviceKeysUpload> {
        let keys = self.account.identity_keys();
        let curve25519 = keys.curve25519.to_base64();
        let ed25519 = keys.ed25519.to_base64();
        let signed = device_keys_signing_input(self.user_id, self.device_id, &curve25519, &ed25519)?;
        let identity_keys =
            SignedIdentityKeys { curve25519, ed25519, signature: self.account.sign(signed).to_base64() };

        let mut one_time_keys: Vec<_> = self.account.one_time_keys().into_iter().collect();
        one_time_keys.sort_by_key(|(key_id, _)| *key_id);
        let one_time_keys = one_time_keys
            .into_iter()
            .map(|(key_id, key)| self.sign_one_time_key(&key_id.to_base64(), key, false))
            .collect::<Result<Vec<_>>>()?;
        let fallback_key = match self.account.fallback_key().into_iter().next() {
            Some((key_id, key)) => Some(self.sign_one_time_key(&key_id.to_base64(), key, true)?),
            None => None,
        };
        Ok(DeviceKeysUpload {
            display_name: display_name.map(str::to_owned),
            identity_keys,
            one_time_keys,
            fallback_key,
        })
    }

    fn sign_one_time_key(&self, key_id: &str, key: Curve25519PublicKey, fallback: bool) -> Result<SignedOneTimeKey> {
        let curve25519 = key.to_base64();
        let signed = one_time_key_signing_input(self.user_id, self.device_id, key_id, &curve25519, fallback)?;
        Ok(SignedOneTimeKey { key_id: key_id.to_owned(), curve25519, signature: self.account.sign(signed).to_base64() })
    }

    /// Records that the last [`keys_upload`](Self::keys_upload) body was accepted by the server.
    pub fn mark_published(&mut self) {
        self.account.mark_keys_as_published();
    }

    /// Given the server's count (upload answer, or the `one_time_keys.low` frame's `remaining`), generates keys
    /// to top the server up to [`ONE_TIME_KEY_TARGET`] once it is below [`ONE_TIME_KEY_THRESHOLD`], and a
    /// fallback key when the server has none. Returns the upload body when there is anything to publish.
    pub fn replenish_one_time_keys(
        &mut self,
        server_one_time_key_count: u64,
        server_has_fallback_key: bool,
    ) -> Result<Option<DeviceKeysUpload>> {
        if server_one_time_key_count < ONE_TIME_KEY_THRESHOLD {
            // Keys generated for an upload that failed are still unpublished and count towards the target.
            let unpublished = self.account.one_time_keys().len() as u64;
            let missing = ONE_TIME_KEY_TARGET.saturating_sub(server_one_time_key_count + unpublished);
            if missing > 0 {
                self.account.generate_one_time_keys(missing as usize);
            }
        }
        if !server_has_fallback_key && self.account.fallback_key().is_empty() {
            self.account.generate_fallback_key();
        }
        if self.account.one_time_keys().is_empty() && self.account.fallback_key().is_empty() {
            return Ok(None);
        }
        self.keys_upload(None).map(Some)
    }

    // ----- Trust -----

    /// Compares a user's device listing with the trust store (see [`TrustStore::observe_user_devices`]).
    pub fn observe_user_devices(&mut self, listing: &UserDevices) -> DeviceListReport {
        self.trust.observe_user_devices(listing)
    }

    /// Adopts a device's changed keys after the user confirmed them out of band.
    pub fn accept_key_change(&mut self, device: DeviceAddress) -> Result<DeviceKeys> {
        self.trust.accept_key_change(device)
    }

    /// The safety number between this user and `other_user`, over the devices currently listed for both.
    pub fn safety_number_with(&self, other_user: Uuid) -> SafetyNumber {
        let own_keys: Vec<_> = self.trust.listed_devices(self.user_id).iter().map(|keys| keys.ed25519).collect();
        let other_keys: Vec<_> = self.trust.listed_devices(other_user).iter().map(|keys| keys.ed25519).collect();
        safety_number(self.user_id, &own_keys, other_user, &other_keys)
    }

    // ----- Olm -----

    /// Whether an Olm session with `device` exists (else a claimed one-time key is needed to reach it).
    pub fn has_olm_session(&self, device: DeviceAddress) -> bool {
        self.trust
            .device(device)
            .and_then(|known| self.olm_sessions.get(&known.keys.curve25519.to_base64()))
            .is_some_and(|sessions| !sessions.is_empty())
    }

    /// Encrypts `payload` for one device, reusing the most recent Olm session with it or creating one from
    /// `one_time_key` (whose signature is verified first). Returns the `POST /to-device` item.
    pub fn encrypt_to_device(
        &mut self,
        recipient: DeviceAddress,
        one_time_key: Option<&ClaimedOneTimeKey>,
        payload: ToDevicePayload,
    ) -> Result<OutgoingToDevice> {
        let job = self.olm_job(recipient, one_time_key, &payload)?;
        let outcome = job.run(&self.account);
        self.finish_olm_job(outcome)
    }

    /// What encrypting `payload` for `recipient` needs, its current Olm session taken out of the store.
    fn olm_job<'k>(
        &mut self,
        recipient: DeviceAddress,
        one_time_key: Option<&'k ClaimedOneTimeKey>,
        payload: &ToDevicePayload,
    ) -> Result<OlmJob<'k>> {
        let recipient_keys = self.trust.trusted_keys(recipient)?;
        let own_keys = self.account.identity_keys();
        let plaintext = OlmPlaintext {
            sender_user: self.user_id,
            sender_device: self.device_id,
            sender_ed25519: own_keys.ed25519.to_base64(),
            recipient_user: recipient.user_id,
            recipient_device: recipient.device_id,
            recipient_ed25519: recipient_keys.ed25519.to_base64(),
            payload: payload.clone(),
        };
        let plaintext = serde_json::to_vec(&plaintext).map_err(|error| CoreError::malformed("Olm plaintext", error))?;
        let peer_key = recipient_keys.curve25519.to_base64();
        let session = self.olm_sessions.get_mut(&peer_key).filter(|sessions| !sessions.is_empty()).map(|s| s.remove(0));
        if session.is_none() && one_time_key.is_none() {
            return Err(CoreError::MissingOneTimeKey(recipient));
        }
        Ok(OlmJob { recipient, recipient_keys, peer_key, plaintext, session, one_time_key })
    }

    /// Puts the job's session (reused or new) back and returns its message.
    fn finish_olm_job(&mut self, outcome: OlmOutcome) -> Result<OutgoingToDevice> {
        self.return_session(outcome.peer_key, outcome.session);
        outcome.message
    }

    /// Puts `session` in front of the peer's sessions, as the most recently used.
    fn return_session(&mut self, peer_key: String, session: Option<Session>) {
        if let Some(session) = session {
            let sessions = self.olm_sessions.entry(peer_key).or_default();
            sessions.insert(0, session);
            sessions.truncate(OLM_SESSIONS_PER_DEVICE);
        }
    }

    /// Decrypts a to-device message, checks it against its envelope and this device, and applies it (a room
    /// key is stored). Fails with [`CoreError::UnknownDevices`] when the sender's keys are not known yet:
    /// fetch them and retry before acknowledging the message.
    pub fn decrypt_to_device(&mut self, message: &IncomingToDevice) -> Result<ToDeviceEvent> {
        let sender = DeviceAddress::new(message.sender_id, message.sender_device_id);
        let envelope: OlmEnvelope =
            serde_json::from_str(&message.ciphertext).map_err(|error| CoreError::malformed("Olm envelope", error))?;
        if envelope.algorithm != OLM_ALGORITHM {
            return Err(CoreError::UnsupportedAlgorithm(envelope.algorithm));
        }
        let sender_keys = self.trust.trusted_keys(sender)?;
        if envelope.sender_key != sender_keys.curve25519.to_base64() {
            return Err(CoreError::EnvelopeMismatch("sender_key is not the sending device's identity key"));
        }
        let body = b64_decode("Olm message body", &envelope.body)?;
        let olm_message = OlmMessage::from_parts(usize::from(envelope.message_type), &body)
            .map_err(|error| CoreError::malformed("Olm message", error))?;
        let plaintext = self.olm_decrypt(sender, sender_keys.curve25519, &olm_message)?;
        let plaintext: OlmPlaintext =
            serde_json::from_slice(&plaintext).map_err(|error| CoreError::malformed("Olm plaintext", error))?;

        if plaintext.sender_user != sender.user_id || plaintext.sender_device != sender.device_id {
            return Err(CoreError::EnvelopeMismatch("the plaintext names another sender"));
        }
        if plaintext.sender_ed25519 != sender_keys.ed25519.to_base64() {
            return Err(CoreError::EnvelopeMismatch("the plaintext names another sender signing key"));
        }
        if plaintext.recipient_user != self.user_id
            || plaintext.recipient_device != self.device_id
            || plaintext.recipient_ed25519 != self.account.identity_keys().ed25519.to_base64()
        {
            return Err(CoreError::EnvelopeMismatch("the plaintext was written for another device"));
        }
        match plaintext.payload {
            ToDevicePayload::RoomKey(content) => self.receive_room_key(sender, content),
        }
    }

    fn olm_decrypt(
        &mut self,
        sender: DeviceAddress,
        sender_curve25519: Curve25519PublicKey,
        message: &OlmMessage,
    ) -> Result<Vec<u8>> {
        let sessions = self.olm_sessions.entry(sender_curve25519.to_base64()).or_default();
        let pre_key_session = match message {
            OlmMessage::PreKey(pre_key) => Some(pre_key.session_keys()),
            OlmMessage::Normal(_) => None,
        };
        for index in 0..sessions.len() {
            let Some(session) = sessions.get_mut(index) else { break };
            // A pre-key message belongs to exactly one session; trying others would only waste work.
            if pre_key_session.is_some_and(|keys| keys != session.session_keys()) {
                continue;
            }
            if let Ok(plaintext) = session.decrypt(message) {
                let used = sessions.remove(index);
                sessions.insert(0, used);
                return Ok(plaintext);
            }
        }
        let OlmMessage::PreKey(pre_key) = message else {
            return Err(CoreError::Olm(format!("no Olm session with {sender} decrypts this message")));
        };
        let created = self
            .account
            .create_inbound_session(vodozemac::olm::SessionConfig::version_1(), sender_curve25519, pre_key)
            .map_err(|error| CoreError::Olm(error.to_string()))?;
        sessions.insert(0, created.session);
        sessions.truncate(OLM_SESSIONS_PER_DEVICE);
        Ok(created.plaintext)
    }

    // ----- Megolm -----

    fn receive_room_key(&mut self, sender: DeviceAddress, content: RoomKeyContent) -> Result<ToDeviceEvent> {
        if content.algorithm != MEGOLM_ALGORITHM {
            return Err(CoreError::UnsupportedAlgorithm(content.algorithm));
        }
        let session_key = SessionKey::from_base64(&content.session_key)
            .map_err(|error| CoreError::malformed("session key", error))?;
        let mut session = InboundGroupSession::new(&session_key, vodozemac::megolm::SessionConfig::version_1());
        if session.session_id() != content.session_id {
            return Err(CoreError::EnvelopeMismatch("session_id does not match the session key"));
        }
        let event = ToDeviceEvent::RoomKey { chat_id: content.chat_id, session_id: content.session_id.clone(), sender };
        match self.inbound.get_mut(&content.session_id) {
            Some(known) => {
                // A session id is the session's public key: a second sender or chat for it is a forgery.
                if known.sender != sender || known.chat_id != content.chat_id {
                    return Err(CoreError::EnvelopeMismatch("room key already known from another device or chat"));
                }
                if session.compare(&mut known.session) == SessionOrdering::Better {
                    known.session = session;
                }
            }
            None => {
                self.inbound
                    .insert(content.session_id, InboundRoomSession { session, chat_id: content.chat_id, sender });
            }
        }
        Ok(event)
    }

    /// Makes sure `chat_id` has an outbound Megolm session for exactly `recipients` (this device is left out
    /// automatically), starting a new one when the recipient set changed, after 100 messages or after 7
    /// days, and says which devices still need its key. Fails with [`CoreError::UnknownDevices`] when a
    /// recipient's keys were never fetched.
    pub fn prepare_send(
        &mut self,
        chat_id: Uuid,
        recipients: &BTreeSet<DeviceAddress>,
        now_unix_secs: u64,
    ) -> Result<SendPreparation> {
        let own = self.address();
        let unknown: Vec<_> =
            recipients.iter().filter(|device| self.trust.device(**device).is_none()).copied().collect();
        if !unknown.is_empty() {
            return Err(CoreError::UnknownDevices(unknown));
        }
        let (withheld, effective): (BTreeSet<_>, BTreeSet<_>) = recipients
            .iter()
            .filter(|device| **device != own)
            .partition(|device| self.trust.device(**device).is_some_and(|known| known.pending_key_change.is_some()));

        let current_fits = self
            .outbound
            .get(&chat_id)
            .is_some_and(|outbound| outbound.recipients == effective && !outbound.is_expired(now_unix_secs));
        if !current_fits {
            self.start_outbound_session(chat_id, effective, now_unix_secs);
        }
        let outbound = self.outbound.get(&chat_id).ok_or(CoreError::NoOutboundSession(chat_id))?;
        let needs_room_key: Vec<_> = outbound.recipients.difference(&outbound.shared_with).copied().collect();
        let needs_one_time_key =
            needs_room_key.iter().filter(|device| !self.has_olm_session(**device)).copied().collect();
        Ok(SendPreparation {
            session_id: outbound.session.session_id(),
            rotated: !current_fits,
            needs_room_key,
            needs_one_time_key,
            withheld: withheld.into_iter().collect(),
        })
    }

    fn start_outbound_session(&mut self, chat_id: Uuid, recipients: BTreeSet<DeviceAddress>, now_unix_secs: u64) {
        let session = GroupSession::new(vodozemac::megolm::SessionConfig::version_1());
        let session_key = session.session_key();
        // This device keeps an inbound copy so it can read its own messages in the chat's history.
        let own_copy = InboundGroupSession::new(&session_key, vodozemac::megolm::SessionConfig::version_1());
        self.inbound
            .insert(session.session_id(), InboundRoomSession { session: own_copy, chat_id, sender: self.address() });
        self.outbound.insert(
            chat_id,
            OutboundRoomSession {
                session,
                initial_session_key: session_key.to_base64(),
                created_at_unix_secs: now_unix_secs,
                recipients,
                shared_with: BTreeSet::new(),
            },
        );
    }

    /// Forgets the chat's outbound session, so the next `prepare_send` starts a new one (e.g. when the caller
    /// suspects a recipient device was compromised).
    pub fn discard_outbound_session(&mut self, chat_id: Uuid) {
        self.outbound.remove(&chat_id);
    }

    /// Encrypts the current outbound session's key for every recipient that lacks it, using existing Olm
    /// sessions or the given claimed one-time keys (signatures verified). Devices that could not be reached
    /// are reported and stay in `needs_room_key` for the next `prepare_send`.
    pub fn share_room_key(&mut self, chat_id: Uuid, claimed_keys: &[ClaimedOneTimeKey]) -> Result<RoomKeyShare> {
        let outbound = self.outbound.get(&chat_id).ok_or(CoreError::NoOutboundSession(chat_id))?;
        let pending: Vec<_> = outbound.recipients.difference(&outbound.shared_with).copied().collect();
        let payload = ToDevicePayload::RoomKey(RoomKeyContent {
            algorithm: MEGOLM_ALGORITHM.to_owned(),
            chat_id,
            session_id: outbound.session.session_id(),
            session_key: outbound.initial_session_key.clone(),
        });
        let mut share = RoomKeyShare::default();
        let mut jobs = Vec::with_capacity(pending.len());
        let mut fatal = None;
        let claimed_by_device: BTreeMap<DeviceAddress, &ClaimedOneTimeKey> =
            claimed_keys.iter().map(|claimed| (claimed.device(), claimed)).collect();
        for device in pending {
            match self.olm_job(device, claimed_by_device.get(&device).copied(), &payload) {
                Ok(job) => jobs.push(job),
                Err(error) => {
                    fatal = share.sort_failure(device, error);
                    if fatal.is_some() {
                        break;
                    }
                }
            }
        }
        if let Some(error) = fatal {
            for job in jobs {
                self.return_session(job.peer_key, job.session);
            }
            return Err(error);
        }
        // The sessions' crypto is independent per device and is most of a large share's cost.
        let account = &self.account;
        let outcomes = crate::parallel::map_on_all_cores(jobs, |job| job.run(account));
        let mut reached = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let device = outcome.recipient;
            match self.finish_olm_job(outcome) {
                Ok(message) => {
                    share.messages.push(message);
                    reached.push(device);
                }
                // Every session goes back to the store before a fatal error is returned.
                Err(error) => fatal = fatal.or(share.sort_failure(device, error)),
            }
        }
        if let Some(error) = fatal {
            return Err(error);
        }
        if let Some(outbound) = self.outbound.get_mut(&chat_id) {
            outbound.shared_with.extend(reached);
        }
        Ok(share)
    }

    /// Encrypts a chat message with the chat's current outbound session. Fails with
    /// [`CoreError::NoOutboundSession`] when there is none or it must rotate: call `prepare_send` first.
    pub fn encrypt_message(
        &mut self,
        chat_id: Uuid,
        content: &MessageContent,
        now_unix_secs: u64,
    ) -> Result<EncryptedMessage> {
        let outbound = self
            .outbound
            .get_mut(&chat_id)
            .filter(|outbound| !outbound.is_expired(now_unix_secs))
            .ok_or(CoreError::NoOutboundSession(chat_id))?;
        let plaintext = MegolmPlaintext { chat_id, content: content.clone().without_invalid_parts() };
        let plaintext =
            serde_json::to_vec(&plaintext).map_err(|error| CoreError::malformed("Megolm plaintext", error))?;
        let message = outbound.session.encrypt(plaintext);
        let envelope = MegolmEnvelope { session_id: outbound.session.session_id(), body: message.to_base64() };
        let envelope = serde_json::to_vec(&envelope).map_err(|error| CoreError::malformed("Megolm envelope", error))?;
        Ok(EncryptedMessage { algorithm: MEGOLM_ALGORITHM.to_owned(), ciphertext: b64_padded_encode(envelope) })
    }

    /// Decrypts a chat message sent by `sender` (the server's `sender_id`, `sender_device_id`) in `chat_id`,
    /// with a room key that `sender` itself sent this device over Olm.
    pub fn decrypt_message(
        &mut self,
        chat_id: Uuid,
        sender: DeviceAddress,
        algorithm: &str,
        ciphertext: &str,
    ) -> Result<DecryptedMessage> {
        if algorithm != MEGOLM_ALGORITHM {
            return Err(CoreError::UnsupportedAlgorithm(algorithm.to_owned()));
        }
        let envelope = b64_padded_decode("message ciphertext", ciphertext)?;
        let envelope: MegolmEnvelope =
            serde_json::from_slice(&envelope).map_err(|error| CoreError::malformed("Megolm envelope", error))?;
        let missing = || CoreError::MissingRoomKey { chat_id, session_id: envelope.session_id.clone(), sender };
        let inbound = self
            .inbound
            .get_mut(&envelope.session_id)
            .filter(|inbound| inbound.sender == sender && inbound.chat_id == chat_id)
            .ok_or_else(missing)?;
        let message = MegolmMessage::from_base64(&envelope.body)
            .map_err(|error| CoreError::malformed("Megolm message", error))?;
        let decrypted = inbound.session.decrypt(&message).map_err(|error| CoreError::Megolm(error.to_string()))?;
        let plaintext: MegolmPlaintext = serde_json::from_slice(&decrypted.plaintext)
            .map_err(|error| CoreError::malformed("Megolm plaintext", error))?;
        if plaintext.chat_id != chat_id {
            return Err(CoreError::EnvelopeMismatch("the message was written for another chat"));
        }
        Ok(DecryptedMessage {
            content: plaintext.content.without_invalid_parts(),
            session_id: envelope.session_id,
            message_index: decrypted.message_index,
        })
    }
}
