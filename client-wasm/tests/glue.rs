//! The JavaScript-facing API driven from Rust on the host: JSON in the server's shapes goes in, JSON in the
//! core's shapes comes out, and errors carry stable codes. (The same flows run in Node against the built
//! wasm: web/packages/core/test.)

// Helpers outside `#[test]` functions set up scenarios; a failed step is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use parley_client_wasm::{AttachmentDecryptor, AttachmentEncryptor, AttachmentVerifier, Device};
use serde_json::{json, Value};
use uuid::Uuid;

const NOW: f64 = 1_800_000_000.5;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("valid JSON")
}

fn new_device(user_id: Uuid) -> Device {
    Device::new(&user_id.to_string(), &Uuid::new_v4().to_string()).expect("device")
}

/// A listing as `GET /keys/users/{id}` answers it, built from upload bodies.
fn listing(user_id: Uuid, devices: &[(&Device, &Value)]) -> String {
    let devices: Vec<Value> = devices
        .iter()
        .map(|(device, upload)| {
            json!({"device_id": device.device_id(), "display_name": null, "identity_keys": upload["identity_keys"]})
        })
        .collect();
    json!({"user_id": user_id, "devices": devices}).to_string()
}

/// A `POST /keys/claim` answer handing out the first one-time key of `upload`.
fn claim(device: &Device, upload: &Value) -> String {
    let key = &upload["one_time_keys"][0];
    json!({"keys": [{
        "user_id": device.user_id(), "device_id": device.device_id(), "key_id": key["key_id"],
        "curve25519": key["curve25519"], "signature": key["signature"], "fallback": false, "remaining": 49,
    }]})
    .to_string()
}

#[test]
fn alice_shares_a_room_key_and_bob_reads_her_message() {
    let (alice_id, bob_id) = (Uuid::new_v4(), Uuid::new_v4());
    let mut alice = new_device(alice_id);
    let mut bob = new_device(bob_id);
    let alice_upload = parse(&alice.keys_upload(Some("laptop".to_owned())).expect("upload"));
    let bob_upload = parse(&bob.keys_upload(None).expect("upload"));
    assert_eq!(alice_upload["display_name"], "laptop");
    assert_eq!(alice_upload["one_time_keys"].as_array().map(Vec::len), Some(50));
    assert!(alice_upload["fallback_key"]["signature"].is_string());
    alice.mark_published();
    bob.mark_published();
    assert_eq!(alice.replenish_one_time_keys(50.0, true).expect("replenish"), None, "nothing to publish");
    let topped_up = parse(&alice.replenish_one_time_keys(3.0, true).expect("replenish").expect("an upload"));
    assert_eq!(topped_up["one_time_keys"].as_array().map(Vec::len), Some(47));

    let identity = parse(&alice.identity_keys().expect("keys"));
    assert_eq!(identity["user_id"], alice_id.to_string());
    assert_eq!(identity["ed25519"], alice_upload["identity_keys"]["ed25519"]);

    let report = parse(&alice.observe_user_devices(&listing(bob_id, &[(&bob, &bob_upload)])).expect("observe"));
    assert_eq!(report["new_devices"][0]["device_id"], bob.device_id());
    assert_eq!(report["key_changes"], json!([]));
    let report = parse(&bob.observe_user_devices(&listing(alice_id, &[(&alice, &alice_upload)])).expect("observe"));
    assert_eq!(report["new_devices"].as_array().map(Vec::len), Some(1));
    assert_eq!(parse(&alice.listed_devices(&bob_id.to_string()).expect("listed"))[0]["device_id"], bob.device_id());
    let known = parse(&alice.known_device(&bob.user_id(), &bob.device_id()).expect("known").expect("some"));
    assert_eq!(known["listed"], true);
    assert_eq!(known["pending_key_change"], Value::Null);
    assert_eq!(
        parse(&alice.safety_number(&bob.user_id()).expect("number")),
        parse(&bob.safety_number(&alice.user_id()).expect("number"))
    );

    let chat_id = Uuid::new_v4().to_string();
    let recipients = json!([{"user_id": bob.user_id(), "device_id": bob.device_id()}]).to_string();
    let preparation = parse(&alice.prepare_send(&chat_id, &recipients, NOW).expect("prepare"));
    assert_eq!(preparation["rotated"], true);
    assert_eq!(preparation["needs_one_time_key"][0]["device_id"], bob.device_id());
    assert!(!alice.has_olm_session(&bob.user_id(), &bob.device_id()).expect("address"));
    let share = parse(&alice.share_room_key(&chat_id, &claim(&bob, &bob_upload)).expect("share"));
    assert!(alice.has_olm_session(&bob.user_id(), &bob.device_id()).expect("address"));
    assert_eq!(share["messages"].as_array().map(Vec::len), Some(1));
    let message = &share["messages"][0];
    let delivered = json!({
        "id": Uuid::new_v4(), "sender_id": alice.user_id(), "sender_device_id": alice.device_id(),
        "ciphertext": message["ciphertext"],
    });
    let event = parse(&bob.decrypt_to_device(&delivered.to_string()).expect("room key"));
    assert_eq!(event["RoomKey"]["chat_id"], chat_id.as_str());
    assert_eq!(event["RoomKey"]["session_id"], preparation["session_id"]);

    let content = json!({"type": "text", "body": "hello Bob"}).to_string();
    let encrypted = parse(&alice.encrypt_message(&chat_id, &content, NOW).expect("encrypt"));
    assert_eq!(encrypted["algorithm"], "parley.megolm.v1");
    let decrypted = parse(
        &bob.decrypt_message(
            &chat_id,
            &alice.user_id(),
            &alice.device_id(),
            encrypted["algorithm"].as_str().expect("algorithm"),
            encrypted["ciphertext"].as_str().expect("ciphertext"),
        )
        .expect("decrypt"),
    );
    assert_eq!(decrypted["content"], json!({"type": "text", "body": "hello Bob"}));
    assert_eq!(decrypted["message_index"], 0);

    // The state survives save/restore: the restored Bob reads the next message.
    let key = [7u8; 32];
    let saved = bob.save(&key).expect("save");
    assert_eq!(Device::restore(&saved, &[8u8; 32]).err().map(|error| error.code()), Some("state_decryption"));
    let mut restored = Device::restore(&saved, &key).expect("restore");
    assert_eq!(restored.device_id(), bob.device_id());
    let next = parse(&alice.encrypt_message(&chat_id, &content, NOW).expect("encrypt"));
    let read = parse(
        &restored
            .decrypt_message(
                &chat_id,
                &alice.user_id(),
                &alice.device_id(),
                "parley.megolm.v1",
                next["ciphertext"].as_str().expect("ciphertext"),
            )
            .expect("decrypt after restore"),
    );
    assert_eq!(read["message_index"], 1);
}

#[test]
fn errors_carry_stable_codes_and_details() {
    let mut alice = new_device(Uuid::new_v4());
    let stranger = Uuid::new_v4().to_string();
    let chat_id = Uuid::new_v4().to_string();

    let error = Device::new("not-a-uuid", &stranger).err().expect("refused");
    assert_eq!(error.code(), "invalid_argument");
    assert_eq!(alice.observe_user_devices("{").expect_err("refused").code(), "invalid_argument");
    assert_eq!(alice.save(&[0; 16]).expect_err("refused").code(), "invalid_argument");

    let recipients = json!([{"user_id": stranger, "device_id": stranger}]).to_string();
    let error = alice.prepare_send(&chat_id, &recipients, NOW).expect_err("unknown device");
    assert_eq!(error.code(), "unknown_devices");
    assert_eq!(error.details(), Some(&json!({"devices": [{"user_id": stranger, "device_id": stranger}]})));
    let error = alice.encrypt_message(&chat_id, r#"{"type":"text","body":"x"}"#, NOW).expect_err("no session");
    assert_eq!(error.code(), "no_outbound_session");
    assert!(error.message().contains("prepare_send"), "{error}");

    let error = alice
        .decrypt_message(&chat_id, &stranger, &stranger, "parley.megolm.v1", "e30=")
        .expect_err("no session named");
    assert_eq!(error.code(), "malformed", "{error}");
    assert_eq!(alice.known_device(&stranger, &stranger).expect("address"), None);
}

#[test]
fn a_listing_with_a_bad_signature_is_refused() {
    let mut alice = new_device(Uuid::new_v4());
    let bob_id = Uuid::new_v4();
    let bob = new_device(bob_id);
    let mut upload = parse(&bob.keys_upload(None).expect("upload"));
    let other = parse(&new_device(bob_id).keys_upload(None).expect("upload"));
    upload["identity_keys"]["signature"] = other["identity_keys"]["signature"].clone();
    let report = parse(&alice.observe_user_devices(&listing(bob_id, &[(&bob, &upload)])).expect("observe"));
    assert_eq!(report["new_devices"], json!([]));
    assert_eq!(report["rejected_devices"][0]["device"]["device_id"], bob.device_id());
    assert!(report["rejected_devices"][0]["reason"].as_str().is_some_and(|reason| reason.contains("bad signature")));
}

#[test]
fn attachments_stream_through_and_tampering_is_detected() {
    let plaintext: Vec<u8> = (0..70_000u32).map(|index| (index % 253) as u8).collect();
    let mut encryptor = AttachmentEncryptor::new().expect("encryptor");
    let mut ciphertext = Vec::new();
    for chunk in plaintext.chunks(4099) {
        ciphertext.extend(encryptor.update(chunk.to_vec()).expect("encrypt"));
    }
    let mut keys = parse(&encryptor.finish().expect("keys"));
    assert_eq!(encryptor.finish().expect_err("second finish").code(), "finished");
    assert_eq!(keys["size"], plaintext.len());
    assert_eq!(keys.as_object().map(|fields| fields.len()), Some(5), "{keys}");
    keys["media_id"] = json!(Uuid::new_v4());
    keys["content_type"] = json!("application/pdf");
    keys["name"] = json!("report.pdf");
    let info = keys.to_string();

    let mut verifier = AttachmentVerifier::new(&info).expect("verifier");
    verifier.update(&ciphertext).expect("hash");
    verifier.finish().expect("intact");

    let mut decryptor = AttachmentDecryptor::new(&info).expect("decryptor");
    let mut decrypted = Vec::new();
    for chunk in ciphertext.chunks(1000) {
        decrypted.extend(decryptor.update(chunk.to_vec()).expect("decrypt"));
    }
    decryptor.finish().expect("intact");
    assert_eq!(decrypted, plaintext);

    ciphertext[12_345] ^= 1;
    let mut decryptor = AttachmentDecryptor::new(&info).expect("decryptor");
    decryptor.update(ciphertext.clone()).expect("decrypt");
    assert_eq!(decryptor.finish().expect_err("tampered").code(), "attachment_hash_mismatch");
    let mut verifier = AttachmentVerifier::new(&info).expect("verifier");
    verifier.update(&ciphertext[1..]).expect("hash");
    let error = verifier.finish().expect_err("truncated");
    assert_eq!(error.code(), "attachment_size_mismatch");
    assert_eq!(error.details(), Some(&json!({"expected": 70_000, "actual": 69_999})));
}
