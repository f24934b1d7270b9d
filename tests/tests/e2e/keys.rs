//! The key directory over the running stack: devices and their signed keys, exactly-once
//! one-time key claims, to-device queues, and every refusal an attacker would try.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use futures::future::join_all;
use parley_tests::{error_code, Socket, Stack, StackOptions};
use serde_json::{json, Value};

use parley_tests::devices::{b64, device, TestDevice};
use parley_tests::{direct, send};

/// Signs in again as `of`'s user: a second device.
async fn second_device(stack: &Stack, email: &str, of: &TestDevice, seed: u8) -> Result<TestDevice> {
    let (status, login) =
        stack.post("/auth/login", None, &json!({"email": email, "password": parley_tests::PASSWORD})).await?;
    ensure!(status == 200, "login: {status} {login}");
    Ok(TestDevice::new(
        &of.user_id,
        login["device_id"].as_str().context("login answers device_id")?,
        login["access_token"].as_str().context("token")?,
        seed,
    ))
}

async fn claim(stack: &Stack, by: &TestDevice, of: &TestDevice) -> Result<(u16, Value)> {
    stack
        .post("/keys/claim", Some(&by.token), &json!({"devices": [{"user_id": of.user_id, "device_id": of.device_id}]}))
        .await
}

#[tokio::test]
async fn the_directory_shows_signed_devices_only_to_people_sharing_a_chat() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = device(&stack, "ada", 1, 3).await?;
    let bob = device(&stack, "bob", 2, 0).await?;

    // A stranger learns nothing: not the devices, not a key, and cannot queue messages.
    let (status, body) = stack.get(&format!("/keys/users/{}", ada.user_id), Some(&bob.token)).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"));
    assert_eq!(claim(&stack, &bob, &ada).await?.0, 404);
    let (status, _) = stack.post("/keys/query", Some(&bob.token), &json!({"user_ids": [ada.user_id]})).await?;
    assert_eq!(status, 404);
    let to_ada = json!({"messages": [{"user_id": ada.user_id, "device_id": ada.device_id, "ciphertext": "x"}]});
    assert_eq!(stack.post("/to-device", Some(&bob.token), &to_ada).await?.0, 404);

    direct(&stack, &bob.member(), &ada.member()).await?;
    let (status, listed) = stack.get(&format!("/keys/users/{}", ada.user_id), Some(&bob.token)).await?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["devices"][0]["device_id"], json!(ada.device_id));
    assert_eq!(listed["devices"][0]["identity_keys"], ada.identity_keys());
    assert_eq!(listed["devices"][0]["display_name"], "laptop");
    let (status, queried) =
        stack.post("/keys/query", Some(&bob.token), &json!({"user_ids": [ada.user_id, bob.user_id]})).await?;
    assert_eq!(status, 200, "{queried}");
    assert_eq!(queried["users"].as_array().map(Vec::len), Some(2));

    // Claims hand out one-time keys in order, then the fallback key, marked as such.
    let mut handed_out = Vec::new();
    for _ in 0..4 {
        let (status, claimed) = claim(&stack, &bob, &ada).await?;
        assert_eq!(status, 200, "{claimed}");
        handed_out.push(claimed["keys"][0].clone());
    }
    let ids: Vec<&str> = handed_out.iter().filter_map(|k| k["key_id"].as_str()).collect();
    assert_eq!(ids, ["k0", "k1", "k2", "fb"]);
    assert_eq!(
        handed_out.iter().map(|k| k["fallback"].as_bool()).collect::<Vec<_>>(),
        [Some(false), Some(false), Some(false), Some(true)]
    );
    assert_eq!(
        handed_out.iter().map(|k| k["remaining"].as_u64()).collect::<Vec<_>>(),
        [Some(2), Some(1), Some(0), Some(0)]
    );
    assert_eq!(handed_out[0]["signature"], ada.one_time_key("k0", false)["signature"]);

    // The owner sees its stock and which device is the current one.
    stack
        .eventually(Duration::from_secs(10), "the owner to see its stock used up", || async {
            let (status, own) = stack.get("/keys/devices", Some(&ada.token)).await?;
            ensure!(status == 200, "{own}");
            assert_eq!(
                (&own["items"][0]["current"], &own["items"][0]["has_fallback_key"]),
                (&json!(true), &json!(true))
            );
            Ok(own["items"][0]["one_time_key_count"] == 0)
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn malformed_forged_and_replaced_keys_are_refused() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = device(&stack, "ada", 1, 1).await?;
    let path = format!("/keys/devices/{}", ada.device_id);

    // Someone else's identity keys (signed by another key), or ones signed for another device.
    let impostor = TestDevice::new(&ada.user_id, &ada.device_id, &ada.token, 9);
    let mut forged = impostor.upload(0);
    forged["identity_keys"]["signature"] = ada.identity_keys()["signature"].clone();
    let fresh = second_device_token(&stack, &ada).await?;
    let (status, body) = stack.put(&format!("/keys/devices/{}", fresh.device_id), &fresh.token, &forged).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "bad_signature"), "{body}");
    // An identity key, once published, cannot be replaced.
    let (status, body) = stack.put(&path, &ada.token, &impostor.upload(0)).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (409, "identity_keys_changed"), "{body}");
    // Malformed keys, wrong types, unsigned one-time keys, oversized stock.
    let mut malformed = ada.upload(0);
    malformed["identity_keys"]["curve25519"] = json!("AAAA");
    assert_eq!(stack.put(&path, &ada.token, &malformed).await?.0, 409);
    let fresh2 = second_device_token(&stack, &ada).await?;
    let mut malformed = fresh2.upload(0);
    malformed["identity_keys"]["curve25519"] = json!("not*base64");
    let (status, body) = stack.put(&format!("/keys/devices/{}", fresh2.device_id), &fresh2.token, &malformed).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "malformed_identity_keys"), "{body}");
    let mut wrong_type = ada.upload(0);
    wrong_type["identity_keys"] = json!(42);
    assert_eq!(stack.put(&path, &ada.token, &wrong_type).await?.0, 400);
    let mut unsigned = ada.upload(0);
    unsigned["one_time_keys"] = json!([{"key_id": "x", "curve25519": b64(&[1; 32]), "signature": b64(&[0; 64])}]);
    let (status, body) = stack.put(&path, &ada.token, &unsigned).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "bad_signature"), "{body}");
    let (status, body) = stack.put(&path, &ada.token, &ada.upload(101)).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "too_many_one_time_keys"), "{body}");
    // A one-time key id handed out before cannot come back with another key.
    let mut reused = ada.upload(0);
    reused["one_time_keys"] = json!([ada.signed_key("k0", &[7; 32], false)]);
    let (status, body) = stack.put(&path, &ada.token, &reused).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (409, "one_time_key_id_reused"), "{body}");
    assert_eq!(claim(&stack, &ada, &ada).await?.1["keys"][0]["key_id"], "k0");
    assert_eq!(stack.put(&path, &ada.token, &reused).await?.0, 409, "nor once it was claimed");
    // Only a session's own device id; unknown devices are not found.
    let (status, body) =
        stack.put(&format!("/keys/devices/{}", uuid::Uuid::new_v4()), &ada.token, &ada.upload(0)).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (403, "forbidden"));
    let ghost = json!({"devices": [{"user_id": ada.user_id, "device_id": uuid::Uuid::new_v4()}]});
    assert_eq!(stack.post("/keys/claim", Some(&ada.token), &ghost).await?.0, 404);
    // Batches are bounded.
    let too_many: Vec<Value> =
        (0..1001).map(|_| json!({"user_id": ada.user_id, "device_id": uuid::Uuid::new_v4()})).collect();
    let (status, body) = stack.post("/keys/claim", Some(&ada.token), &json!({"devices": too_many})).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_batch_size"));
    let (status, _) = stack.post("/keys/claim", Some(&ada.token), &json!({"devices": []})).await?;
    assert_eq!(status, 400);
    Ok(())
}

/// A fresh session of `of`'s user whose device has not published yet (new signing key).
async fn second_device_token(stack: &Stack, of: &TestDevice) -> Result<TestDevice> {
    let (status, login) = stack.get(&format!("/users/{}", of.user_id), Some(&of.token)).await?;
    ensure!(status == 200, "{login}");
    let email = login["email"].as_str().context("own profile has the email")?.to_owned();
    second_device(stack, &email, of, 33).await
}

#[tokio::test]
async fn a_hundred_concurrent_claims_never_hand_out_a_key_twice() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = device(&stack, "ada", 1, 100).await?;
    let bob = device(&stack, "bob", 2, 0).await?;
    direct(&stack, &bob.member(), &ada.member()).await?;
    let mut ada_socket = Socket::connect(&stack.base_url, &ada.token, None).await?;

    let claims = join_all((0..100).map(|_| claim(&stack, &bob, &ada))).await;
    let mut ids = BTreeSet::new();
    for claimed in claims {
        let (status, body) = claimed?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["keys"][0]["fallback"], false, "{body}");
        ids.insert(body["keys"][0]["key_id"].as_str().context("key id")?.to_owned());
    }
    assert_eq!(ids.len(), 100, "every one-time key handed out exactly once");
    let (status, after) = claim(&stack, &bob, &ada).await?;
    assert_eq!((status, &after["keys"][0]["key_id"], &after["keys"][0]["fallback"]), (200, &json!("fb"), &json!(true)));
    // The owner was told its stock ran low before it ran dry.
    let low = ada_socket.expect("one_time_keys.low", Duration::from_secs(10)).await?;
    assert_eq!(low["data"]["device_id"], json!(ada.device_id));
    ensure!(low["data"]["remaining"].as_u64().is_some_and(|r| r < 10), "{low}");
    Ok(())
}

#[tokio::test]
async fn to_device_messages_reach_only_their_device_until_acknowledged() -> Result<()> {
    let stack = Stack::start_with(StackOptions::default().env("PARLEY_TO_DEVICE_QUEUE_MAX", "3")).await?;
    let email = parley_tests::unique_email("ada");
    let registered = stack.register("ada", &email).await?;
    let ada = TestDevice::new(
        registered["user"]["id"].as_str().context("id")?,
        registered["device_id"].as_str().context("device")?,
        registered["access_token"].as_str().context("token")?,
        1,
    );
    ada.publish(&stack, 1).await?;
    let ada_phone = second_device(&stack, &email, &ada, 3).await?;
    ada_phone.publish(&stack, 1).await?;
    let bob = device(&stack, "bob", 2, 0).await?;
    direct(&stack, &bob.member(), &ada.member()).await?;
    let mut laptop_socket = Socket::connect(&stack.base_url, &ada.token, None).await?;
    let mut phone_socket = Socket::connect(&stack.base_url, &ada_phone.token, None).await?;

    let (status, sent) = stack
        .post(
            "/to-device",
            Some(&bob.token),
            &json!({"messages": [{"user_id": ada.user_id, "device_id": ada.device_id, "ciphertext": "room key for the laptop"}]}),
        )
        .await?;
    assert_eq!(status, 200, "{sent}");
    let id = sent["ids"][0].clone();
    let frame = laptop_socket.expect("to_device", Duration::from_secs(10)).await?;
    // The sender is the server's word: Bob's user and device.
    assert_eq!(
        (
            &frame["data"]["id"],
            &frame["data"]["sender_id"],
            &frame["data"]["sender_device_id"],
            &frame["data"]["ciphertext"]
        ),
        (&id, &json!(bob.user_id), &json!(bob.device_id), &json!("room key for the laptop"))
    );
    ensure!(
        phone_socket.expect("to_device", Duration::from_millis(700)).await.is_err(),
        "the phone got the laptop's message"
    );

    // The phone can neither read nor acknowledge the laptop's queue.
    let (_, phone_queue) = stack.get("/to-device", Some(&ada_phone.token)).await?;
    assert_eq!(phone_queue["items"], json!([]));
    let (status, _) = stack.post("/to-device/ack", Some(&ada_phone.token), &json!({"ids": [id]})).await?;
    assert_eq!(status, 204);
    let (_, queue) = stack.get("/to-device", Some(&ada.token)).await?;
    assert_eq!(queue["items"][0]["id"], id, "{queue}");
    // A reconnecting socket is handed what is still queued.
    let mut again = Socket::connect(&stack.base_url, &ada.token, None).await?;
    assert_eq!(again.expect("to_device", Duration::from_secs(10)).await?["data"]["id"], id);
    // Acknowledged, it is gone.
    assert_eq!(stack.post("/to-device/ack", Some(&ada.token), &json!({"ids": [id]})).await?.0, 204);
    let (_, queue) = stack.get("/to-device", Some(&ada.token)).await?;
    assert_eq!(queue["items"], json!([]));

    // Bounds: batch size, unknown devices, a device of another user named as someone else's,
    // NUL, and a full queue.
    let to = |device: &TestDevice, user: &str, text: &str| json!({"user_id": user, "device_id": device.device_id, "ciphertext": text});
    let (status, body) = stack.post("/to-device", Some(&bob.token), &json!({"messages": []})).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_batch_size"));
    let many: Vec<Value> = (0..1001).map(|_| to(&ada, &ada.user_id, "x")).collect();
    assert_eq!(stack.post("/to-device", Some(&bob.token), &json!({"messages": many})).await?.0, 400);
    let ghost = json!({"messages": [{"user_id": ada.user_id, "device_id": uuid::Uuid::new_v4(), "ciphertext": "x"}]});
    assert_eq!(stack.post("/to-device", Some(&bob.token), &ghost).await?.0, 404);
    let mislabelled = json!({"messages": [to(&bob, &ada.user_id, "x")]});
    assert_eq!(stack.post("/to-device", Some(&bob.token), &mislabelled).await?.0, 404);
    let (status, body) =
        stack.post("/to-device", Some(&bob.token), &json!({"messages": [to(&ada, &ada.user_id, "a\u{0}b")]})).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_ciphertext"));
    let big = "y".repeat(16 * 1024 + 1);
    assert_eq!(
        stack.post("/to-device", Some(&bob.token), &json!({"messages": [to(&ada, &ada.user_id, &big)]})).await?.0,
        400
    );
    let three: Vec<Value> = (0..3).map(|_| to(&ada, &ada.user_id, "fills")).collect();
    assert_eq!(stack.post("/to-device", Some(&bob.token), &json!({"messages": three})).await?.0, 200);
    // The bound is checked against the queue as stored (a batch in flight is not counted yet).
    stack
        .eventually(Duration::from_secs(10), "the three messages to be queued", || async {
            let (_, queue) = stack.get("/to-device", Some(&ada.token)).await?;
            Ok(queue["items"].as_array().map(Vec::len) == Some(3))
        })
        .await?;
    let (status, body) = stack
        .post("/to-device", Some(&bob.token), &json!({"messages": [to(&ada, &ada.user_id, "one too many")]}))
        .await?;
    assert_eq!((status, error_code(&body)?.as_str()), (409, "to_device_queue_full"), "{body}");
    Ok(())
}

#[tokio::test]
async fn removing_a_device_signs_it_out_and_tells_contacts() -> Result<()> {
    let stack = Stack::start().await?;
    let email = parley_tests::unique_email("ada");
    let registered = stack.register("ada", &email).await?;
    let ada = TestDevice::new(
        registered["user"]["id"].as_str().context("id")?,
        registered["device_id"].as_str().context("device")?,
        registered["access_token"].as_str().context("token")?,
        1,
    );
    ada.publish(&stack, 2).await?;
    let phone = second_device(&stack, &email, &ada, 3).await?;
    phone.publish(&stack, 2).await?;
    let bob = device(&stack, "bob", 2, 0).await?;
    let chat = direct(&stack, &bob.member(), &ada.member()).await?;
    let mut bob_socket = Socket::connect(&stack.base_url, &bob.token, None).await?;

    // Messages carry the sending device as the server knows it.
    let (status, message) = send(&stack, &chat, &phone.member(), "c1", "hi").await?;
    assert_eq!((status, &message["sender_device_id"]), (201, &json!(phone.device_id)), "{message}");
    let (_, history) = stack.get(&format!("/chats/{chat}/messages"), Some(&bob.token)).await?;
    assert_eq!(history["items"][0]["sender_device_id"], json!(phone.device_id), "{history}");

    // Someone else cannot remove it; its owner can, from the other device.
    assert_eq!(
        stack
            .http
            .delete(stack.url(&format!("/keys/devices/{}", phone.device_id)))
            .bearer_auth(&bob.token)
            .send()
            .await?
            .status(),
        404
    );
    let removed = stack
        .http
        .delete(stack.url(&format!("/keys/devices/{}", phone.device_id)))
        .bearer_auth(&ada.token)
        .send()
        .await?;
    assert_eq!(removed.status(), 204);
    let changed = bob_socket.expect("device_list.changed", Duration::from_secs(10)).await?;
    assert_eq!(changed["data"]["user_id"], json!(ada.user_id));
    let (_, listed) = stack.get(&format!("/keys/users/{}", ada.user_id), Some(&bob.token)).await?;
    assert_eq!(listed["devices"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(claim(&stack, &bob, &phone).await?.0, 404, "a removed device's keys are gone");
    let (status, _) = stack.get("/keys/devices", Some(&phone.token)).await?;
    assert_eq!(status, 401, "the removed device is signed out");
    ensure!(phone.publish(&stack, 1).await.is_err(), "a removed device cannot publish again");

    // Logging out removes the device too.
    let (status, _) = stack.post("/auth/logout", Some(&ada.token), &json!({})).await?;
    assert_eq!(status, 204);
    stack
        .eventually(Duration::from_secs(10), "the logged-out device to leave the directory", || async {
            let (_, listed) = stack.get(&format!("/keys/users/{}", ada.user_id), Some(&bob.token)).await?;
            Ok(listed["devices"] == json!([]))
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_batch_larger_than_a_nats_message_is_delivered_and_stalls_nothing() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = device(&stack, "ada", 1, 0).await?;
    let bob = device(&stack, "bob", 2, 0).await?;
    let chat = direct(&stack, &bob.member(), &ada.member()).await?;
    // 150 room-key-sized messages of 10 KiB: 1.5 MB, over NATS's 1 MiB message limit.
    let messages: Vec<Value> = (0..150)
        .map(|i| json!({"user_id": ada.user_id, "device_id": ada.device_id, "ciphertext": format!("{i:04}{}", "k".repeat(10 * 1024))}))
        .collect();
    let (status, sent) = stack.post("/to-device", Some(&bob.token), &json!({"messages": messages})).await?;
    assert_eq!(status, 200, "{sent}");
    stack
        .eventually(Duration::from_secs(15), "all 150 messages to be queued, in order", || async {
            let (_, queue) = stack.get("/to-device?limit=1000", Some(&ada.token)).await?;
            let items = queue["items"].as_array().cloned().unwrap_or_default();
            let order: Vec<&str> = items.iter().filter_map(|m| m["ciphertext"].as_str()).map(|c| &c[..4]).collect();
            let expected: Vec<String> = (0..150).map(|i| format!("{i:04}")).collect();
            Ok(order == expected.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await?;
    // Everything after it still flows (the relay did not stop at an event it cannot publish).
    let mut ada_socket = Socket::connect(&stack.base_url, &ada.token, None).await?;
    let (status, _) = send(&stack, &chat, &bob.member(), "after", "still here").await?;
    assert_eq!(status, 201);
    ada_socket.expect("message.created", Duration::from_secs(10)).await?;
    Ok(())
}

#[tokio::test]
async fn a_removed_member_loses_the_directory_with_the_chat() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = device(&stack, "ada", 1, 2).await?;
    let bob = device(&stack, "bob", 2, 0).await?;
    let chat = parley_tests::group(&stack, &ada.member(), &[&bob.member()]).await?;
    assert_eq!(stack.get(&format!("/keys/users/{}", ada.user_id), Some(&bob.token)).await?.0, 200);
    let removed = stack
        .http
        .delete(stack.url(&format!("/chats/{chat}/members/{}", bob.user_id)))
        .bearer_auth(&ada.token)
        .send()
        .await?;
    assert_eq!(removed.status(), 204);
    stack
        .eventually(Duration::from_secs(10), "the removal to close the directory", || async {
            Ok(stack.get(&format!("/keys/users/{}", ada.user_id), Some(&bob.token)).await?.0 == 404)
        })
        .await?;
    assert_eq!(claim(&stack, &bob, &ada).await?.0, 404);
    let to_ada = json!({"messages": [{"user_id": ada.user_id, "device_id": ada.device_id, "ciphertext": "x"}]});
    assert_eq!(stack.post("/to-device", Some(&bob.token), &to_ada).await?.0, 404);
    Ok(())
}
