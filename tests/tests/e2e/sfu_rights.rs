//! The SFU follows the end of everyone's right to be in a call: removal from the chat, the call's
//! end, hanging up, logout, removal of the device. The dropped peer's socket closes within a
//! second of the api's answer and the tokens issued before are refused. Also: each join token
//! admits once, an audio call carries no video, and an oversized signaling frame closes the
//! socket. Real aiortc peers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use parley_tests::{run_peer, text, Stack};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use parley_tests::devices::TestDevice;
use parley_tests::{access, decoded, sfu_stack};
use parley_tests::{direct, group, member, Member};

/// How soon after the api's answer the peer must be gone.
const DROP_WITHIN: f64 = 1.0;

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// Starts a `kind` call in `chat`; returns its id and the caller's access.
async fn start_call(stack: &Stack, chat: &str, kind: &str, caller: &Member) -> Result<(String, (String, String))> {
    let (status, started) = stack.post("/calls", Some(&caller.token), &json!({"chat_id": chat, "kind": kind})).await?;
    ensure!(status == 201, "start call: {status} {started}");
    Ok((text(&started["id"])?, access(&started["sfu"])?))
}

/// A fresh join token for `who` (answering, or joining again: each call issues a new token).
async fn accept(stack: &Stack, call: &str, who: &Member) -> Result<(String, String)> {
    let (status, accepted) = stack.post(&format!("/calls/{call}/accept"), Some(&who.token), &json!(null)).await?;
    ensure!(status == 200, "accept: {status} {accepted}");
    access(&accepted["sfu"])
}

fn spawn_peer(access: &(String, String), args: &[&str]) -> JoinHandle<Result<Value>> {
    let (url, token) = access.clone();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_peer(&url, &token, &args).await
    })
}

async fn finished(peer: JoinHandle<Result<Value>>) -> Result<Value> {
    let summary = peer.await.context("peer task")??;
    eprintln!("peer: {summary}");
    Ok(summary)
}

/// Waits until the api says every one of `who` has media connected on the SFU.
async fn connected(stack: &Stack, call: &str, viewer: &Member, who: &[&Member]) -> Result<()> {
    let ids: Vec<String> = who.iter().map(|m| m.id.clone()).collect();
    stack
        .eventually(Duration::from_secs(15), "everyone's media to connect", || async {
            let (_, view) = stack.get(&format!("/calls/{call}"), Some(&viewer.token)).await?;
            let participants = view["participants"].as_array().cloned().unwrap_or_default();
            Ok(ids.iter().all(|id| participants.iter().any(|p| p["user_id"] == id.as_str() && p["connected"] == true)))
        })
        .await
}

/// Every user the peer was ever told was in the room with it.
fn ever_seen(summary: &Value) -> Vec<String> {
    summary["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|room| room["users"].as_array().cloned().unwrap_or_default())
        .filter_map(|user| user.as_str().map(str::to_owned))
        .collect()
}

/// The peer was dropped by the SFU with `reason`, within `DROP_WITHIN` of `since` (unix seconds).
fn assert_dropped(summary: &Value, reason: &str, since: f64) {
    assert_eq!(summary["close"]["code"], 4408, "{summary}");
    assert!(summary["close"]["reason"].as_str().unwrap_or_default().contains(reason), "{reason}: {summary}");
    let closed_at = summary["closed_at_unix"].as_f64().unwrap_or(f64::INFINITY);
    assert!(closed_at - since <= DROP_WITHIN, "dropped {:.3} s after the api answered: {summary}", closed_at - since);
}

/// A token refused at the door with `reason`, before any media.
async fn assert_refused(access: &(String, String), reason: &str) -> Result<()> {
    let summary = run_peer(&access.0, &access.1, &["--seconds", "3"]).await?;
    assert_eq!(summary["close"]["code"], 4001, "{summary}");
    assert!(summary["close"]["reason"].as_str().unwrap_or_default().starts_with(reason), "{reason}: {summary}");
    assert_eq!(summary["answered"], false, "{summary}");
    Ok(())
}

#[tokio::test]
async fn a_member_removed_mid_call_is_dropped_at_once_and_never_reaches_later_joiners() -> Result<()> {
    let stack = sfu_stack().await?;
    let (ada, bob, cyd) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&bob, &cyd]).await?;
    let (call, ada_access) = start_call(&stack, &chat, "video", &ada).await?;
    let bob_access = accept(&stack, &call, &bob).await?;
    // Bob keeps a second token in his pocket for after his removal.
    let bob_spare = accept(&stack, &call, &bob).await?;
    let ada_peer = spawn_peer(&ada_access, &["--seconds", "16"]);
    let bob_peer = spawn_peer(&bob_access, &["--seconds", "16"]);
    connected(&stack, &call, &ada, &[&ada, &bob]).await?;

    let response = stack
        .http
        .delete(stack.url(&format!("/chats/{chat}/members/{}", bob.id)))
        .bearer_auth(&ada.token)
        .send()
        .await?;
    ensure!(response.status().as_u16() == 204, "remove Bob: {}", response.status());
    let removed_at = unix_now();
    // Cyd joins after the removal: her media must never reach Bob.
    let cyd_peer = spawn_peer(&accept(&stack, &call, &cyd).await?, &["--seconds", "6"]);

    let bob_sees = finished(bob_peer).await?;
    assert_dropped(&bob_sees, "no longer a member", removed_at);
    assert_refused(&bob_spare, "join token revoked").await?;
    let (ada_sees, cyd_sees) = (finished(ada_peer).await?, finished(cyd_peer).await?);
    assert!(!ever_seen(&bob_sees).contains(&cyd.id), "Bob saw Cyd: {bob_sees}");
    assert!(!ever_seen(&cyd_sees).contains(&bob.id), "Cyd saw Bob: {cyd_sees}");
    // Cyd did join, and the call went on between her and Ada.
    assert!(ever_seen(&ada_sees).contains(&cyd.id), "{ada_sees}");
    assert!(!decoded(&cyd_sees, "video", 5).is_empty(), "{cyd_sees}");
    let (_, view) = stack.get(&format!("/calls/{call}"), Some(&ada.token)).await?;
    let bob_state = view["participants"].as_array().into_iter().flatten().find(|p| p["user_id"] == bob.id.as_str());
    assert_eq!(bob_state.map(|p| p["state"].clone()), Some(json!("left")), "{view}");
    Ok(())
}

#[tokio::test]
async fn ending_a_direct_call_drops_both_peers_at_once() -> Result<()> {
    let stack = sfu_stack().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    let (call, ada_access) = start_call(&stack, &chat, "video", &ada).await?;
    let bob_access = accept(&stack, &call, &bob).await?;
    let bob_spare = accept(&stack, &call, &bob).await?;
    let peers = [spawn_peer(&ada_access, &["--seconds", "14"]), spawn_peer(&bob_access, &["--seconds", "14"])];
    connected(&stack, &call, &ada, &[&ada, &bob]).await?;

    let (status, ended) = stack.post(&format!("/calls/{call}/end"), Some(&ada.token), &json!(null)).await?;
    ensure!(status == 200, "end: {status} {ended}");
    let ended_at = unix_now();
    // Ada hung up (which ended the call); Bob is dropped because the call ended.
    for (peer, reason) in peers.into_iter().zip(["you left this call", "the call has ended"]) {
        assert_dropped(&finished(peer).await?, reason, ended_at);
    }
    assert_refused(&bob_spare, "join token revoked: the call has ended").await?;
    Ok(())
}

/// A video group call of Ada, Bob and Cyd, each with a peer running for `seconds` and connected;
/// Bob also holds a spare (unused) join token.
struct GroupCall {
    ada: Member,
    bob: Member,
    cyd: Member,
    call: String,
    peers: [JoinHandle<Result<Value>>; 3],
    bob_spare: (String, String),
}

async fn group_call_of_three(stack: &Stack, seconds: &str) -> Result<GroupCall> {
    let (ada, bob, cyd) = (member(stack, "ada").await?, member(stack, "bob").await?, member(stack, "cyd").await?);
    let chat = group(stack, &ada, &[&bob, &cyd]).await?;
    let (call, ada_access) = start_call(stack, &chat, "video", &ada).await?;
    let (bob_access, cyd_access) = (accept(stack, &call, &bob).await?, accept(stack, &call, &cyd).await?);
    let bob_spare = accept(stack, &call, &bob).await?;
    let args = ["--seconds", seconds];
    let peers = [spawn_peer(&ada_access, &args), spawn_peer(&bob_access, &args), spawn_peer(&cyd_access, &args)];
    connected(stack, &call, &ada, &[&ada, &bob, &cyd]).await?;
    Ok(GroupCall { ada, bob, cyd, call, peers, bob_spare })
}

#[tokio::test]
async fn a_participant_who_hangs_up_is_dropped_while_the_others_go_on() -> Result<()> {
    let stack = sfu_stack().await?;
    let GroupCall { ada, bob, cyd, call, peers, bob_spare } = group_call_of_three(&stack, "14").await?;
    let [ada_peer, bob_peer, cyd_peer] = peers;

    let (status, left) = stack.post(&format!("/calls/{call}/end"), Some(&bob.token), &json!(null)).await?;
    ensure!(status == 200, "hang up: {status} {left}");
    let hung_up_at = unix_now();
    assert_dropped(&finished(bob_peer).await?, "you left this call", hung_up_at);
    assert_refused(&bob_spare, "join token revoked").await?;
    // Coming back is a new right: a token issued after the hang-up is admitted.
    let (url, token) = accept(&stack, &call, &bob).await?;
    let back = run_peer(&url, &token, &["--seconds", "3"]).await?;
    assert_eq!((back["answered"].clone(), back["close"].clone()), (json!(true), Value::Null), "{back}");

    for (peer, other) in [(ada_peer, &cyd), (cyd_peer, &ada)] {
        let summary = finished(peer).await?;
        assert_eq!(summary["close"], Value::Null, "the SFU closed a peer that stayed: {summary}");
        assert!(!decoded(&summary, "video", 60).is_empty(), "{summary}");
        // The room shrank to the two who stayed (before Bob came back and they all left).
        let rooms = summary["rooms"].as_array().cloned().unwrap_or_default();
        assert!(rooms.iter().any(|room| room["users"] == json!([other.id])), "{summary}");
    }
    Ok(())
}

#[tokio::test]
async fn logging_out_drops_that_users_peer() -> Result<()> {
    let stack = sfu_stack().await?;
    let GroupCall { bob, peers, bob_spare, .. } = group_call_of_three(&stack, "12").await?;
    let [ada_peer, bob_peer, cyd_peer] = peers;

    let response = stack.http.post(stack.url("/auth/logout")).bearer_auth(&bob.token).json(&json!({})).send().await?;
    ensure!(response.status().is_success(), "logout: {}", response.status());
    let logged_out_at = unix_now();
    assert_dropped(&finished(bob_peer).await?, "your session has ended", logged_out_at);
    assert_refused(&bob_spare, "join token revoked: your session has ended").await?;
    for peer in [ada_peer, cyd_peer] {
        let summary = finished(peer).await?;
        assert_eq!(summary["close"], Value::Null, "{summary}");
    }
    Ok(())
}

/// Removing a device from another one signs it out, and its peer goes with it.
#[tokio::test]
async fn removing_a_device_drops_that_devices_peer() -> Result<()> {
    let stack = sfu_stack().await?;
    let ada = member(&stack, "ada").await?;
    let email = parley_tests::unique_email("bob");
    let registered = stack.register("bob", &email).await?;
    let phone = TestDevice::new(
        &text(&registered["user"]["id"])?,
        &text(&registered["device_id"])?,
        &text(&registered["access_token"])?,
        7,
    );
    phone.publish(&stack, 1).await?;
    let bob = phone.member();
    let (status, laptop) =
        stack.post("/auth/login", None, &json!({"email": email, "password": parley_tests::PASSWORD})).await?;
    ensure!(status == 200, "second login: {status} {laptop}");
    let chat = direct(&stack, &ada, &bob).await?;
    let (call, ada_access) = start_call(&stack, &chat, "video", &ada).await?;
    let (bob_access, bob_spare) = (accept(&stack, &call, &bob).await?, accept(&stack, &call, &bob).await?);
    let args = ["--seconds", "12"];
    let (ada_peer, bob_peer) = (spawn_peer(&ada_access, &args), spawn_peer(&bob_access, &args));
    connected(&stack, &call, &ada, &[&ada, &bob]).await?;

    let response = stack
        .http
        .delete(stack.url(&format!("/keys/devices/{}", phone.device_id)))
        .bearer_auth(text(&laptop["access_token"])?)
        .send()
        .await?;
    ensure!(response.status() == 204, "remove the phone: {}", response.status());
    let removed_at = unix_now();
    assert_dropped(&finished(bob_peer).await?, "your session has ended", removed_at);
    // A direct call ends with one side gone: either end of the right revokes the spare token.
    assert_refused(&bob_spare, "join token revoked").await?;
    finished(ada_peer).await?;
    Ok(())
}

#[tokio::test]
async fn an_audio_call_carries_no_video_even_from_peers_that_send_it() -> Result<()> {
    let stack = sfu_stack().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let (call, ada_access) = start_call(&stack, &chat, "audio", &ada).await?;
    let bob_access = accept(&stack, &call, &bob).await?;
    // Both peers offer and send video with their audio tokens.
    let peers = [spawn_peer(&ada_access, &["--seconds", "6"]), spawn_peer(&bob_access, &["--seconds", "6"])];
    for peer in peers {
        let summary = finished(peer).await?;
        assert_eq!(decoded(&summary, "audio", 50).len(), 1, "{summary}");
        assert!(decoded(&summary, "video", 1).is_empty(), "video reached an audio call: {summary}");
        let announced: Vec<Value> = summary["participants_peak"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["tracks"].as_array().cloned().unwrap_or_default())
            .collect();
        assert!(announced.iter().all(|t| t["kind"] == "audio") && !announced.is_empty(), "{summary}");
    }
    Ok(())
}

#[tokio::test]
async fn a_join_token_admits_once_and_an_oversized_frame_closes_the_socket() -> Result<()> {
    let stack = sfu_stack().await?;
    let (ada, bob, cyd) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&bob, &cyd]).await?;
    let (call, ada_access) = start_call(&stack, &chat, "video", &ada).await?;
    let bob_access = accept(&stack, &call, &bob).await?;
    let ada_peer = spawn_peer(&ada_access, &["--seconds", "12"]);
    let bob_peer = spawn_peer(&bob_access, &["--seconds", "12"]);
    connected(&stack, &call, &ada, &[&ada, &bob]).await?;

    // Ada's token again (someone who copied it): refused, and Ada's own connection stays.
    assert_refused(&ada_access, "join token already used").await?;
    // A 100 KiB frame is not read: the socket closes without an answer.
    let started = unix_now();
    let (url, token) = accept(&stack, &call, &cyd).await?;
    let big = run_peer(&url, &token, &["--seconds", "5", "--offer-padding", "102400"]).await?;
    eprintln!("oversized: {big}");
    assert_eq!(big["answered"], false, "{big}");
    assert!(big["close"].is_object(), "{big}");
    assert!(big["closed_at_unix"].as_f64().unwrap_or(f64::INFINITY) - started < 4.0, "{big}");
    // A frame just under the cap is an ordinary offer.
    let (url, token) = accept(&stack, &call, &cyd).await?;
    let padded = run_peer(&url, &token, &["--seconds", "4", "--offer-padding", "50000"]).await?;
    eprintln!("padded: {padded}");
    assert_eq!(padded["answered"], true, "{padded}");
    assert!(!decoded(&padded, "video", 5).is_empty(), "{padded}");

    for peer in [ada_peer, bob_peer] {
        let summary = finished(peer).await?;
        assert_eq!(summary["close"], Value::Null, "{summary}");
        assert!(!decoded(&summary, "video", 60).is_empty(), "{summary}");
    }
    Ok(())
}

#[tokio::test]
async fn a_restarted_sfu_still_refuses_tokens_whose_right_ended_before_it_started() -> Result<()> {
    let mut stack = sfu_stack().await?;
    let (ada, bob, cyd) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&bob, &cyd]).await?;
    let (call, _) = start_call(&stack, &chat, "video", &ada).await?;
    let bob_spare = accept(&stack, &call, &bob).await?;
    let cyd_access = accept(&stack, &call, &cyd).await?;
    let (status, left) = stack.post(&format!("/calls/{call}/end"), Some(&bob.token), &json!(null)).await?;
    ensure!(status == 200, "hang up: {status} {left}");

    // The SFU is ready only once it has read the last token lifetime's ends back from the stream.
    stack.restart_sfu().await?;
    assert_refused(&bob_spare, "join token revoked").await?;
    let cyd_sees = run_peer(&cyd_access.0, &cyd_access.1, &["--seconds", "2"]).await?;
    assert_eq!((cyd_sees["answered"].clone(), cyd_sees["close"].clone()), (json!(true), Value::Null), "{cyd_sees}");
    Ok(())
}
