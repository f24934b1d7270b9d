//! Membership rights: a member sees a chat from their joining on, on every route; invite codes
//! expire, rotate and can be revoked; a member removed by an admin cannot rejoin by code; replies
//! name a message of the same chat that the sender can see.

use std::time::Duration;

use anyhow::{ensure, Result};
use parley_tests::{error_code, read, text, Socket, Stack};
use serde_json::{json, Value};

use parley_tests::{ciphertext, direct, group, member, send, Member};

const WAIT: Duration = Duration::from_secs(10);

fn id_of(value: &Value) -> Result<String> {
    text(&value["id"])
}

fn seqs(page: &Value) -> Vec<i64> {
    page["items"].as_array().into_iter().flatten().filter_map(|m| m["seq"].as_i64()).collect()
}

async fn invite(stack: &Stack, chat: &str, admin: &Member, query: &str) -> Result<(u16, Value)> {
    stack.post(&format!("/chats/{chat}/invite{query}"), Some(&admin.token), &json!({})).await
}

async fn new_code(stack: &Stack, chat: &str, admin: &Member) -> Result<String> {
    let (status, body) = invite(stack, chat, admin, "").await?;
    ensure!(status == 201, "invite: {status} {body}");
    text(&body["invite_code"])
}

async fn join(stack: &Stack, who: &Member, code: &str) -> Result<(u16, Value)> {
    stack.post("/chats/join", Some(&who.token), &json!({"invite_code": code})).await
}

async fn remove(stack: &Stack, chat: &str, actor: &Member, user: &Member) -> Result<u16> {
    let url = stack.url(&format!("/chats/{chat}/members/{}", user.id));
    Ok(stack.http.delete(url).bearer_auth(&actor.token).send().await?.status().as_u16())
}

async fn add(stack: &Stack, chat: &str, admin: &Member, user: &Member) -> Result<()> {
    let (status, body) =
        stack.post(&format!("/chats/{chat}/members"), Some(&admin.token), &json!({"user_ids": [user.id]})).await?;
    ensure!(status == 200, "add member: {status} {body}");
    Ok(())
}

async fn reply(stack: &Stack, chat: &str, from: &Member, client_msg_id: &str, to: &str) -> Result<(u16, Value)> {
    let body =
        json!({"client_msg_id": client_msg_id, "ciphertext": ciphertext("re"), "algorithm": "x", "reply_to": to});
    stack.post(&format!("/chats/{chat}/messages"), Some(&from.token), &body).await
}

/// Every history page shape `who` can ask for, as the seqs served.
async fn history_everywhere(stack: &Stack, chat: &str, who: &Member) -> Result<Vec<Vec<i64>>> {
    let mut pages = Vec::new();
    for query in ["", "?before_seq=1000", "?after_seq=0", "?after_seq=0&limit=1", "?limit=1", "?before_seq=3"] {
        let (status, page) = stack.get(&format!("/chats/{chat}/messages{query}"), Some(&who.token)).await?;
        ensure!(status == 200, "history {query}: {status} {page}");
        pages.push(seqs(&page));
    }
    Ok(pages)
}

/// Everything a socket opened with `?cursor=0` replays, up to and including the frame `until`
/// says is the last one expected (plus whatever follows within half a second).
async fn replay(stack: &Stack, who: &Member, until: impl Fn(&Value) -> bool) -> Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut socket = Socket::connect(&stack.base_url, &who.token, Some("0")).await?;
        let mut frames = Vec::new();
        while let Some(frame) = socket.next(Duration::from_millis(500)).await? {
            frames.push(frame);
        }
        if frames.iter().any(&until) {
            return Ok(frames);
        }
        ensure!(tokio::time::Instant::now() < deadline, "replay never reached the expected frame: {frames:?}");
    }
}

/// The seqs of messages a frame is about, whatever its kind (`chat.read` counts its mark).
fn frame_seqs(frames: &[Value], chat: &str) -> Vec<(String, i64)> {
    frames
        .iter()
        .filter(|f| f["data"]["chat_id"].as_str() == Some(chat))
        .filter_map(|f| {
            let seq = f["data"]["seq"].as_i64().or_else(|| f["data"]["up_to_seq"].as_i64())?;
            Some((text(&f["type"]).ok()?, seq))
        })
        .collect()
}

#[tokio::test]
async fn a_late_member_sees_only_messages_from_their_joining_on_every_route() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, dee) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "dee").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let (status, photo) = read(
        stack
            .http
            .post(stack.url("/media"))
            .bearer_auth(&ada.token)
            .header("content-type", "image/jpeg")
            .body(vec![7u8; 2000])
            .send()
            .await?,
    )
    .await?;
    ensure!(status == 201, "upload: {status} {photo}");
    let photo = id_of(&photo)?;
    let (status, first) = stack
        .post(
            &format!("/chats/{chat}/messages"),
            Some(&ada.token),
            &json!({"client_msg_id": "m1", "ciphertext": ciphertext("before dee"), "algorithm": "x", "media_ids": [photo]}),
        )
        .await?;
    ensure!(status == 201, "send m1: {status} {first}");
    let (_, second) = send(&stack, &chat, &ada, "m2", "also before dee").await?;

    add(&stack, &chat, &ada, &dee).await?;

    // The chat list: no preview of an earlier message, nothing unread.
    let (_, chats) = stack.get("/chats", Some(&dee.token)).await?;
    assert_eq!(chats["items"][0]["id"].as_str(), Some(chat.as_str()), "{chats}");
    assert_eq!(chats["items"][0]["last_message"], Value::Null, "{chats}");
    assert_eq!(chats["items"][0]["unread_count"], 0, "{chats}");
    // History on every paging direction: nothing yet.
    assert!(history_everywhere(&stack, &chat, &dee).await?.iter().all(Vec::is_empty));

    // Changes to earlier messages after Dee joined: a delete for everyone and a read mark.
    let url = stack.url(&format!("/chats/{chat}/messages/{}?for=everyone", id_of(&second)?));
    assert_eq!(stack.http.delete(url).bearer_auth(&ada.token).send().await?.status().as_u16(), 204);
    let (status, _) =
        stack.post(&format!("/chats/{chat}/mark-read"), Some(&bob.token), &json!({"up_to_seq": 2})).await?;
    assert_eq!(status, 204);
    let (status, third) = send(&stack, &chat, &ada, "m3", "welcome dee").await?;
    assert_eq!((status, third["seq"].as_i64()), (201, Some(3)), "{third}");

    assert!(history_everywhere(&stack, &chat, &dee).await?.iter().all(|page| page.iter().all(|s| *s == 3)));
    let (_, page) = stack.get(&format!("/chats/{chat}/messages"), Some(&dee.token)).await?;
    assert_eq!(seqs(&page), [3]);
    let (_, page) = stack.get(&format!("/chats/{chat}/messages"), Some(&bob.token)).await?;
    assert_eq!(seqs(&page), [3, 2, 1], "earlier members still see everything");
    let (_, chats) = stack.get("/chats", Some(&dee.token)).await?;
    assert_eq!(
        (chats["items"][0]["last_message"]["seq"].as_i64(), chats["items"][0]["unread_count"].as_i64()),
        (Some(3), Some(1))
    );

    // The WebSocket replay from before the join: only what came after it.
    let frames = replay(&stack, &dee, |f| f["type"] == "message.created" && f["data"]["seq"] == 3).await?;
    let about = frame_seqs(&frames, &chat);
    assert!(about.iter().all(|(_, seq)| *seq >= 3), "frames about earlier messages reached Dee: {about:?}");
    assert_eq!(about, [("message.created".to_owned(), 3)], "{frames:?}");

    // Notifications (Dee was offline throughout): the group addition and the one message.
    let (_, notes) = stack.get("/notifications", Some(&dee.token)).await?;
    let kinds: Vec<(&str, Option<i64>)> = notes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| (n["kind"].as_str().unwrap_or_default(), n["data"]["seq"].as_i64()))
        .collect();
    assert_eq!(kinds, [("message", Some(3)), ("added_to_group", None)], "{notes}");

    // The media of a message from before the join: not found for Dee, still there for Bob.
    let media =
        |who: &Member| stack.http.get(stack.url(&format!("/media/{photo}"))).bearer_auth(who.token.clone()).send();
    assert_eq!(media(&bob).await?.status().as_u16(), 200);
    let (status, body) = read(media(&dee).await?).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"));

    // Dee can neither reply to nor delete an earlier message; the later one, yes.
    let (status, body) = reply(&stack, &chat, &dee, "r1", &id_of(&first)?).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_reply_to"), "{body}");
    let url = stack.url(&format!("/chats/{chat}/messages/{}?for=me", id_of(&first)?));
    assert_eq!(stack.http.delete(url).bearer_auth(&dee.token).send().await?.status().as_u16(), 404);
    let (status, body) = reply(&stack, &chat, &dee, "r2", &id_of(&third)?).await?;
    assert_eq!((status, body["reply_to"].as_str()), (201, Some(id_of(&third)?.as_str())), "{body}");
    Ok(())
}

#[tokio::test]
async fn invite_codes_expire_rotate_and_can_be_revoked() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, cyd, dee) = (
        member(&stack, "ada").await?,
        member(&stack, "bob").await?,
        member(&stack, "cyd").await?,
        member(&stack, "dee").await?,
    );
    let chat = group(&stack, &ada, &[&bob]).await?;

    // The expiry is bounded, and defaults to seven days.
    for bad in ["?expires_in_secs=0", "?expires_in_secs=-1", "?expires_in_secs=604801"] {
        let (status, body) = invite(&stack, &chat, &ada, bad).await?;
        assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_expiry"), "{bad}: {body}");
    }
    let (status, body) = invite(&stack, &chat, &ada, "").await?;
    assert_eq!(status, 201, "{body}");
    let expires_at = chrono::DateTime::parse_from_rfc3339(&text(&body["expires_at"])?)?;
    let days = (expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((167..=168).contains(&days), "expires in {days} h");

    // An expired code is refused like one that never existed.
    let (status, body) = invite(&stack, &chat, &ada, "?expires_in_secs=1").await?;
    assert_eq!(status, 201, "{body}");
    let short = text(&body["invite_code"])?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = join(&stack, &cyd, &short).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "expired: {body}");

    // A new code replaces the old one.
    let old = new_code(&stack, &chat, &ada).await?;
    let new = new_code(&stack, &chat, &ada).await?;
    let (status, body) = join(&stack, &cyd, &old).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "rotated away: {body}");
    let (status, body) = join(&stack, &cyd, &new).await?;
    assert_eq!(status, 200, "{body}");

    // Revoking: admins only; afterwards the code is refused.
    let revoke = |who: &Member| {
        stack.http.delete(stack.url(&format!("/chats/{chat}/invite"))).bearer_auth(who.token.clone()).send()
    };
    let (status, body) = read(revoke(&bob).await?).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (403, "forbidden"), "{body}");
    assert_eq!(revoke(&ada).await?.status().as_u16(), 204);
    let (status, body) = join(&stack, &dee, &new).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "revoked: {body}");
    assert_eq!(revoke(&ada).await?.status().as_u16(), 204, "revoking nothing is fine");
    let (status, body) = join(&stack, &dee, &new_code(&stack, &chat, &ada).await?).await?;
    assert_eq!(status, 200, "a fresh code works: {body}");
    let (status, _) = read(revoke(&bob).await?).await?;
    assert_eq!(status, 403);
    Ok(())
}

#[tokio::test]
async fn a_kicked_member_stays_out_until_re_added_and_then_sees_from_the_re_add() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let code = new_code(&stack, &chat, &ada).await?;
    send(&stack, &chat, &ada, "m1", "while bob is in").await?;
    let mut bobs = Socket::connect(&stack.base_url, &bob.token, None).await?;
    bobs.expect("chat.member_added", Duration::from_millis(1)).await.ok();

    assert_eq!(remove(&stack, &chat, &ada, &bob).await?, 204);
    bobs.expect("chat.member_removed", WAIT).await?;
    // Bob's old code no longer lets him in.
    let (status, body) = join(&stack, &bob, &code).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "kicked member rejoined: {body}");

    // Nothing said while he is out reaches him.
    let (_, out) = send(&stack, &chat, &ada, "m2", "bob is out").await?;
    assert_eq!(bobs.next(Duration::from_millis(800)).await?, None);
    let (status, _) = stack.get(&format!("/chats/{chat}/messages"), Some(&bob.token)).await?;
    assert_eq!(status, 404);
    let (_, chats) = stack.get("/chats", Some(&bob.token)).await?;
    assert_eq!(chats["items"].as_array().map(Vec::len), Some(0), "{chats}");
    let (status, body) = reply(&stack, &chat, &bob, "r0", &id_of(&out)?).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "{body}");

    // An admin adds him again: from then on he sees, and only that.
    add(&stack, &chat, &ada, &bob).await?;
    let (_, after) = send(&stack, &chat, &ada, "m3", "welcome back").await?;
    let (_, page) = stack.get(&format!("/chats/{chat}/messages"), Some(&bob.token)).await?;
    assert_eq!(seqs(&page), [3], "{page}");
    let frames = replay(&stack, &bob, |f| f["type"] == "message.created" && f["data"]["seq"] == 3).await?;
    let created: Vec<i64> = frame_seqs(&frames, &chat)
        .into_iter()
        .filter(|(kind, _)| kind == "message.created")
        .map(|(_, seq)| seq)
        .collect();
    assert_eq!(created, [3], "replay after the re-add: {frames:?}");
    let (status, body) = reply(&stack, &chat, &bob, "r1", &id_of(&out)?).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_reply_to"), "{body}");
    let (status, _) = reply(&stack, &chat, &bob, "r2", &id_of(&after)?).await?;
    assert_eq!(status, 201);

    // The re-add lifted the bar: having left on his own, he may rejoin by code.
    assert_eq!(remove(&stack, &chat, &bob, &bob).await?, 204);
    send(&stack, &chat, &ada, "m5", "bob left").await?;
    let (status, body) = join(&stack, &bob, &code).await?;
    assert_eq!(status, 200, "{body}");
    send(&stack, &chat, &ada, "m6", "bob is back").await?;
    let (_, page) = stack.get(&format!("/chats/{chat}/messages?after_seq=0"), Some(&bob.token)).await?;
    assert_eq!(seqs(&page), [6], "{page}");
    Ok(())
}

#[tokio::test]
async fn a_member_who_left_rejoins_by_code_and_sees_from_the_rejoin() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, cyd) = (member(&stack, "ada").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&cyd]).await?;
    let code = new_code(&stack, &chat, &ada).await?;
    send(&stack, &chat, &ada, "m1", "hello").await?;
    assert_eq!(remove(&stack, &chat, &cyd, &cyd).await?, 204);
    send(&stack, &chat, &ada, "m2", "said while cyd was away").await?;
    let (status, body) = join(&stack, &cyd, &code).await?;
    assert_eq!(status, 200, "{body}");
    let (_, chats) = stack.get("/chats", Some(&cyd.token)).await?;
    assert_eq!(
        (chats["items"][0]["last_message"].clone(), chats["items"][0]["unread_count"].as_i64()),
        (Value::Null, Some(0))
    );
    send(&stack, &chat, &ada, "m3", "welcome back").await?;
    for page in history_everywhere(&stack, &chat, &cyd).await? {
        assert!(page.iter().all(|seq| *seq == 3), "{page:?}");
    }
    Ok(())
}

#[tokio::test]
async fn reply_to_must_name_a_message_of_the_same_chat_the_sender_can_see() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, cyd, eve) = (
        member(&stack, "ada").await?,
        member(&stack, "bob").await?,
        member(&stack, "cyd").await?,
        member(&stack, "eve").await?,
    );
    let ours = group(&stack, &ada, &[&bob]).await?;
    let theirs = group(&stack, &ada, &[&cyd]).await?;
    let (_, elsewhere) = send(&stack, &theirs, &cyd, "t1", "in another chat").await?;
    let (_, here) = send(&stack, &ours, &ada, "o1", "in this chat").await?;

    // Another chat's message, even one the sender can see there; an unknown id.
    for (who, target) in
        [(&bob, id_of(&elsewhere)?), (&ada, id_of(&elsewhere)?), (&bob, uuid::Uuid::now_v7().to_string())]
    {
        let (status, body) = reply(&stack, &ours, who, "bad", &target).await?;
        assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_reply_to"), "{target}: {body}");
    }
    // A non-member learns nothing: 404 whether the message exists there or not.
    for target in [id_of(&here)?, uuid::Uuid::now_v7().to_string()] {
        let (status, body) = reply(&stack, &ours, &eve, "x", &target).await?;
        assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "{body}");
    }
    // A message of this chat works, and appears in history with its reply_to.
    let (status, answer) = reply(&stack, &ours, &bob, "ok", &id_of(&here)?).await?;
    assert_eq!((status, answer["reply_to"].as_str()), (201, Some(id_of(&here)?.as_str())), "{answer}");
    let (_, page) = stack.get(&format!("/chats/{}/messages?limit=1", ours), Some(&ada.token)).await?;
    assert_eq!(page["items"][0]["reply_to"].as_str(), Some(id_of(&here)?.as_str()));
    // A tombstone may be replied to (it shows as deleted).
    let url = stack.url(&format!("/chats/{ours}/messages/{}?for=everyone", id_of(&here)?));
    assert_eq!(stack.http.delete(url).bearer_auth(&ada.token).send().await?.status().as_u16(), 204);
    let (status, body) = reply(&stack, &ours, &bob, "tomb", &id_of(&here)?).await?;
    assert_eq!(status, 201, "{body}");
    Ok(())
}

async fn set_role(stack: &Stack, chat: &str, actor: &Member, user: &Member, role: &str) -> Result<(u16, Value)> {
    stack.put(&format!("/chats/{chat}/members/{}/role", user.id), &actor.token, &json!({"role": role})).await
}

fn role_of(chat: &Value, user: &Member) -> Option<String> {
    let members = chat["members"].as_array()?;
    let entry = members.iter().find(|m| m["user_id"] == user.id.as_str())?;
    entry["role"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn admins_promote_and_demote_members_and_a_group_keeps_an_admin() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, cyd) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let mut bobs = Socket::connect(&stack.base_url, &bob.token, None).await?;

    // A member may not make anyone admin, themselves included, nor add people.
    let (status, body) = set_role(&stack, &chat, &bob, &bob, "admin").await?;
    assert_eq!((status, error_code(&body)?.as_str()), (403, "forbidden"), "{body}");
    // The only admin cannot step down: the group would have none.
    let (status, body) = set_role(&stack, &chat, &ada, &ada, "member").await?;
    assert_eq!((status, error_code(&body)?.as_str()), (409, "last_admin"), "{body}");
    // Not a member, an unknown role, and someone outside the chat asking.
    let (status, body) = set_role(&stack, &chat, &ada, &cyd, "admin").await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "{body}");
    let (status, body) = set_role(&stack, &chat, &ada, &bob, "owner").await?;
    assert_eq!(status, 400, "{body}");
    let (status, body) = set_role(&stack, &chat, &cyd, &bob, "admin").await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "{body}");

    // Ada makes Bob admin: the answer and every member's socket say so, and Bob may now add.
    let (status, view) = set_role(&stack, &chat, &ada, &bob, "admin").await?;
    assert_eq!(status, 200, "{view}");
    assert_eq!(role_of(&view, &bob).as_deref(), Some("admin"), "{view}");
    let frame = bobs.expect("chat.member_updated", WAIT).await?;
    assert_eq!(
        (frame["data"]["user_id"].as_str(), frame["data"]["role"].as_str()),
        (Some(bob.id.as_str()), Some("admin"))
    );
    add(&stack, &chat, &bob, &cyd).await?;

    // Bob demotes Ada; she can no longer add or change roles, and the group still has an admin.
    let (status, view) = set_role(&stack, &chat, &bob, &ada, "member").await?;
    assert_eq!((status, role_of(&view, &ada).as_deref()), (200, Some("member")), "{view}");
    let (status, body) = set_role(&stack, &chat, &ada, &cyd, "admin").await?;
    assert_eq!((status, error_code(&body)?.as_str()), (403, "forbidden"), "{body}");
    let (status, body) = set_role(&stack, &chat, &bob, &bob, "member").await?;
    assert_eq!((status, error_code(&body)?.as_str()), (409, "last_admin"), "{body}");

    // Direct chats have no admins.
    let direct = direct(&stack, &ada, &bob).await?;
    let (status, body) = set_role(&stack, &direct, &ada, &bob, "admin").await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "not_a_group"), "{body}");
    Ok(())
}
