use std::time::Duration;

use anyhow::Result;
use parley_tests::{text, Socket, Stack};
use serde_json::json;

use parley_tests::{ciphertext, group, member, send};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn frames_cross_api_replicas_and_never_reach_non_members() -> Result<()> {
    let mut stack = Stack::start().await?;
    let second = stack.start_extra_api().await?;
    let (ada, bob, eve) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "eve").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    // Bob and Eve listen on the second replica; Ada writes through the first.
    let mut bobs = Socket::connect(&second, &bob.token, None).await?;
    let mut eves = Socket::connect(&second, &eve.token, None).await?;
    let mut adas = Socket::connect(&stack.base_url, &ada.token, None).await?;

    let (status, sent) = send(&stack, &chat, &ada, "m1", "over the wire").await?;
    assert_eq!(status, 201);
    let frame = bobs.expect("message.created", WAIT).await?;
    assert_eq!(frame["data"]["id"], sent["id"]);
    assert_eq!(frame["data"]["ciphertext"], ciphertext("over the wire"));
    assert!(frame["cursor"].as_str().is_some_and(|c| !c.is_empty()));
    // The frame is the message exactly as history gives it.
    let (_, history) = stack.get(&format!("/chats/{chat}/messages?limit=1"), Some(&bob.token)).await?;
    assert_eq!(frame["data"], history["items"][0]);
    assert_eq!(sent, history["items"][0], "the POST answer too");

    // Receipts reach the sender.
    let (status, _) =
        stack.post(&format!("/chats/{chat}/mark-read"), Some(&bob.token), &json!({"up_to_seq": 1})).await?;
    assert_eq!(status, 204);
    let read = adas.expect("chat.read", WAIT).await?;
    assert_eq!(
        (read["data"]["user_id"].as_str(), read["data"]["up_to_seq"].as_i64()),
        (Some(bob.id.as_str()), Some(1))
    );

    // Typing is relayed to the other members only.
    adas.send(&json!({"type": "typing", "chat_id": chat})).await?;
    let typing = bobs.expect("typing", WAIT).await?;
    assert_eq!(typing["data"]["user_id"].as_str(), Some(ada.id.as_str()));

    // Ping/pong.
    bobs.send(&json!({"type": "ping"})).await?;
    bobs.expect("pong", WAIT).await?;

    // Eve saw none of it.
    assert_eq!(eves.next(Duration::from_millis(500)).await?, None);
    eves.send(&json!({"type": "typing", "chat_id": chat})).await?;
    assert_eq!(eves.expect("error", WAIT).await?["data"]["code"], "not_found");
    assert_eq!(bobs.next(Duration::from_millis(300)).await?, None, "a non-member's typing must not arrive");
    Ok(())
}

#[tokio::test]
async fn a_reconnect_with_a_cursor_replays_exactly_what_was_missed() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let mut bobs = Socket::connect(&stack.base_url, &bob.token, None).await?;
    send(&stack, &chat, &ada, "m1", "one").await?;
    let first = bobs.expect("message.created", WAIT).await?;
    let cursor = text(&first["cursor"])?;
    drop(bobs);

    let (_, second) = send(&stack, &chat, &ada, "m2", "two").await?;
    send(&stack, &chat, &ada, "m3", "three").await?;
    let (_, third) = send(&stack, &chat, &ada, "m4", "deleted before delivery").await?;
    let delete = |token: &str, message: &serde_json::Value, scope: &str| {
        let path = format!("/chats/{chat}/messages/{}?for={scope}", message["id"].as_str().unwrap_or_default());
        stack.http.delete(stack.url(&path)).bearer_auth(token.to_owned()).send()
    };
    assert_eq!(delete(&ada.token, &third, "everyone").await?.status().as_u16(), 204);
    // Bob deletes one for himself from another device.
    assert_eq!(delete(&bob.token, &second, "me").await?.status().as_u16(), 204);

    let mut again = Socket::connect(&stack.base_url, &bob.token, Some(&cursor)).await?;
    let mut replayed = Vec::new();
    while let Some(frame) = again.next(Duration::from_millis(800)).await? {
        replayed.push(frame);
    }
    let cursors: Vec<i64> = replayed.iter().filter_map(|f| f["cursor"].as_str()?.parse().ok()).collect();
    assert!(cursors.len() == replayed.len() && cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    // While disconnected Bob was offline, so each message also notified him.
    let notified = replayed.iter().filter(|f| f["type"] == "notification.created").count();
    assert_eq!(notified, 3);
    replayed.retain(|f| f["type"] != "notification.created");
    let kinds: Vec<(String, Option<i64>)> = replayed
        .iter()
        .map(|f| (f["type"].as_str().unwrap_or_default().to_owned(), f["data"]["seq"].as_i64()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("message.created".to_owned(), Some(3)),
            ("message.created".to_owned(), Some(4)),
            ("message.deleted".to_owned(), Some(4)),
            ("message.deleted".to_owned(), Some(2)),
        ],
        "the message Bob deleted for himself is not replayed to him"
    );
    // The replayed deleted message is a tombstone, not its old body.
    assert_eq!(replayed[1]["data"]["deleted"], true);
    assert!(replayed[1]["data"]["ciphertext"].is_null());
    assert_eq!(replayed[3]["data"]["for"], "me");

    // Bad credentials and cursors are refused before the upgrade.
    assert!(Socket::connect(&stack.base_url, "not-a-token", None).await.is_err());
    assert!(Socket::connect(&stack.base_url, &bob.token, Some("-5")).await.is_err());
    Ok(())
}

#[tokio::test]
async fn a_browser_can_pass_its_token_as_a_websocket_subprotocol() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = member(&stack, "ada").await?;
    let (mut socket, selected) = Socket::connect_by_protocol(&stack.base_url, &ada.token).await?;
    assert_eq!(selected.as_deref(), Some("bearer"));
    socket.send(&json!({"type": "ping"})).await?;
    socket.expect("pong", Duration::from_secs(5)).await?;
    assert!(Socket::connect_by_protocol(&stack.base_url, "not-a-token").await.is_err(), "a bad token is refused");
    Ok(())
}

#[tokio::test]
async fn a_client_frame_over_64_kib_closes_the_socket() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = member(&stack, "ada").await?;
    let mut socket = Socket::connect(&stack.base_url, &ada.token, None).await?;
    // Just under the cap: read and answered (unknown fields are ignored).
    socket.send(&json!({"type": "ping", "pad": "x".repeat(60 * 1024)})).await?;
    socket.expect("pong", WAIT).await?;
    // Over it: the server drops the connection instead of buffering whatever a client sends.
    socket.send(&json!({"type": "ping", "pad": "x".repeat(70 * 1024)})).await?;
    let after = socket.next(WAIT).await;
    assert!(after.is_err(), "the socket should have been closed, got {after:?}");
    Ok(())
}
