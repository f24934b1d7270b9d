//! What many end-to-end tests set up the same way: people, chats, messages, calls through the
//! SFU. A setup step that does not get what it needs fails the test there, naming the line;
//! it never goes on with an empty id.

use anyhow::{anyhow, ensure, Result};
use serde_json::{json, Value};

use crate::{unique_email, Stack, StackOptions};

/// The string at a field of a JSON answer, or an error naming the caller's line.
#[track_caller]
pub fn text(value: &Value) -> Result<String> {
    let caller = std::panic::Location::caller();
    value.as_str().map(str::to_owned).ok_or_else(|| anyhow!("{caller}: expected a JSON string, got {value}"))
}

/// A registered user and their access token.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub token: String,
}

/// Registers `name` under a fresh email address.
pub async fn member(stack: &Stack, name: &str) -> Result<Member> {
    let user = stack.register(name, &unique_email(name)).await?;
    Ok(Member { id: text(&user["user"]["id"])?, token: text(&user["access_token"])? })
}

/// A new direct chat of `from` with `to`; its id.
pub async fn direct(stack: &Stack, from: &Member, to: &Member) -> Result<String> {
    let (status, chat) =
        stack.post("/chats", Some(&from.token), &json!({"type": "direct", "member_ids": [to.id]})).await?;
    ensure!(status == 201, "create direct chat: {status} {chat}");
    text(&chat["id"])
}

/// A new group of `admin` and `others`; its id.
pub async fn group(stack: &Stack, admin: &Member, others: &[&Member]) -> Result<String> {
    let ids: Vec<&str> = others.iter().map(|m| m.id.as_str()).collect();
    let (status, chat) =
        stack.post("/chats", Some(&admin.token), &json!({"type": "group", "name": "Team", "member_ids": ids})).await?;
    ensure!(status == 201, "create group: {status} {chat}");
    text(&chat["id"])
}

/// What the server stores for `text`: clients send base64 ciphertext, the server never reads it.
pub fn ciphertext(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Sends `text` to `chat` as `from`; the answer as it came.
pub async fn send(stack: &Stack, chat: &str, from: &Member, client_msg_id: &str, text: &str) -> Result<(u16, Value)> {
    stack
        .post(
            &format!("/chats/{chat}/messages"),
            Some(&from.token),
            &json!({"client_msg_id": client_msg_id, "ciphertext": ciphertext(text), "algorithm": "m.megolm.v1.aes-sha2"}),
        )
        .await
}

/// A stack with an SFU beside the api.
pub async fn sfu_stack() -> Result<Stack> {
    Stack::start_with(StackOptions::default().with_sfu()).await
}

/// `(sfu url, join token)` from a start or accept answer's `sfu`.
pub fn access(sfu: &Value) -> Result<(String, String)> {
    Ok((text(&sfu["url"])?, text(&sfu["token"])?))
}

/// Starts a call in `chat` as `caller` and has everyone in `others` accept it; returns each
/// participant's `(url, token)` in the same order (caller first).
pub async fn call_everyone(
    stack: &Stack,
    chat: &str,
    kind: &str,
    caller: &Member,
    others: &[&Member],
) -> Result<Vec<(String, String)>> {
    let (status, started) = stack.post("/calls", Some(&caller.token), &json!({"chat_id": chat, "kind": kind})).await?;
    ensure!(status == 201, "start call: {status} {started}");
    let call_id = text(&started["id"])?;
    let mut all = vec![access(&started["sfu"])?];
    for other in others {
        let (status, accepted) =
            stack.post(&format!("/calls/{call_id}/accept"), Some(&other.token), &json!(null)).await?;
        ensure!(status == 200, "accept: {status} {accepted}");
        all.push(access(&accepted["sfu"])?);
    }
    Ok(all)
}

/// Received tracks of `kind` that decoded at least `frames` frames (a peer's summary).
pub fn decoded(summary: &Value, kind: &str, frames: u64) -> Vec<Value> {
    summary["received"]
        .as_object()
        .into_iter()
        .flat_map(|tracks| tracks.values())
        .filter(|t| t["kind"] == kind && t["frames"].as_u64().unwrap_or(0) >= frames)
        .cloned()
        .collect()
}
