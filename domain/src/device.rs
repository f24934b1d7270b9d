//! The `Device` aggregate: one signed-in client's end-to-end encryption keys in the key directory.
//!
//! A device is a login session: its id is the session's id, so the server knows which device
//! sent anything from the access token alone. Its identity keys (Curve25519 for Olm, Ed25519 for
//! signatures) are self-signed and fixed once published: a new key means a new device. Its
//! one-time keys are each handed out once, in upload order; when none are left a claim gets the
//! fallback key (reusable, so it is never consumed). Removing the device ends its keys; the
//! session is revoked beside it.
//!
//! Signatures are Ed25519 over a canonical JSON object (keys sorted, no whitespace; see
//! `docs/e2ee.md`), checked here so that nothing unsigned enters the directory.

use std::collections::{HashMap, VecDeque};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Most unclaimed one-time keys a device may hold (vodozemac keeps 50 per account).
pub const MAX_ONE_TIME_KEYS: usize = 100;
/// Below this many unclaimed one-time keys the device is told to upload more.
pub const LOW_ONE_TIME_KEYS: usize = 10;
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
pub const KEY_ID_MAX_CHARS: usize = 64;
/// To-device message ids one acknowledgement may carry.
pub const MAX_ACKNOWLEDGED: usize = 1000;

pub const DEVICE_KEYS_TYPE: &str = "parley.device_keys.v1";
pub const ONE_TIME_KEY_TYPE: &str = "parley.one_time_key.v1";

/// A device's long-term keys and the signature its Ed25519 key made over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityKeys {
    pub curve25519: String,
    pub ed25519: String,
    pub signature: String,
}

/// A signed Curve25519 key for starting one Olm session (or the fallback key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimeKey {
    pub key_id: String,
    pub curve25519: String,
    pub signature: String,
}

/// The canonical form of a JSON object of strings and booleans: keys sorted, no whitespace.
pub fn canonical_json(fields: &[(&str, Value)]) -> String {
    // Sorted here, not left to `Map`: with serde_json's `preserve_order` feature (which any
    // crate in the build may switch on) a `Map` keeps insertion order.
    let mut sorted: Vec<&(&str, Value)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let object: Map<String, Value> = sorted.into_iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    Value::Object(object).to_string()
}

/// What a device's Ed25519 key signs to publish its identity keys.
pub fn identity_signing_text(user_id: Uuid, device_id: Uuid, curve25519: &str, ed25519: &str) -> String {
    canonical_json(&[
        ("curve25519", Value::from(curve25519)),
        ("device_id", Value::from(device_id.to_string())),
        ("ed25519", Value::from(ed25519)),
        ("type", Value::from(DEVICE_KEYS_TYPE)),
        ("user_id", Value::from(user_id.to_string())),
    ])
}

/// What a device's Ed25519 key signs to publish a one-time (or the fallback) key.
pub fn one_time_key_signing_text(user_id: Uuid, device_id: Uuid, key: &OneTimeKey, fallback: bool) -> String {
    canonical_json(&[
        ("curve25519", Value::from(key.curve25519.as_str())),
        ("device_id", Value::from(device_id.to_string())),
        ("fallback", Value::from(fallback)),
        ("key_id", Value::from(key.key_id.as_str())),
        ("type", Value::from(ONE_TIME_KEY_TYPE)),
        ("user_id", Value::from(user_id.to_string())),
    ])
}

fn key_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = STANDARD_NO_PAD.decode(text).ok()?;
    bytes.try_into().ok()
}

fn verifies(ed25519: &str, text: &str, signature: &str) -> bool {
    let (Some(key), Some(signature)) = (key_bytes::<32>(ed25519), key_bytes::<64>(signature)) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else {
        return false;
    };
    key.verify_strict(text.as_bytes(), &Signature::from_bytes(&signature)).is_ok()
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeviceCommand {
    /// Publish (the first time) or replenish (later) the device's keys.
    Publish {
        device_id: Uuid,
        user_id: Uuid,
        display_name: Option<String>,
        identity_keys: IdentityKeys,
        one_time_keys: Vec<OneTimeKey>,
        fallback_key: Option<OneTimeKey>,
        at: DateTime<Utc>,
    },
    /// Hand out one one-time key (or, with none left, the fallback key) to `claimer_id`.
    Claim {
        claimer_id: Uuid,
        claimer_device_id: Uuid,
        at: DateTime<Utc>,
    },
    /// The device acknowledged these to-device messages: they are deleted from its queue.
    AcknowledgeToDevice {
        message_ids: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    Remove {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeviceEvent {
    DeviceRegistered {
        device_id: Uuid,
        user_id: Uuid,
        display_name: String,
        identity_keys: IdentityKeys,
        registered_at: DateTime<Utc>,
    },
    DeviceRenamed {
        display_name: String,
        at: DateTime<Utc>,
    },
    OneTimeKeysAdded {
        keys: Vec<OneTimeKey>,
        at: DateTime<Utc>,
    },
    FallbackKeyReplaced {
        key: OneTimeKey,
        at: DateTime<Utc>,
    },
    OneTimeKeyClaimed {
        key: OneTimeKey,
        claimed_by: Uuid,
        claimed_by_device: Uuid,
        /// Unclaimed one-time keys left after this one.
        remaining: usize,
        at: DateTime<Utc>,
    },
    ToDeviceAcknowledged {
        message_ids: Vec<Uuid>,
        at: DateTime<Utc>,
    },
    DeviceRemoved {
        at: DateTime<Utc>,
    },
}

impl DomainEvent for DeviceEvent {
    fn event_type(&self) -> String {
        match self {
            DeviceEvent::DeviceRegistered { .. } => "DeviceRegistered",
            DeviceEvent::DeviceRenamed { .. } => "DeviceRenamed",
            DeviceEvent::OneTimeKeysAdded { .. } => "OneTimeKeysAdded",
            DeviceEvent::FallbackKeyReplaced { .. } => "FallbackKeyReplaced",
            DeviceEvent::OneTimeKeyClaimed { .. } => "OneTimeKeyClaimed",
            DeviceEvent::ToDeviceAcknowledged { .. } => "ToDeviceAcknowledged",
            DeviceEvent::DeviceRemoved { .. } => "DeviceRemoved",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Also what a device of someone else, or a removed one, looks like.
    #[error("device not found")]
    NotFound,
    #[error("this device was removed; sign in again to get a new one")]
    Removed,
    #[error("identity keys must be unpadded base64 of 32-byte Curve25519 and Ed25519 keys")]
    MalformedIdentityKeys,
    #[error("the identity keys' signature does not verify")]
    BadIdentitySignature,
    #[error("a published identity key cannot be replaced: a new key needs a new device (sign in again)")]
    IdentityKeysChanged,
    #[error("one-time key {0:?} is malformed (unpadded base64 of 32 bytes, id of 1 to {KEY_ID_MAX_CHARS} characters)")]
    MalformedOneTimeKey(String),
    #[error("the signature of one-time key {0:?} does not verify")]
    BadOneTimeKeySignature(String),
    #[error("one-time key id {0:?} was already used for another key")]
    OneTimeKeyIdReused(String),
    #[error("a device may hold at most {MAX_ONE_TIME_KEYS} unclaimed one-time keys")]
    TooManyOneTimeKeys,
    #[error("display name must be at most {DISPLAY_NAME_MAX_CHARS} printable characters")]
    InvalidDisplayName,
    #[error("at most {MAX_ACKNOWLEDGED} message ids per acknowledgement")]
    TooManyAcknowledged,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub display_name: String,
    pub identity_keys: Option<IdentityKeys>,
    /// Unclaimed one-time keys, oldest first.
    pub one_time_keys: VecDeque<OneTimeKey>,
    pub fallback_key: Option<OneTimeKey>,
    /// Ids of every one-time key ever published (an id is never reused for another key).
    #[serde(default)]
    pub used_key_ids: Vec<String>,
    /// The Curve25519 key of every claimed one-time key, by id: a retried upload that repeats one
    /// is recognised as a retry (state from before this field knew none: those ids stay refused).
    #[serde(default)]
    pub claimed_keys: HashMap<String, String>,
    pub removed: bool,
}

/// What a claim hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedKey {
    pub key: OneTimeKey,
    pub fallback: bool,
    pub remaining: usize,
}

impl Device {
    /// The key a claim just handed out: the one its `OneTimeKeyClaimed` carries, else (no event)
    /// the fallback key.
    pub fn claimed_key<'a>(&self, events: impl IntoIterator<Item = &'a DeviceEvent>) -> Option<ClaimedKey> {
        for event in events {
            if let DeviceEvent::OneTimeKeyClaimed { key, remaining, .. } = event {
                return Some(ClaimedKey { key: key.clone(), fallback: false, remaining: *remaining });
            }
        }
        self.fallback_key.clone().map(|key| ClaimedKey { key, fallback: true, remaining: 0 })
    }

    fn registered(&self) -> Result<(Uuid, Uuid), DeviceError> {
        match (self.device_id, self.user_id) {
            _ if self.removed => Err(DeviceError::Removed),
            (Some(device), Some(user)) => Ok((device, user)),
            _ => Err(DeviceError::NotFound),
        }
    }

    fn check_one_time_key(
        user_id: Uuid,
        device_id: Uuid,
        ed25519: &str,
        key: &OneTimeKey,
        fallback: bool,
    ) -> Result<(), DeviceError> {
        let id_chars = key.key_id.chars().count();
        if id_chars == 0
            || id_chars > KEY_ID_MAX_CHARS
            || key.key_id.chars().any(char::is_control)
            || key_bytes::<32>(&key.curve25519).is_none()
        {
            return Err(DeviceError::MalformedOneTimeKey(key.key_id.chars().take(KEY_ID_MAX_CHARS).collect()));
        }
        let text = one_time_key_signing_text(user_id, device_id, key, fallback);
        if !verifies(ed25519, &text, &key.signature) {
            return Err(DeviceError::BadOneTimeKeySignature(key.key_id.clone()));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        device_id: Uuid,
        user_id: Uuid,
        display_name: Option<String>,
        identity_keys: IdentityKeys,
        one_time_keys: Vec<OneTimeKey>,
        fallback_key: Option<OneTimeKey>,
        at: DateTime<Utc>,
    ) -> Result<Vec<DeviceEvent>, DeviceError> {
        if self.removed {
            return Err(DeviceError::Removed);
        }
        if let Some(name) = &display_name {
            if name.chars().count() > DISPLAY_NAME_MAX_CHARS || name.chars().any(char::is_control) {
                return Err(DeviceError::InvalidDisplayName);
            }
        }
        let mut events = Vec::new();
        match &self.identity_keys {
            Some(published)
                if published.curve25519 != identity_keys.curve25519 || published.ed25519 != identity_keys.ed25519 =>
            {
                return Err(DeviceError::IdentityKeysChanged);
            }
            Some(_) => {
                if let Some(name) = display_name.filter(|name| *name != self.display_name) {
                    events.push(DeviceEvent::DeviceRenamed { display_name: name, at });
                }
            }
            None => {
                if key_bytes::<32>(&identity_keys.curve25519).is_none()
                    || key_bytes::<32>(&identity_keys.ed25519).is_none()
                {
                    return Err(DeviceError::MalformedIdentityKeys);
                }
                let text = identity_signing_text(user_id, device_id, &identity_keys.curve25519, &identity_keys.ed25519);
                if !verifies(&identity_keys.ed25519, &text, &identity_keys.signature) {
                    return Err(DeviceError::BadIdentitySignature);
                }
                events.push(DeviceEvent::DeviceRegistered {
                    device_id,
                    user_id,
                    display_name: display_name.unwrap_or_default(),
                    identity_keys: identity_keys.clone(),
                    registered_at: at,
                });
            }
        }
        let ed25519 = identity_keys.ed25519.as_str();
        let mut new_keys: Vec<OneTimeKey> = Vec::new();
        for key in one_time_keys {
            Self::check_one_time_key(user_id, device_id, ed25519, &key, false)?;
            let known = self.one_time_keys.iter().chain(&new_keys).find(|k| k.key_id == key.key_id);
            match known {
                // A retried upload: nothing new.
                Some(existing) if existing.curve25519 == key.curve25519 => continue,
                Some(_) => return Err(DeviceError::OneTimeKeyIdReused(key.key_id)),
                // A retried upload whose key was claimed meanwhile (the client never heard that
                // the first upload was accepted): it stays claimed, never handed out again.
                None if self.claimed_keys.get(&key.key_id) == Some(&key.curve25519) => continue,
                None if self.used_key_ids.contains(&key.key_id) => {
                    return Err(DeviceError::OneTimeKeyIdReused(key.key_id))
                }
                None => new_keys.push(key),
            }
        }
        if self.one_time_keys.len() + new_keys.len() > MAX_ONE_TIME_KEYS {
            return Err(DeviceError::TooManyOneTimeKeys);
        }
        if !new_keys.is_empty() {
            events.push(DeviceEvent::OneTimeKeysAdded { keys: new_keys, at });
        }
        if let Some(key) = fallback_key {
            Self::check_one_time_key(user_id, device_id, ed25519, &key, true)?;
            if self.fallback_key.as_ref() != Some(&key) {
                events.push(DeviceEvent::FallbackKeyReplaced { key, at });
            }
        }
        Ok(events)
    }

    fn decide(&self, command: DeviceCommand) -> Result<Vec<DeviceEvent>, DeviceError> {
        match command {
            DeviceCommand::Publish {
                device_id,
                user_id,
                display_name,
                identity_keys,
                one_time_keys,
                fallback_key,
                at,
            } => {
                if self.user_id.is_some_and(|owner| owner != user_id) || self.device_id.is_some_and(|d| d != device_id)
                {
                    return Err(DeviceError::NotFound);
                }
                self.publish(device_id, user_id, display_name, identity_keys, one_time_keys, fallback_key, at)
            }
            DeviceCommand::Claim { claimer_id, claimer_device_id, at } => {
                self.registered()?;
                Ok(match self.one_time_keys.front() {
                    Some(key) => vec![DeviceEvent::OneTimeKeyClaimed {
                        key: key.clone(),
                        claimed_by: claimer_id,
                        claimed_by_device: claimer_device_id,
                        remaining: self.one_time_keys.len() - 1,
                        at,
                    }],
                    None => vec![],
                })
            }
            DeviceCommand::AcknowledgeToDevice { message_ids, at } => {
                self.registered()?;
                if message_ids.len() > MAX_ACKNOWLEDGED {
                    return Err(DeviceError::TooManyAcknowledged);
                }
                if message_ids.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![DeviceEvent::ToDeviceAcknowledged { message_ids, at }])
            }
            DeviceCommand::Remove { at } => Ok(match (self.device_id, self.removed) {
                (Some(_), false) => vec![DeviceEvent::DeviceRemoved { at }],
                _ => vec![],
            }),
        }
    }
}

impl Aggregate for Device {
    const TYPE: &'static str = "Device";
    type Command = DeviceCommand;
    type Event = DeviceEvent;
    type Error = DeviceError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            DeviceEvent::DeviceRegistered { device_id, user_id, display_name, identity_keys, .. } => {
                self.device_id = Some(device_id);
                self.user_id = Some(user_id);
                self.display_name = display_name;
                self.identity_keys = Some(identity_keys);
            }
            DeviceEvent::DeviceRenamed { display_name, .. } => self.display_name = display_name,
            DeviceEvent::OneTimeKeysAdded { keys, .. } => {
                self.used_key_ids.extend(keys.iter().map(|k| k.key_id.clone()));
                self.one_time_keys.extend(keys);
            }
            DeviceEvent::FallbackKeyReplaced { key, .. } => self.fallback_key = Some(key),
            DeviceEvent::OneTimeKeyClaimed { key, .. } => {
                self.one_time_keys.retain(|k| k.key_id != key.key_id);
                self.claimed_keys.insert(key.key_id, key.curve25519);
            }
            DeviceEvent::ToDeviceAcknowledged { .. } => {}
            DeviceEvent::DeviceRemoved { .. } => {
                self.removed = true;
                self.one_time_keys.clear();
                self.fallback_key = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use ed25519_dalek::{Signer, SigningKey};

    type DeviceTest = TestFramework<Device>;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }
    fn user() -> Uuid {
        Uuid::from_u128(1)
    }
    fn device() -> Uuid {
        Uuid::from_u128(2)
    }
    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }
    fn b64(bytes: &[u8]) -> String {
        STANDARD_NO_PAD.encode(bytes)
    }
    fn identity() -> IdentityKeys {
        let ed25519 = b64(signing_key().verifying_key().as_bytes());
        let curve25519 = b64(&[9; 32]);
        let text = identity_signing_text(user(), device(), &curve25519, &ed25519);
        IdentityKeys { curve25519, ed25519, signature: b64(&signing_key().sign(text.as_bytes()).to_bytes()) }
    }
    fn key(id: &str, fallback: bool) -> OneTimeKey {
        signed_key(id, [id.len() as u8; 32], fallback)
    }

    /// A validly signed one-time key other than [`key`]'s under the same id.
    fn other_key(id: &str) -> OneTimeKey {
        signed_key(id, [0xEE; 32], false)
    }

    fn signed_key(id: &str, curve25519: [u8; 32], fallback: bool) -> OneTimeKey {
        let mut key = OneTimeKey { key_id: id.into(), curve25519: b64(&curve25519), signature: String::new() };
        let text = one_time_key_signing_text(user(), device(), &key, fallback);
        key.signature = b64(&signing_key().sign(text.as_bytes()).to_bytes());
        key
    }
    fn publish(
        identity_keys: IdentityKeys,
        one_time_keys: Vec<OneTimeKey>,
        fallback_key: Option<OneTimeKey>,
    ) -> DeviceCommand {
        DeviceCommand::Publish {
            device_id: device(),
            user_id: user(),
            display_name: Some("laptop".into()),
            identity_keys,
            one_time_keys,
            fallback_key,
            at: at(),
        }
    }
    fn registered() -> DeviceEvent {
        DeviceEvent::DeviceRegistered {
            device_id: device(),
            user_id: user(),
            display_name: "laptop".into(),
            identity_keys: identity(),
            registered_at: at(),
        }
    }
    fn added(ids: &[&str]) -> DeviceEvent {
        DeviceEvent::OneTimeKeysAdded { keys: ids.iter().map(|id| key(id, false)).collect(), at: at() }
    }
    fn claim() -> DeviceCommand {
        DeviceCommand::Claim { claimer_id: Uuid::from_u128(5), claimer_device_id: Uuid::from_u128(6), at: at() }
    }
    fn claimed(id: &str, remaining: usize) -> DeviceEvent {
        DeviceEvent::OneTimeKeyClaimed {
            key: key(id, false),
            claimed_by: Uuid::from_u128(5),
            claimed_by_device: Uuid::from_u128(6),
            remaining,
            at: at(),
        }
    }

    #[test]
    fn canonical_json_sorts_keys_without_whitespace() {
        let text = canonical_json(&[("b", Value::from("x")), ("a", Value::from(true))]);
        assert_eq!(text, r#"{"a":true,"b":"x"}"#);
    }

    #[test]
    fn a_device_publishes_signed_keys_once() {
        let fallback = key("f", true);
        DeviceTest::with(())
            .given_no_previous_events()
            .when(publish(identity(), vec![key("a", false), key("bb", false)], Some(fallback.clone())))
            .then_expect_events(vec![
                registered(),
                added(&["a", "bb"]),
                DeviceEvent::FallbackKeyReplaced { key: fallback, at: at() },
            ]);
        // A retried upload changes nothing.
        DeviceTest::with(())
            .given(vec![registered(), added(&["a"])])
            .when(publish(identity(), vec![key("a", false)], None))
            .then_expect_events(vec![]);
    }

    #[test]
    fn bad_signatures_and_replaced_identity_keys_are_refused() {
        let mut forged = identity();
        forged.curve25519 = b64(&[10; 32]);
        DeviceTest::with(())
            .given_no_previous_events()
            .when(publish(forged.clone(), vec![], None))
            .then_expect_error(DeviceError::BadIdentitySignature);
        DeviceTest::with(())
            .given(vec![registered()])
            .when(publish(forged, vec![], None))
            .then_expect_error(DeviceError::IdentityKeysChanged);
        let mut malformed = identity();
        malformed.ed25519 = "not base64!".into();
        DeviceTest::with(())
            .given_no_previous_events()
            .when(publish(malformed, vec![], None))
            .then_expect_error(DeviceError::MalformedIdentityKeys);
        let mut unsigned = key("a", false);
        unsigned.signature = b64(&[0; 64]);
        DeviceTest::with(())
            .given(vec![registered()])
            .when(publish(identity(), vec![unsigned], None))
            .then_expect_error(DeviceError::BadOneTimeKeySignature("a".into()));
        // A one-time key's signature does not pass for the fallback key (the flag is signed).
        DeviceTest::with(())
            .given(vec![registered()])
            .when(publish(identity(), vec![], Some(key("a", false))))
            .then_expect_error(DeviceError::BadOneTimeKeySignature("a".into()));
    }

    #[test]
    fn a_claimed_key_id_is_never_handed_out_again() {
        DeviceTest::with(())
            .given(vec![registered(), added(&["a", "bb"])])
            .when(claim())
            .then_expect_events(vec![claimed("a", 1)]);
        // Re-uploading a claimed key (a retried upload) is accepted but does not bring it back.
        DeviceTest::with(())
            .given(vec![registered(), added(&["a"]), claimed("a", 0)])
            .when(publish(identity(), vec![key("a", false)], None))
            .then_expect_events(vec![]);
        // Another key under a claimed key's id is refused.
        DeviceTest::with(())
            .given(vec![registered(), added(&["a"]), claimed("a", 0)])
            .when(publish(identity(), vec![other_key("a")], None))
            .then_expect_error(DeviceError::OneTimeKeyIdReused("a".into()));
        // With none left the claim records nothing: the caller hands out the fallback key.
        DeviceTest::with(())
            .given(vec![registered(), added(&["a"]), claimed("a", 0)])
            .when(claim())
            .then_expect_events(vec![]);
    }

    #[test]
    fn the_stock_is_bounded_and_a_removed_device_is_gone() {
        let many: Vec<OneTimeKey> = (0..=MAX_ONE_TIME_KEYS).map(|i| key(&format!("k{i}"), false)).collect();
        DeviceTest::with(())
            .given(vec![registered()])
            .when(publish(identity(), many, None))
            .then_expect_error(DeviceError::TooManyOneTimeKeys);
        let removed = DeviceEvent::DeviceRemoved { at: at() };
        DeviceTest::with(())
            .given(vec![registered(), removed.clone()])
            .when(claim())
            .then_expect_error(DeviceError::Removed);
        DeviceTest::with(())
            .given(vec![registered(), removed.clone()])
            .when(publish(identity(), vec![], None))
            .then_expect_error(DeviceError::Removed);
        DeviceTest::with(())
            .given(vec![registered(), removed])
            .when(DeviceCommand::Remove { at: at() })
            .then_expect_events(vec![]);
        DeviceTest::with(()).given_no_previous_events().when(claim()).then_expect_error(DeviceError::NotFound);
    }

    #[test]
    fn claimed_key_reports_the_key_handed_out() {
        let mut state = Device::default();
        for event in
            [registered(), added(&["a", "bb"]), DeviceEvent::FallbackKeyReplaced { key: key("f", true), at: at() }]
        {
            state.apply(event);
        }
        state.apply(claimed("a", 1));
        assert_eq!(
            state.claimed_key(&[claimed("a", 1)]),
            Some(ClaimedKey { key: key("a", false), fallback: false, remaining: 1 })
        );
        assert_eq!(state.claimed_key(&[]), Some(ClaimedKey { key: key("f", true), fallback: true, remaining: 0 }));
    }
}
