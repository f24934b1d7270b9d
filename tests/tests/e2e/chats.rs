use std::collections::BTreeSet;

use anyhow::Result;
use futures::future::join_all;
use parley_tests::{ciphertext, error_code, group, member, send, text, Member, Stack};
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn a_direct_chat_exists_once_per_pair() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let (status, first) =
        stack.post("/chats", Some(&ada.token), &json!({"type": "direct", "member_ids": [bob.id]})).await?;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["type"], "direct");
    assert_eq!(first["members"].as_array().map(Vec::len), Some(2));
    let (status, again) =
        stack.post("/chats", Some(&ada.token), &json!({"type": "direct", "member_ids": [bob.id]})).await?;
    assert_eq!((status, &again["id"]), (200, &first["id"]));
    let (status, reverse) =
        stack.post("/chats", Some(&bob.token), &json!({"type": "direct", "member_ids": [ada.id]})).await?;
    assert_eq!((status, &reverse["id"]), (200, &first["id"]));

    // Concurrent first contacts still make one chat.
    let carl = member(&stack, "carl").await?;
    let attempts = (0..6).map(|i| {
        let (token, other) = if i % 2 == 0 { (&ada.token, &carl.id) } else { (&carl.token, &ada.id) };
        let body = json!({"type": "direct", "member_ids": [other]});
        let stack = &stack;
        async move { stack.post("/chats", Some(token), &body).await }
    });
    let ids: BTreeSet<String> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.and_then(|(_, chat)| text(&chat["id"])))
        .collect::<Result<_>>()?;
    assert_eq!(ids.len(), 1, "{ids:?}");

    for bad in [
        json!({"type": "direct", "member_ids": []}),
        json!({"type": "direct", "member_ids": [ada.id]}),
        json!({"type": "direct", "member_ids": [Uuid::new_v4()]}),
        json!({"type": "channel", "member_ids": [bob.id]}),
    ] {
        let (status, body) = stack.post("/chats", Some(&ada.token), &bad).await?;
        assert_eq!(status, 400, "{bad}: {body}");
        error_code(&body)?;
    }
    Ok(())
}

#[tokio::test]
async fn group_lifecycle_with_roles_and_invites() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, cyd, dee) = (
        member(&stack, "ada").await?,
        member(&stack, "bob").await?,
        member(&stack, "cyd").await?,
        member(&stack, "dee").await?,
    );
    let chat = group(&stack, &ada, &[&bob]).await?;
    let (_, view) = stack.get(&format!("/chats/{chat}"), Some(&bob.token)).await?;
    let role_of = |view: &Value, id: &str| {
        view["members"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["user_id"] == id))
            .and_then(|m| m["role"].as_str().map(str::to_owned))
    };
    assert_eq!(role_of(&view, &ada.id).as_deref(), Some("admin"));
    assert_eq!(role_of(&view, &bob.id).as_deref(), Some("member"));

    // Members may not add; admins may.
    let (status, _) =
        stack.post(&format!("/chats/{chat}/members"), Some(&bob.token), &json!({"user_ids": [cyd.id]})).await?;
    assert_eq!(status, 403);
    let (status, view) =
        stack.post(&format!("/chats/{chat}/members"), Some(&ada.token), &json!({"user_ids": [cyd.id]})).await?;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["members"].as_array().map(Vec::len), Some(3));

    // Invite and join.
    let (status, invite) = stack.post(&format!("/chats/{chat}/invite"), Some(&bob.token), &json!({})).await?;
    assert_eq!(status, 403, "{invite}");
    let (status, invite) = stack.post(&format!("/chats/{chat}/invite"), Some(&ada.token), &json!({})).await?;
    assert_eq!(status, 201, "{invite}");
    let (status, joined) =
        stack.post("/chats/join", Some(&dee.token), &json!({"invite_code": invite["invite_code"]})).await?;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(role_of(&joined, &dee.id).as_deref(), Some("member"));
    let (status, _) = stack.post("/chats/join", Some(&dee.token), &json!({"invite_code": "no-such-code"})).await?;
    assert_eq!(status, 404);

    // A member may not remove others, but may leave; an admin removes.
    let delete = |token: &str, user: &str| {
        stack.http.delete(stack.url(&format!("/chats/{chat}/members/{user}"))).bearer_auth(token.to_owned()).send()
    };
    assert_eq!(delete(&bob.token, &cyd.id).await?.status().as_u16(), 403);
    assert_eq!(delete(&bob.token, &bob.id).await?.status().as_u16(), 204);
    assert_eq!(delete(&ada.token, &cyd.id).await?.status().as_u16(), 204);
    for gone in [&bob, &cyd] {
        let (status, _) = stack.get(&format!("/chats/{chat}"), Some(&gone.token)).await?;
        assert_eq!(status, 404);
    }
    // The last admin leaving hands admin rights on.
    assert_eq!(delete(&ada.token, &ada.id).await?.status().as_u16(), 204);
    let (_, view) = stack.get(&format!("/chats/{chat}"), Some(&dee.token)).await?;
    assert_eq!(view["members"].as_array().map(Vec::len), Some(1));
    assert_eq!(role_of(&view, &dee.id).as_deref(), Some("admin"));
    Ok(())
}

#[tokio::test]
async fn fifty_concurrent_senders_get_seq_one_to_fifty_and_history_pages() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let mut bobs = parley_tests::Socket::connect(&stack.base_url, &bob.token, None).await?;
    let sends = (0..50).map(|i| {
        let from = if i % 2 == 0 { &ada } else { &bob };
        let (stack, chat) = (&stack, &chat);
        async move { send(stack, chat, from, &format!("c{i}"), &format!("message {i}")).await }
    });
    let mut seqs = Vec::new();
    for result in join_all(sends).await {
        let (status, message) = result?;
        assert_eq!(status, 201, "{message}");
        seqs.push(message["seq"].as_i64().unwrap_or_default());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=50).collect::<Vec<i64>>());
    // Bob's socket got each message once, in seq order, however the projector batched them.
    let mut framed = Vec::new();
    while framed.len() < 50 {
        match bobs.next(std::time::Duration::from_secs(10)).await? {
            Some(frame) if frame["type"] == "message.created" => {
                framed.push(frame["data"]["seq"].as_i64().unwrap_or(0))
            }
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(framed, (1..=50).collect::<Vec<i64>>());

    // Newest first in pages of 20, following next_cursor as before_seq.
    let mut seen = Vec::new();
    let mut before = String::new();
    loop {
        let path = format!("/chats/{chat}/messages?limit=20{before}");
        let (status, page) = stack.get(&path, Some(&bob.token)).await?;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["items"].as_array().into_iter().flatten().map(|m| m["seq"].as_i64().unwrap_or_default()));
        match page["next_cursor"].as_str() {
            Some(cursor) => before = format!("&before_seq={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, (1..=50).rev().collect::<Vec<i64>>());
    let (_, newer) = stack.get(&format!("/chats/{chat}/messages?after_seq=45"), Some(&ada.token)).await?;
    let newer: Vec<i64> =
        newer["items"].as_array().into_iter().flatten().map(|m| m["seq"].as_i64().unwrap_or_default()).collect();
    assert_eq!(newer, vec![46, 47, 48, 49, 50]);
    let (_, all) = stack.get(&format!("/chats/{chat}/messages?after_seq=0&limit=50"), Some(&ada.token)).await?;
    let c7 = all["items"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["client_msg_id"] == "c7"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(c7["ciphertext"], ciphertext("message 7"));
    Ok(())
}

#[tokio::test]
async fn a_retried_client_msg_id_makes_one_message() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let (status, first) = send(&stack, &chat, &ada, "retry-me", "hello").await?;
    assert_eq!(status, 201);
    // Retries race with sends in other chats: a retry's refused commit may share a group commit
    // with them (commands on different chats commit together), which must not take them down.
    let mut others = Vec::new();
    for _ in 0..6 {
        others.push(group(&stack, &bob, &[&ada]).await?);
    }
    let ids: Vec<(usize, String)> = (0..30).map(|i| (i % others.len(), format!("busy-{i}"))).collect();
    let busy = join_all(ids.iter().map(|(chat, id)| send(&stack, &others[*chat], &bob, id, "busy")));
    let retries = join_all((0..10).map(|_| send(&stack, &chat, &ada, "retry-me", "hello")));
    let (busy, retries) = tokio::join!(busy, retries);
    for result in retries {
        let (status, again) = result?;
        assert_eq!(status, 201);
        assert_eq!((&again["id"], &again["seq"]), (&first["id"], &first["seq"]));
    }
    for result in busy {
        let (status, message) = result?;
        assert_eq!(status, 201, "{message}");
    }
    let busy_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'MessageSent' AND payload::text LIKE '%busy-%'",
    )
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(busy_events, 30);
    // The same client id from another sender is another message.
    let (_, other) = send(&stack, &chat, &bob, "retry-me", "hi").await?;
    assert_ne!(other["id"], first["id"]);
    let sent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MessageSent' AND aggregate_id = $1")
            .bind(&chat)
            .fetch_one(&stack.pool)
            .await?;
    assert_eq!(sent, 2);
    Ok(())
}

#[tokio::test]
async fn read_marks_show_as_receipts_and_unread_counts() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let quiet = group(&stack, &ada, &[&bob]).await?;
    let chat = group(&stack, &ada, &[&bob]).await?;
    for i in 0..3 {
        send(&stack, &chat, &ada, &format!("m{i}"), "hi").await?;
    }
    let (_, list) = stack.get("/chats", Some(&bob.token)).await?;
    assert_eq!(list["items"][0]["id"].as_str(), Some(chat.as_str()), "newest activity first: {list}");
    assert_eq!(list["items"][0]["unread_count"], 3);
    assert_eq!(list["items"][0]["last_message"]["seq"], 3);
    assert_eq!(list["items"][1]["id"].as_str(), Some(quiet.as_str()));
    assert!(list["items"][1]["last_message"].is_null());
    let (_, own) = stack.get("/chats", Some(&ada.token)).await?;
    assert_eq!(own["items"][0]["unread_count"], 0, "own messages are read");

    let (status, _) =
        stack.post(&format!("/chats/{chat}/mark-read"), Some(&bob.token), &json!({"up_to_seq": 2})).await?;
    assert_eq!(status, 204);
    let (_, view) = stack.get(&format!("/chats/{chat}"), Some(&ada.token)).await?;
    let bob_mark = view["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["user_id"] == bob.id.as_str()))
        .map(|m| m["read_up_to_seq"].clone());
    assert_eq!(bob_mark, Some(json!(2)));
    let (_, list) = stack.get("/chats", Some(&bob.token)).await?;
    assert_eq!(list["items"][0]["unread_count"], 1);
    for bad in [json!({"up_to_seq": 0}), json!({"up_to_seq": 4}), json!({"up_to_seq": -1}), json!({"up_to_seq": "2"})] {
        let (status, body) = stack.post(&format!("/chats/{chat}/mark-read"), Some(&bob.token), &bad).await?;
        assert_eq!(status, 400, "{bad}: {body}");
        error_code(&body)?;
    }
    Ok(())
}

#[tokio::test]
async fn deleting_for_everyone_erases_the_body_for_good_and_for_me_hides_it() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let (_, secret) = send(&stack, &chat, &ada, "s", "the secret").await?;
    let (_, other) = send(&stack, &chat, &ada, "o", "small talk").await?;
    let secret_id = text(&secret["id"])?;
    let delete = |token: &str, id: &str, scope: &str| {
        stack
            .http
            .delete(stack.url(&format!("/chats/{chat}/messages/{id}?for={scope}")))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(delete(&bob.token, &secret_id, "everyone").await?.status().as_u16(), 403);
    assert_eq!(delete(&ada.token, &secret_id, "everyone").await?.status().as_u16(), 204);
    assert_eq!(delete(&ada.token, &secret_id, "everyone").await?.status().as_u16(), 204, "idempotent");
    for viewer in [&ada, &bob] {
        let (_, page) = stack.get(&format!("/chats/{chat}/messages"), Some(&viewer.token)).await?;
        let tombstone = page["items"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["id"] == secret_id.as_str()))
            .cloned()
            .unwrap_or_default();
        assert_eq!(tombstone["deleted"], true);
        assert!(tombstone["ciphertext"].is_null());
    }
    // The key that opened the sealed body in the event is gone, and a rebuild keeps the tombstone.
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM message_keys WHERE message_id = $1::uuid")
        .bind(&secret_id)
        .fetch_one(&stack.pool)
        .await?;
    assert_eq!(keys, 0);
    let stored: String = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE event_type = 'MessageSent' AND payload::text LIKE $1",
    )
    .bind(format!("%{secret_id}%"))
    .fetch_one(&stack.pool)
    .await?;
    assert!(!stored.contains(&ciphertext("the secret")), "the event must not hold the ciphertext in the clear");
    stack.rebuild("chats").await?;
    let (_, page) = stack.get(&format!("/chats/{chat}/messages"), Some(&bob.token)).await?;
    let tombstone = page["items"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["id"] == secret_id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!((tombstone["deleted"].clone(), tombstone["ciphertext"].clone()), (json!(true), Value::Null));
    assert_eq!(page["items"][0]["ciphertext"], ciphertext("small talk"), "other bodies survive the rebuild");

    // For me: hidden from Bob only.
    let other_id = &*text(&other["id"])?;
    assert_eq!(delete(&bob.token, other_id, "me").await?.status().as_u16(), 204);
    let (_, bobs) = stack.get(&format!("/chats/{chat}/messages"), Some(&bob.token)).await?;
    assert!(bobs["items"].as_array().into_iter().flatten().all(|m| m["id"] != other_id));
    let (_, adas) = stack.get(&format!("/chats/{chat}/messages"), Some(&ada.token)).await?;
    assert!(adas["items"].as_array().into_iter().flatten().any(|m| m["id"] == other_id));
    Ok(())
}

#[tokio::test]
async fn non_members_get_404_from_every_chat_route() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, eve) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "eve").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let (_, message) = send(&stack, &chat, &ada, "m", "hi").await?;
    let message_id = &*text(&message["id"])?;
    let unknown = Uuid::new_v4().to_string();
    for chat in [chat.as_str(), unknown.as_str()] {
        let requests = vec![
            ("GET", format!("/chats/{chat}"), Value::Null),
            ("GET", format!("/chats/{chat}/messages"), Value::Null),
            (
                "POST",
                format!("/chats/{chat}/messages"),
                json!({"client_msg_id": "x", "ciphertext": ciphertext("x"), "algorithm": "a"}),
            ),
            ("POST", format!("/chats/{chat}/mark-read"), json!({"up_to_seq": 1})),
            ("POST", format!("/chats/{chat}/members"), json!({"user_ids": [eve.id]})),
            ("DELETE", format!("/chats/{chat}/members/{}", bob.id), Value::Null),
            ("POST", format!("/chats/{chat}/invite"), json!({})),
            ("DELETE", format!("/chats/{chat}/invite"), Value::Null),
            ("DELETE", format!("/chats/{chat}/messages/{message_id}?for=everyone"), Value::Null),
            ("DELETE", format!("/chats/{chat}/messages/{message_id}?for=me"), Value::Null),
        ];
        for (method, path, body) in requests {
            let mut request = stack.http.request(method.parse()?, stack.url(&path)).bearer_auth(&eve.token);
            if !body.is_null() {
                request = request.json(&body);
            }
            let (status, response) = parley_tests::read(request.send().await?).await?;
            assert_eq!(status, 404, "{method} {path}: {response}");
            assert_eq!(error_code(&response)?, "not_found");
        }
    }
    let (_, list) = stack.get("/chats", Some(&eve.token)).await?;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
    // Nothing changed for the members.
    let (_, view) = stack.get(&format!("/chats/{chat}"), Some(&ada.token)).await?;
    assert_eq!(view["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(view["last_seq"], 1);
    Ok(())
}

#[tokio::test]
async fn bad_chat_input_gets_clear_4xx() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let big = "A".repeat(64 * 1024 * 4 / 3 + 8);
    let cases = vec![
        (json!({"client_msg_id": "a", "ciphertext": "", "algorithm": "x"}), "invalid_ciphertext"),
        (json!({"client_msg_id": "a", "ciphertext": "not base64!", "algorithm": "x"}), "invalid_ciphertext"),
        (json!({"client_msg_id": "a", "ciphertext": big, "algorithm": "x"}), "ciphertext_too_large"),
        (json!({"client_msg_id": "", "ciphertext": ciphertext("x"), "algorithm": "x"}), "invalid_client_msg_id"),
        (json!({"client_msg_id": "a", "ciphertext": ciphertext("x"), "algorithm": ""}), "invalid_algorithm"),
    ];
    for (body, code) in cases {
        let (status, response) = stack.post(&format!("/chats/{chat}/messages"), Some(&ada.token), &body).await?;
        assert_eq!((status, error_code(&response)?.as_str()), (400, code));
    }
    let thousand: Vec<String> = (0..1000).map(|_| Uuid::new_v4().to_string()).collect();
    let (status, response) =
        stack.post(&format!("/chats/{chat}/members"), Some(&ada.token), &json!({"user_ids": thousand})).await?;
    assert_eq!((status, error_code(&response)?.as_str()), (400, "too_many_members"));
    let (status, response) = stack
        .post("/chats", Some(&ada.token), &json!({"type": "group", "name": "Big", "member_ids": thousand}))
        .await?;
    assert_eq!((status, error_code(&response)?.as_str()), (400, "too_many_members"));
    let (status, response) =
        stack.post("/chats", Some(&ada.token), &json!({"type": "group", "name": " ", "member_ids": []})).await?;
    assert_eq!((status, error_code(&response)?.as_str()), (400, "invalid_name"));
    let (status, _) = stack.get(&format!("/chats/{chat}/messages?before_seq=1&after_seq=1"), Some(&ada.token)).await?;
    assert_eq!(status, 400);
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MessageSent'")
        .fetch_one(&stack.pool)
        .await?;
    assert_eq!(sent, 0);
    Ok(())
}

async fn request_via(
    stack: &Stack,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut request = stack.http.request(method, format!("{base}{path}")).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    parley_tests::read(request.send().await?).await
}

async fn send_via(stack: &Stack, base: &str, chat: &str, from: &Member, client_msg_id: &str) -> Result<(u16, Value)> {
    let body = json!({"client_msg_id": client_msg_id, "ciphertext": ciphertext(client_msg_id), "algorithm": "x"});
    request_via(stack, base, &from.token, reqwest::Method::POST, &format!("/chats/{chat}/messages"), Some(body)).await
}

#[tokio::test]
async fn what_you_post_is_in_your_next_query_whichever_replica_answers() -> Result<()> {
    let mut stack = Stack::start().await?;
    let second = stack.start_extra_api().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    for n in 0..20 {
        let (status, sent) = send(&stack, &chat, &ada, &format!("ryw{n}"), "hello").await?;
        assert_eq!(status, 201, "{sent}");
        // Sent through the first replica, read at once through either.
        let base = if n % 2 == 0 { stack.base_url.clone() } else { second.clone() };
        let get = reqwest::Method::GET;
        let history = format!("/chats/{chat}/messages?limit=1");
        let (_, page) = request_via(&stack, &base, &ada.token, get.clone(), &history, None).await?;
        assert_eq!(page["items"][0]["id"], sent["id"], "history after send {n}");
        let (_, chats) = request_via(&stack, &base, &ada.token, get, "/chats", None).await?;
        assert_eq!(chats["items"][0]["last_message"]["id"], sent["id"], "chat list after send {n}");
    }
    Ok(())
}

#[tokio::test]
async fn two_replicas_writing_one_chat_keep_seq_gapless_and_see_each_others_changes() -> Result<()> {
    let mut stack = Stack::start().await?;
    let second = stack.start_extra_api().await?;
    let (ada, bob, cy) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cy").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    // Both replicas now hold the chat in memory.
    assert_eq!(send_via(&stack, &stack.base_url, &chat, &ada, "a0").await?.0, 201);
    assert_eq!(send_via(&stack, &second, &chat, &bob, "b0").await?.0, 201);

    // Cy is added through the first replica; the second's copy predates it, yet Cy posts there.
    let add = json!({"user_ids": [cy.id]});
    let (status, _) = stack.post(&format!("/chats/{chat}/members"), Some(&ada.token), &add).await?;
    assert_eq!(status, 200);
    let (status, body) = send_via(&stack, &second, &chat, &cy, "c0").await?;
    assert_eq!(status, 201, "a member added on another replica must be able to post: {body}");

    // Forty concurrent senders spread over both replicas.
    let senders = [&ada, &bob, &cy];
    let sends = (0..40).map(|i| {
        let base = if i % 2 == 0 { stack.base_url.as_str() } else { second.as_str() };
        let (stack, chat, from) = (&stack, &chat, senders[i % 3]);
        async move { send_via(stack, base, chat, from, &format!("m{i}")).await }
    });
    for result in join_all(sends).await {
        let (status, message) = result?;
        assert_eq!(status, 201, "{message}");
    }
    let (_, all) = stack.get(&format!("/chats/{chat}/messages?after_seq=0&limit=100"), Some(&ada.token)).await?;
    let seqs: Vec<i64> = all["items"].as_array().into_iter().flatten().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=43).collect::<Vec<i64>>());
    // Cy, added after the first two, sees from the third on.
    let (_, cys) = stack.get(&format!("/chats/{chat}/messages?after_seq=0&limit=100"), Some(&cy.token)).await?;
    let seqs: Vec<i64> = cys["items"].as_array().into_iter().flatten().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(seqs, (3..=43).collect::<Vec<i64>>());
    let ids: BTreeSet<&str> =
        all["items"].as_array().into_iter().flatten().filter_map(|m| m["client_msg_id"].as_str()).collect();
    assert_eq!(ids.len(), 43, "one message per client_msg_id");

    // Cy leaves through the second replica; the first refuses Cy's next post.
    let membership = format!("/chats/{chat}/members/{}", cy.id);
    let leave = request_via(&stack, &second, &cy.token, reqwest::Method::DELETE, &membership, None);
    assert_eq!(leave.await?.0, 204);
    assert_eq!(send_via(&stack, &stack.base_url, &chat, &cy, "late").await?.0, 404);
    Ok(())
}

#[tokio::test]
async fn a_long_chat_is_snapshotted_and_a_fresh_replica_continues_its_seq() -> Result<()> {
    let mut stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    for round in 0..12 {
        let ids: Vec<String> = (0..10).map(|i| format!("r{round}-{i}")).collect();
        let sends = ids.iter().map(|id| send(&stack, &chat, &ada, id, "x"));
        for result in join_all(sends).await {
            assert_eq!(result?.0, 201);
        }
    }
    // 121 events: ChatCreated and 120 messages; a snapshot is written at 100.
    let snapshot: Option<i64> = sqlx::query_scalar(
        "SELECT max(last_sequence) FROM snapshots WHERE aggregate_type = 'Chat' AND aggregate_id = $1",
    )
    .bind(&chat)
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(snapshot, Some(100));
    // A replica that never saw the chat loads it from the snapshot and the events after it.
    let fresh = stack.start_extra_api().await?;
    let (status, sent) = send_via(&stack, &fresh, &chat, &bob, "after-snapshot").await?;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["seq"], 121);
    Ok(())
}
