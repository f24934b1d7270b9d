//! Simulated devices exchanging real Olm and Megolm messages through a minimal in-memory key directory.

// Helpers outside `#[test]` functions set up scenarios; a failed step is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use parley_client_core::keys::{verify_device_keys, SignedIdentityKeys, SignedOneTimeKey};
use parley_client_core::payloads::AttachmentInfo;
use parley_client_core::{
    AttachmentDecryptor, AttachmentEncryptor, ClaimedOneTimeKey, CoreError, DeviceAddress, IncomingToDevice,
    MessageContent, OutgoingToDevice, OwnDevice, PublishedDevice, UserDevices, ONE_TIME_KEY_TARGET,
};
use uuid::Uuid;

const DAY: u64 = 24 * 60 * 60;
const START: u64 = 1_800_000_000;

/// What the server stores per device: its identity keys and its unclaimed one-time keys.
struct PublishedKeys {
    identity_keys: SignedIdentityKeys,
    one_time_keys: VecDeque<SignedOneTimeKey>,
    fallback_key: Option<SignedOneTimeKey>,
}

#[derive(Default)]
struct KeyDirectory {
    devices: BTreeMap<DeviceAddress, PublishedKeys>,
}

impl KeyDirectory {
    fn publish(&mut self, device: &mut OwnDevice) {
        let upload = device.keys_upload(Some("test device")).expect("upload body");
        let entry = self.devices.entry(device.address()).or_insert_with(|| PublishedKeys {
            identity_keys: upload.identity_keys.clone(),
            one_time_keys: VecDeque::new(),
            fallback_key: None,
        });
        assert_eq!(entry.identity_keys, upload.identity_keys, "identity keys never change");
        entry.one_time_keys.extend(upload.one_time_keys);
        if upload.fallback_key.is_some() {
            entry.fallback_key = upload.fallback_key;
        }
        device.mark_published();
    }

    fn remove(&mut self, device: DeviceAddress) {
        self.devices.remove(&device);
    }

    fn listing(&self, user_id: Uuid) -> UserDevices {
        let devices = self
            .devices
            .iter()
            .filter(|(address, _)| address.user_id == user_id)
            .map(|(address, keys)| PublishedDevice {
                device_id: address.device_id,
                display_name: None,
                identity_keys: keys.identity_keys.clone(),
            })
            .collect();
        UserDevices { user_id, devices }
    }

    fn claim(&mut self, devices: &[DeviceAddress]) -> Vec<ClaimedOneTimeKey> {
        devices
            .iter()
            .filter_map(|device| {
                let keys = self.devices.get_mut(device)?;
                let (key, fallback) = match keys.one_time_keys.pop_front() {
                    Some(key) => (key, false),
                    None => (keys.fallback_key.clone()?, true),
                };
                Some(ClaimedOneTimeKey {
                    user_id: device.user_id,
                    device_id: device.device_id,
                    key_id: key.key_id,
                    curve25519: key.curve25519,
                    signature: key.signature,
                    fallback,
                    remaining: Some(keys.one_time_keys.len() as u64),
                })
            })
            .collect()
    }

    fn count(&self, device: DeviceAddress) -> u64 {
        self.devices.get(&device).map_or(0, |keys| keys.one_time_keys.len() as u64)
    }
}

/// Delivers to-device messages the way the server does: the envelope carries the authenticated sender.
fn deliver(sender: &OwnDevice, message: &OutgoingToDevice) -> IncomingToDevice {
    IncomingToDevice {
        id: Uuid::new_v4(),
        sender_id: sender.address().user_id,
        sender_device_id: sender.address().device_id,
        ciphertext: message.ciphertext.clone(),
    }
}

fn new_device(directory: &mut KeyDirectory, user_id: Uuid) -> OwnDevice {
    let mut device = OwnDevice::new(user_id, Uuid::new_v4());
    directory.publish(&mut device);
    device
}

fn learn_users(device: &mut OwnDevice, directory: &KeyDirectory, users: &[Uuid]) {
    for user in users {
        let report = device.observe_user_devices(&directory.listing(*user));
        assert!(report.rejected_devices.is_empty(), "{report:?}");
        assert!(report.key_changes.is_empty(), "{report:?}");
    }
}

fn text(body: &str) -> MessageContent {
    MessageContent::Text { body: body.to_owned() }
}

/// Runs prepare_send → claim → share_room_key and hands every room key to its recipient.
fn send_keys(
    sender: &mut OwnDevice,
    directory: &mut KeyDirectory,
    chat_id: Uuid,
    recipients: &mut [&mut OwnDevice],
    now: u64,
) -> bool {
    let recipient_set: BTreeSet<_> = recipients.iter().map(|device| device.address()).collect();
    let preparation = sender.prepare_send(chat_id, &recipient_set, now).expect("prepare_send");
    let claimed = directory.claim(&preparation.needs_one_time_key);
    let share = sender.share_room_key(chat_id, &claimed).expect("share_room_key");
    assert!(share.devices_without_one_time_key.is_empty() && share.rejected_one_time_keys.is_empty(), "{share:?}");
    assert_eq!(share.messages.len(), preparation.needs_room_key.len());
    for message in &share.messages {
        let recipient = recipients
            .iter_mut()
            .find(|device| device.address() == DeviceAddress::new(message.user_id, message.device_id))
            .expect("message for a recipient");
        recipient.decrypt_to_device(&deliver(sender, message)).expect("room key decrypts");
    }
    preparation.rotated
}

fn read(
    reader: &mut OwnDevice,
    chat_id: Uuid,
    sender: DeviceAddress,
    message: &parley_client_core::EncryptedMessage,
) -> String {
    let decrypted =
        reader.decrypt_message(chat_id, sender, &message.algorithm, &message.ciphertext).expect("message decrypts");
    match decrypted.content {
        MessageContent::Text { body } => body,
        MessageContent::File { body, .. } => body,
    }
}

struct World {
    directory: KeyDirectory,
    alice: OwnDevice,
    bob_phone: OwnDevice,
    bob_laptop: OwnDevice,
    chat_id: Uuid,
}

/// Alice and Bob (two devices) share a chat; everyone knows everyone's keys.
fn world() -> World {
    let mut directory = KeyDirectory::default();
    let alice_id = Uuid::new_v4();
    let bob_id = Uuid::new_v4();
    let mut alice = new_device(&mut directory, alice_id);
    let mut bob_phone = new_device(&mut directory, bob_id);
    let mut bob_laptop = new_device(&mut directory, bob_id);
    for device in [&mut alice, &mut bob_phone, &mut bob_laptop] {
        learn_users(device, &directory, &[alice_id, bob_id]);
    }
    World { directory, alice, bob_phone, bob_laptop, chat_id: Uuid::new_v4() }
}

#[test]
fn room_keys_travel_by_olm_and_every_recipient_reads_megolm_messages() {
    let World { mut directory, mut alice, mut bob_phone, mut bob_laptop, chat_id } = world();

    let rotated = send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone, &mut bob_laptop], START);
    assert!(rotated, "the first send starts a session");
    let first = alice.encrypt_message(chat_id, &text("hello Bob"), START).expect("encrypt");
    assert_eq!(first.algorithm, "parley.megolm.v1");
    assert_eq!(read(&mut bob_phone, chat_id, alice.address(), &first), "hello Bob");
    assert_eq!(read(&mut bob_laptop, chat_id, alice.address(), &first), "hello Bob");
    let alice_address = alice.address();
    assert_eq!(read(&mut alice, chat_id, alice_address, &first), "hello Bob", "the sender reads its own history");

    // Same recipients: the session is reused and nobody needs anything.
    let recipients: BTreeSet<_> = [bob_phone.address(), bob_laptop.address()].into();
    let again = alice.prepare_send(chat_id, &recipients, START + 60).expect("prepare_send");
    assert!(!again.rotated && again.needs_room_key.is_empty() && again.needs_one_time_key.is_empty());
    let second = alice.encrypt_message(chat_id, &text("still there?"), START + 60).expect("encrypt");
    assert_eq!(read(&mut bob_laptop, chat_id, alice.address(), &second), "still there?");

    // Bob answers over the Olm session Alice started: no one-time key claim is needed.
    let alice_and_laptop: BTreeSet<_> = [alice.address(), bob_laptop.address()].into();
    let reply_plan = bob_phone.prepare_send(chat_id, &alice_and_laptop, START + 120).expect("prepare_send");
    assert_eq!(reply_plan.needs_one_time_key, vec![bob_laptop.address()], "only the laptop has no session yet");
    let claimed = directory.claim(&reply_plan.needs_one_time_key);
    let share = bob_phone.share_room_key(chat_id, &claimed).expect("share");
    for message in &share.messages {
        let target = if message.device_id == alice.address().device_id { &mut alice } else { &mut bob_laptop };
        target.decrypt_to_device(&deliver(&bob_phone, message)).expect("room key");
    }
    let reply = bob_phone.encrypt_message(chat_id, &text("yes"), START + 120).expect("encrypt");
    assert_eq!(read(&mut alice, chat_id, bob_phone.address(), &reply), "yes");
}

#[test]
fn a_device_added_later_cannot_read_earlier_messages() {
    let World { mut directory, mut alice, mut bob_phone, bob_laptop: _, chat_id } = world();
    let carol_id = Uuid::new_v4();
    let mut carol = new_device(&mut directory, carol_id);
    learn_users(&mut carol, &directory, &[alice.address().user_id]);
    learn_users(&mut alice, &directory, &[carol_id]);

    send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone], START);
    let before = alice.encrypt_message(chat_id, &text("before Carol"), START).expect("encrypt");

    let rotated = send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone, &mut carol], START + 10);
    assert!(rotated, "a new recipient device starts a new session");
    let after = alice.encrypt_message(chat_id, &text("welcome Carol"), START + 10).expect("encrypt");

    let refused = carol.decrypt_message(chat_id, alice.address(), &before.algorithm, &before.ciphertext);
    assert!(matches!(refused, Err(CoreError::MissingRoomKey { .. })), "{refused:?}");
    assert_eq!(read(&mut carol, chat_id, alice.address(), &after), "welcome Carol");
    assert_eq!(read(&mut bob_phone, chat_id, alice.address(), &before), "before Carol");
    assert_eq!(read(&mut bob_phone, chat_id, alice.address(), &after), "welcome Carol");
}

#[test]
fn a_removed_device_cannot_read_later_messages() {
    let World { mut directory, mut alice, mut bob_phone, mut bob_laptop, chat_id } = world();
    send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone, &mut bob_laptop], START);
    let before = alice.encrypt_message(chat_id, &text("to both"), START).expect("encrypt");

    // Bob removes his laptop; Alice learns it from the device list.
    directory.remove(bob_laptop.address());
    let report = alice.observe_user_devices(&directory.listing(bob_phone.address().user_id));
    assert_eq!(report.removed_devices, vec![bob_laptop.address()]);

    let rotated = send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone], START + 5);
    assert!(rotated, "removing a device starts a new session");
    let after = alice.encrypt_message(chat_id, &text("phone only"), START + 5).expect("encrypt");

    assert_eq!(read(&mut bob_laptop, chat_id, alice.address(), &before), "to both");
    let refused = bob_laptop.decrypt_message(chat_id, alice.address(), &after.algorithm, &after.ciphertext);
    assert!(matches!(refused, Err(CoreError::MissingRoomKey { .. })), "{refused:?}");
    assert_eq!(read(&mut bob_phone, chat_id, alice.address(), &after), "phone only");
}

#[test]
fn sessions_rotate_after_one_hundred_messages_and_after_seven_days() {
    let World { mut directory, mut alice, mut bob_phone, bob_laptop: _, chat_id } = world();
    send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone], START);
    for index in 0..100 {
        alice.encrypt_message(chat_id, &text(&format!("message {index}")), START).expect("encrypt");
    }
    assert!(matches!(
        alice.encrypt_message(chat_id, &text("one too many"), START),
        Err(CoreError::NoOutboundSession(_))
    ));
    assert!(send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone], START), "100 messages rotate");
    let message = alice.encrypt_message(chat_id, &text("fresh"), START).expect("encrypt");
    assert_eq!(read(&mut bob_phone, chat_id, alice.address(), &message), "fresh");

    assert!(!send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone], START + 7 * DAY - 1));
    assert!(matches!(
        alice.encrypt_message(chat_id, &text("a week later"), START + 7 * DAY),
        Err(CoreError::NoOutboundSession(_))
    ));
    assert!(send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone], START + 7 * DAY), "7 days rotate");
}

/// A share large enough to be encrypted on several threads: new sessions and reused ones, with a forged
/// key and a device without one in the middle, all sorted out and every session kept.
#[test]
fn a_large_share_reaches_every_device_and_keeps_every_session() {
    let mut directory = KeyDirectory::default();
    let alice_id = Uuid::new_v4();
    let mut alice = new_device(&mut directory, alice_id);
    let users: Vec<Uuid> = (0..30).map(|_| Uuid::new_v4()).collect();
    let mut devices: Vec<OwnDevice> = Vec::new();
    for user in &users {
        for _ in 0..4 {
            devices.push(new_device(&mut directory, *user));
        }
    }
    learn_users(&mut alice, &directory, &users);
    for device in &mut devices {
        learn_users(device, &directory, &[alice_id]);
    }
    let chat_id = Uuid::new_v4();
    let recipients: BTreeSet<_> = devices.iter().map(OwnDevice::address).collect();
    let preparation = alice.prepare_send(chat_id, &recipients, START).expect("prepare_send");
    assert_eq!(preparation.needs_one_time_key.len(), devices.len());
    let mut claimed = directory.claim(&preparation.needs_one_time_key);
    let without_key = claimed.remove(7).device();
    let forged = claimed[60].device();
    claimed[60].curve25519 = claimed[61].curve25519.clone();

    let share = alice.share_room_key(chat_id, &claimed).expect("share");
    assert_eq!(share.devices_without_one_time_key, vec![without_key]);
    assert_eq!(share.rejected_one_time_keys.len(), 1, "{share:?}");
    assert_eq!(share.rejected_one_time_keys[0].0, forged);
    assert_eq!(share.messages.len(), devices.len() - 2);
    let by_address = |messages: &[OutgoingToDevice], device: &OwnDevice| {
        messages.iter().find(|m| DeviceAddress::new(m.user_id, m.device_id) == device.address()).cloned()
    };
    for device in &mut devices {
        match by_address(&share.messages, device) {
            Some(message) => {
                device.decrypt_to_device(&deliver(&alice, &message)).expect("room key decrypts");
            }
            None => assert!([without_key, forged].contains(&device.address())),
        }
    }
    let first = alice.encrypt_message(chat_id, &text("to the crowd"), START).expect("encrypt");
    for device in devices.iter_mut().filter(|d| ![without_key, forged].contains(&d.address())) {
        assert_eq!(read(device, chat_id, alice.address(), &first), "to the crowd");
    }

    // Seven days later the session rotates: the sessions started above are reused (no claim), and the two
    // devices left out still need a one-time key.
    let later = START + 7 * DAY;
    let rotation = alice.prepare_send(chat_id, &recipients, later).expect("prepare_send");
    assert!(rotation.rotated);
    let mut needing: Vec<_> = rotation.needs_one_time_key.clone();
    needing.sort();
    let mut expected = vec![without_key, forged];
    expected.sort();
    assert_eq!(needing, expected, "every other session was kept");
    let claimed = directory.claim(&rotation.needs_one_time_key);
    let share = alice.share_room_key(chat_id, &claimed).expect("share");
    assert_eq!(share.messages.len(), devices.len(), "{share:?}");
    for device in &mut devices {
        let message = by_address(&share.messages, device).expect("a message for every device");
        device.decrypt_to_device(&deliver(&alice, &message)).expect("room key decrypts");
    }
    let second = alice.encrypt_message(chat_id, &text("all of you"), later).expect("encrypt");
    for device in &mut devices {
        assert_eq!(read(device, chat_id, alice.address(), &second), "all of you");
    }
}

#[test]
fn bad_signatures_are_refused() {
    let World { mut directory, mut alice, bob_phone, bob_laptop: _, chat_id } = world();
    let bob_id = bob_phone.address().user_id;

    // A listing whose signature does not cover the keys.
    let mut listing = directory.listing(bob_id);
    let mallory = OwnDevice::new(bob_id, Uuid::new_v4());
    listing.devices.push(PublishedDevice {
        device_id: mallory.address().device_id,
        display_name: None,
        identity_keys: SignedIdentityKeys {
            curve25519: mallory.identity_keys().curve25519.to_base64(),
            ed25519: mallory.identity_keys().ed25519.to_base64(),
            signature: listing.devices[0].identity_keys.signature.clone(),
        },
    });
    let report = alice.observe_user_devices(&listing);
    assert_eq!(report.rejected_devices.len(), 1, "{report:?}");
    assert_eq!(report.rejected_devices[0].device, mallory.address());
    assert!(alice.trust_store().device(mallory.address()).is_none());

    // Identity keys signed for one device id do not verify under another.
    let mut moved = listing.devices[0].clone();
    moved.device_id = Uuid::new_v4();
    assert!(matches!(verify_device_keys(bob_id, &moved), Err(CoreError::BadSignature { .. })));
    assert!(matches!(verify_device_keys(Uuid::new_v4(), &listing.devices[0]), Err(CoreError::BadSignature { .. })));

    // A claimed one-time key with a forged signature is not used.
    let recipients: BTreeSet<_> = [bob_phone.address()].into();
    let preparation = alice.prepare_send(chat_id, &recipients, START).expect("prepare_send");
    let mut claimed = directory.claim(&preparation.needs_one_time_key);
    claimed[0].curve25519 = mallory.identity_keys().curve25519.to_base64();
    let share = alice.share_room_key(chat_id, &claimed).expect("share");
    assert!(share.messages.is_empty());
    assert_eq!(share.rejected_one_time_keys.len(), 1);
    assert!(share.rejected_one_time_keys[0].1.contains("bad signature"), "{share:?}");
    let still = alice.prepare_send(chat_id, &recipients, START).expect("prepare_send");
    assert_eq!(still.needs_room_key, vec![bob_phone.address()], "the device still needs the key");
}

#[test]
fn a_changed_identity_key_is_flagged_and_withheld_until_accepted() {
    let World { mut directory, mut alice, bob_phone, bob_laptop: _, chat_id } = world();
    let bob_id = bob_phone.address().user_id;

    // The server presents new keys for Bob's phone under the same device id.
    let mut impostor = OwnDevice::new(bob_id, bob_phone.address().device_id);
    let mut listing = directory.listing(bob_id);
    let upload = impostor.keys_upload(None).expect("upload");
    let entry = listing.devices.iter_mut().find(|device| device.device_id == bob_phone.address().device_id);
    entry.expect("phone listed").identity_keys = upload.identity_keys;
    let report = alice.observe_user_devices(&listing);
    assert_eq!(report.key_changes.len(), 1, "{report:?}");
    assert_eq!(report.key_changes[0].trusted, bob_phone.identity_keys());
    assert_eq!(report.key_changes[0].presented, impostor.identity_keys());
    assert_eq!(
        alice.trust_store().device(bob_phone.address()).expect("known").keys,
        bob_phone.identity_keys(),
        "the first keys stay trusted"
    );

    let recipients: BTreeSet<_> = [bob_phone.address()].into();
    let preparation = alice.prepare_send(chat_id, &recipients, START).expect("prepare_send");
    assert_eq!(preparation.withheld, vec![bob_phone.address()]);
    assert!(alice.share_room_key(chat_id, &[]).expect("share").messages.is_empty());
    assert!(preparation.needs_room_key.is_empty());

    // Only an explicit decision adopts the new keys; then the device is a recipient again.
    assert_eq!(alice.accept_key_change(bob_phone.address()).expect("pending change"), impostor.identity_keys());
    directory.remove(bob_phone.address());
    directory.publish(&mut impostor);
    let preparation = alice.prepare_send(chat_id, &recipients, START).expect("prepare_send");
    assert!(preparation.rotated && preparation.withheld.is_empty());
    assert_eq!(preparation.needs_one_time_key, vec![bob_phone.address()]);
}

#[test]
fn forged_envelopes_and_misattributed_messages_are_refused() {
    let World { mut directory, mut alice, mut bob_phone, bob_laptop, chat_id } = world();
    let recipients: BTreeSet<_> = [bob_phone.address(), bob_laptop.address()].into();
    let preparation = alice.prepare_send(chat_id, &recipients, START).expect("prepare_send");
    let claimed = directory.claim(&preparation.needs_one_time_key);
    let share = alice.share_room_key(chat_id, &claimed).expect("share");
    let to_phone = share.messages.iter().find(|m| m.device_id == bob_phone.address().device_id).expect("phone");
    let to_laptop = share.messages.iter().find(|m| m.device_id == bob_laptop.address().device_id).expect("laptop");

    // The server claims the key came from Bob's laptop: the sender key does not match that device.
    let mut forged = deliver(&alice, to_phone);
    forged.sender_id = bob_laptop.address().user_id;
    forged.sender_device_id = bob_laptop.address().device_id;
    assert!(matches!(bob_phone.decrypt_to_device(&forged), Err(CoreError::EnvelopeMismatch(_))));

    // A message encrypted for the laptop, delivered to the phone, does not open there.
    assert!(bob_phone.decrypt_to_device(&deliver(&alice, to_laptop)).is_err());

    bob_phone.decrypt_to_device(&deliver(&alice, to_phone)).expect("genuine key");
    let message = alice.encrypt_message(chat_id, &text("signed by Alice"), START).expect("encrypt");
    // The server attributes Alice's message to Bob's laptop: the key was not received from that device.
    let misattributed =
        bob_phone.decrypt_message(chat_id, bob_laptop.address(), &message.algorithm, &message.ciphertext);
    assert!(matches!(misattributed, Err(CoreError::MissingRoomKey { .. })), "{misattributed:?}");
    // The server moves the message into another chat.
    let moved = bob_phone.decrypt_message(Uuid::new_v4(), alice.address(), &message.algorithm, &message.ciphertext);
    assert!(matches!(moved, Err(CoreError::MissingRoomKey { .. })), "{moved:?}");
    assert_eq!(read(&mut bob_phone, chat_id, alice.address(), &message), "signed by Alice");
}

#[test]
fn one_time_keys_are_replenished_below_the_threshold() {
    let World { mut directory, alice: _, mut bob_phone, bob_laptop: _, chat_id: _ } = world();
    let phone = bob_phone.address();
    assert_eq!(directory.count(phone), ONE_TIME_KEY_TARGET);
    assert!(bob_phone.replenish_one_time_keys(ONE_TIME_KEY_TARGET, true).expect("replenish").is_none());

    directory.claim(&[phone; 42]);
    assert_eq!(directory.count(phone), 8);
    assert!(bob_phone.replenish_one_time_keys(10, true).expect("replenish").is_none(), "10 is not below 10");
    let upload = bob_phone.replenish_one_time_keys(8, true).expect("replenish").expect("upload body");
    assert_eq!(upload.one_time_keys.len(), 42);
    assert!(upload.fallback_key.is_none());
    // The upload failed and is retried: the same keys again, none added.
    let retried = bob_phone.replenish_one_time_keys(8, true).expect("replenish").expect("upload body");
    assert_eq!(retried.one_time_keys, upload.one_time_keys);
    directory.publish(&mut bob_phone);
    assert_eq!(directory.count(phone), ONE_TIME_KEY_TARGET);

    let with_fallback = bob_phone.replenish_one_time_keys(ONE_TIME_KEY_TARGET, false).expect("replenish");
    assert!(with_fallback.expect("upload body").fallback_key.is_some());
}

#[test]
fn the_whole_state_survives_an_encrypted_save_and_restore() {
    let World { mut directory, mut alice, mut bob_phone, bob_laptop: _, chat_id } = world();
    send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone], START);
    let before = alice.encrypt_message(chat_id, &text("before saving"), START).expect("encrypt");

    let alice_key = [7u8; 32];
    let bob_key = [9u8; 32];
    let alice_saved = alice.to_encrypted_bytes(&alice_key).expect("save");
    let bob_saved = bob_phone.to_encrypted_bytes(&bob_key).expect("save");
    assert!(!String::from_utf8_lossy(&bob_saved).contains("before saving"));
    assert!(matches!(OwnDevice::from_encrypted_bytes(&bob_saved, &alice_key), Err(CoreError::StateDecryption)));
    let mut tampered = bob_saved.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(OwnDevice::from_encrypted_bytes(&tampered, &bob_key), Err(CoreError::StateDecryption)));

    let mut alice = OwnDevice::from_encrypted_bytes(&alice_saved, &alice_key).expect("restore");
    let mut bob_phone = OwnDevice::from_encrypted_bytes(&bob_saved, &bob_key).expect("restore");
    assert_eq!(read(&mut bob_phone, chat_id, alice.address(), &before), "before saving");

    // The restored outbound session and trust store carry on without a new key exchange.
    let recipients: BTreeSet<_> = [bob_phone.address()].into();
    let preparation = alice.prepare_send(chat_id, &recipients, START + 1).expect("prepare_send");
    assert!(!preparation.rotated && preparation.needs_room_key.is_empty());
    let after = alice.encrypt_message(chat_id, &text("after restoring"), START + 1).expect("encrypt");
    assert_eq!(read(&mut bob_phone, chat_id, alice.address(), &after), "after restoring");
    assert_eq!(
        alice.safety_number_with(bob_phone.address().user_id),
        bob_phone.safety_number_with(alice.address().user_id)
    );

    // The restored account still has the unpublished-keys bookkeeping and the same identity.
    assert_eq!(alice.keys_upload(None).expect("upload").one_time_keys.len(), 0);
    assert_eq!(
        directory.listing(alice.address().user_id).devices[0].identity_keys,
        alice.keys_upload(None).expect("upload").identity_keys
    );
}

#[test]
fn a_file_message_carries_a_decryptable_attachment() {
    let World { mut directory, mut alice, mut bob_phone, bob_laptop: _, chat_id } = world();
    send_keys(&mut alice, &mut directory, chat_id, &mut [&mut bob_phone], START);

    let mut file = b"%PDF-1.7 pretend this is a large document".to_vec();
    let original = file.clone();
    let mut encryptor = AttachmentEncryptor::new().expect("rng");
    for chunk in file.chunks_mut(8) {
        encryptor.update(chunk).expect("encrypt");
    }
    let info = encryptor.finish().into_info(Uuid::new_v4(), "application/pdf", "report.pdf");
    let content = MessageContent::File { file: info, body: "the report".to_owned(), thumbnail: None };
    let message = alice.encrypt_message(chat_id, &content, START).expect("encrypt");

    let decrypted =
        bob_phone.decrypt_message(chat_id, alice.address(), &message.algorithm, &message.ciphertext).expect("decrypts");
    let MessageContent::File { file: received, body, .. } = decrypted.content else { panic!("a file message") };
    assert_eq!(body, "the report");
    let received: AttachmentInfo = received;
    let mut decryptor = AttachmentDecryptor::new(&received).expect("attachment info");
    decryptor.update(&mut file).expect("decrypt");
    decryptor.finish().expect("hash verified");
    assert_eq!(file, original);
}

#[test]
fn safety_numbers_agree_and_change_with_a_new_device() {
    let World { mut directory, mut alice, mut bob_phone, bob_laptop: _, chat_id: _ } = world();
    let alice_id = alice.address().user_id;
    let bob_id = bob_phone.address().user_id;
    let seen_by_alice = alice.safety_number_with(bob_id);
    assert_eq!(seen_by_alice, bob_phone.safety_number_with(alice_id));
    assert_eq!(seen_by_alice.compact().len(), 60);

    let _bob_tablet = new_device(&mut directory, bob_id);
    learn_users(&mut alice, &directory, &[bob_id]);
    learn_users(&mut bob_phone, &directory, &[bob_id]);
    let after = alice.safety_number_with(bob_id);
    assert_ne!(after, seen_by_alice);
    assert_eq!(after, bob_phone.safety_number_with(alice_id));
}

#[test]
fn a_key_change_between_prepare_and_share_withholds_the_key() {
    let World { mut directory, mut alice, bob_phone, bob_laptop: _, chat_id } = world();
    let bob_id = bob_phone.address().user_id;
    let recipients: BTreeSet<_> = [bob_phone.address()].into();
    let preparation = alice.prepare_send(chat_id, &recipients, START).expect("prepare_send");
    let claimed = directory.claim(&preparation.needs_one_time_key);

    let impostor = OwnDevice::new(bob_id, bob_phone.address().device_id);
    let mut listing = directory.listing(bob_id);
    let entry = listing.devices.iter_mut().find(|device| device.device_id == bob_phone.address().device_id);
    entry.expect("phone listed").identity_keys = impostor.keys_upload(None).expect("upload").identity_keys;
    assert_eq!(alice.observe_user_devices(&listing).key_changes.len(), 1);

    let share = alice.share_room_key(chat_id, &claimed).expect("share");
    assert!(share.messages.is_empty());
    assert_eq!(share.withheld, vec![bob_phone.address()]);
    assert!(alice.prepare_send(chat_id, &recipients, START).expect("prepare_send").rotated);
}
