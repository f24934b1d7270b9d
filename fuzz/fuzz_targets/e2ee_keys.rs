//! The key directory's parsers, on both ends. Mode byte % 3 = 0: the rest is the body of
//! `PUT /keys/devices/{id}` (read as poem-openapi reads `PublishKeysRequest`) from the seeds'
//! uploader, published to a new `Device` aggregate as the handler does, then published again (a
//! retry), then again after a claim. What the server accepts, a client must accept too (the
//! identity keys, and each one-time key as a claim hands it out). 1: the rest is a device listing
//! (`GET /keys/users/{id}`) compared with a device's trust store; a second look at the same
//! listing finds nothing new. 2: the rest is a claimed one-time key (`POST /keys/claim`) of
//! Carol's device; `@signature@` as its signature is replaced by Carol's real one; Bob verifies
//! it and starts an Olm session with it.

#![no_main]

use std::cell::RefCell;

use chrono::DateTime;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use libfuzzer_sys::fuzz_target;
use parley_api::keys::routes::{OneTimeKeyBody, PublishKeysRequest};
use parley_client_core::canonical::one_time_key_signing_input;
use parley_client_core::keys::{verify_claimed_key, verify_device_keys, SignedIdentityKeys};
use parley_client_core::payloads::{RoomKeyContent, ToDevicePayload, MEGOLM_ALGORITHM};
use parley_client_core::{ClaimedOneTimeKey, DeviceKeys, PublishedDevice, TrustStore, UserDevices};
use parley_domain::device::{Device, DeviceCommand, DeviceEvent, IdentityKeys, OneTimeKey};
use parley_fuzz::e2ee::{Parties, CAROL, CHAT, UPLOADER};
use poem_openapi::types::ParseFromJSON;

thread_local! {
    static PARTIES: RefCell<Parties> = RefCell::new(Parties::new());
}

fn one_time_key(body: OneTimeKeyBody) -> OneTimeKey {
    OneTimeKey { key_id: body.key_id, curve25519: body.curve25519, signature: body.signature }
}

/// The handler's command for `body`, from the seeds' uploader.
fn publish(body: &PublishKeysRequest) -> DeviceCommand {
    DeviceCommand::Publish {
        device_id: UPLOADER.device_id,
        user_id: UPLOADER.user_id,
        display_name: body.display_name.clone(),
        identity_keys: IdentityKeys {
            curve25519: body.identity_keys.curve25519.clone(),
            ed25519: body.identity_keys.ed25519.clone(),
            signature: body.identity_keys.signature.clone(),
        },
        one_time_keys: body.one_time_keys.iter().flatten().cloned().map(one_time_key).collect(),
        fallback_key: body.fallback_key.clone().map(one_time_key),
        at: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
    }
}

/// `command` on `device`, its events applied as the store applies them.
fn execute(
    device: &mut Device,
    command: DeviceCommand,
) -> Result<Vec<DeviceEvent>, parley_domain::device::DeviceError> {
    parley_fuzz::runtime().block_on(async {
        let sink = EventSink::default();
        device.handle(command, &(), &sink).await?;
        Ok(sink.collect().await)
    })
}

/// A client's view of a one-time key the server hands out.
fn claimed(key: &OneTimeKey, fallback: bool) -> ClaimedOneTimeKey {
    ClaimedOneTimeKey {
        user_id: UPLOADER.user_id,
        device_id: UPLOADER.device_id,
        key_id: key.key_id.clone(),
        curve25519: key.curve25519.clone(),
        signature: key.signature.clone(),
        fallback,
        remaining: None,
    }
}

fn upload(data: &[u8]) {
    let Ok(json) = serde_json::from_slice(data) else { return };
    let Ok(body) = PublishKeysRequest::parse_from_json(Some(json)) else { return };
    let mut device = Device::default();
    if execute(&mut device, publish(&body)).is_err() {
        return;
    }
    // What the server accepted, a client accepts: else it lists a device no one can reach.
    let listed = PublishedDevice {
        device_id: UPLOADER.device_id,
        display_name: None,
        identity_keys: SignedIdentityKeys {
            curve25519: body.identity_keys.curve25519.clone(),
            ed25519: body.identity_keys.ed25519.clone(),
            signature: body.identity_keys.signature.clone(),
        },
    };
    let keys = verify_device_keys(UPLOADER.user_id, &listed)
        .unwrap_or_else(|e| panic!("identity keys the server took are refused by clients: {e}"));
    let handed_out =
        device.one_time_keys.iter().map(|k| (k, false)).chain(device.fallback_key.iter().map(|k| (k, true)));
    for (key, fallback) in handed_out {
        verify_claimed_key(&keys, &claimed(key, fallback))
            .unwrap_or_else(|e| panic!("a one-time key the server hands out is refused by clients: {e}: {key:?}"));
    }
    // The client did not hear the answer and sends the same upload again: accepted, no change.
    let before = device.clone();
    let again = execute(&mut device, publish(&body)).unwrap_or_else(|e| panic!("a retried upload was refused: {e}"));
    assert!(again.is_empty(), "a retried upload changed the device: {again:?}");
    assert_eq!(device, before);
    // Likewise after one of its keys was handed out meanwhile.
    let claim =
        DeviceCommand::Claim { claimer_id: CAROL.user_id, claimer_device_id: CAROL.device_id, at: Default::default() };
    let _ = execute(&mut device, claim);
    let keys_left = device.one_time_keys.len();
    let again =
        execute(&mut device, publish(&body)).unwrap_or_else(|e| panic!("a retry after a claim was refused: {e}"));
    assert!(again.is_empty() && device.one_time_keys.len() == keys_left, "a claimed key came back: {again:?}");
}

fn listing(data: &[u8]) {
    let Ok(listing) = serde_json::from_slice::<UserDevices>(data) else { return };
    // The trust store a device compares listings with (`OwnDevice::observe_user_devices` hands the
    // listing to it), new for each input.
    let mut trust = TrustStore::new();
    let first = trust.observe_user_devices(&listing);
    for keys in &first.new_devices {
        assert_eq!(keys.user_id, listing.user_id, "a device trusted for another user: {keys:?}");
    }
    let second = trust.observe_user_devices(&listing);
    assert!(second.new_devices.is_empty(), "the same listing twice found new devices: {second:?}");
}

fn claim(data: &[u8], parties: &Parties) {
    let Ok(mut claimed) = serde_json::from_slice::<ClaimedOneTimeKey>(data) else { return };
    let carol_keys = DeviceKeys {
        user_id: CAROL.user_id,
        device_id: CAROL.device_id,
        curve25519: parties.carol.curve25519_key(),
        ed25519: parties.carol.ed25519_key(),
    };
    let signed_here = claimed.signature == "@signature@";
    if signed_here {
        let Ok(input) = one_time_key_signing_input(
            claimed.user_id,
            claimed.device_id,
            &claimed.key_id,
            &claimed.curve25519,
            claimed.fallback,
        ) else {
            return;
        };
        claimed.signature = parties.carol.sign(input).to_base64();
    }
    let verified = verify_claimed_key(&carol_keys, &claimed);
    if verified.is_err() {
        return;
    }
    // A verified key starts a session: Bob can send Carol a room key with it.
    let mut bob = parties.fresh_bob();
    let room_key = ToDevicePayload::RoomKey(RoomKeyContent {
        algorithm: MEGOLM_ALGORITHM.to_owned(),
        chat_id: CHAT,
        session_id: parties.spare_group.session_id(),
        session_key: parties.spare_group.session_key().to_base64(),
    });
    // A key that is a low-order point verifies but makes no session (vodozemac refuses a
    // non-contributory key): an error, not a panic, is all that is asked.
    let _ = bob.encrypt_to_device(CAROL, Some(&claimed), room_key);
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, data)) = parley_fuzz::mode(data) else { return };
    match mode % 3 {
        0 => upload(data),
        1 => listing(data),
        _ => PARTIES.with_borrow(|parties| claim(data, parties)),
    }
});
