//! Calls through the real SFU, with aiortc (an independent WebRTC implementation, in Python) as
//! every participant: generated video and an audio tone go in, decoded frames are counted out.

use std::time::Duration;

use anyhow::{ensure, Result};
use futures::future::join_all;
use parley_tests::{run_peer, Stack, StackOptions};
use serde_json::{json, Value};

use super::chats::{group, member, Member};

/// Each peer stays this long in the call.
const SECONDS: &str = "6";

async fn sfu_stack() -> Result<Stack> {
    Stack::start_with(StackOptions::default().with_sfu()).await
}

/// Starts a call in `chat` as `caller` and has everyone in `others` accept it; returns each
/// participant's `(url, token)` in the same order (caller first).
async fn call_everyone(
    stack: &Stack,
    chat: &str,
    kind: &str,
    caller: &Member,
    others: &[&Member],
) -> Result<Vec<(String, String)>> {
    let (status, started) = stack.post("/calls", Some(&caller.token), &json!({"chat_id": chat, "kind": kind})).await?;
    ensure!(status == 201, "start call: {status} {started}");
    let call_id = started["id"].as_str().unwrap_or_default().to_owned();
    let access = |sfu: &Value| {
        (sfu["url"].as_str().unwrap_or_default().to_owned(), sfu["token"].as_str().unwrap_or_default().to_owned())
    };
    let mut all = vec![access(&started["sfu"])];
    for other in others {
        let (status, accepted) =
            stack.post(&format!("/calls/{call_id}/accept"), Some(&other.token), &json!(null)).await?;
        ensure!(status == 200, "accept: {status} {accepted}");
        all.push(access(&accepted["sfu"]));
    }
    Ok(all)
}

/// Received tracks of `kind` that decoded at least `frames` frames.
fn decoded(summary: &Value, kind: &str, frames: u64) -> Vec<Value> {
    summary["received"]
        .as_object()
        .into_iter()
        .flat_map(|tracks| tracks.values())
        .filter(|t| t["kind"] == kind && t["frames"].as_u64().unwrap_or(0) >= frames)
        .cloned()
        .collect()
}

fn first_at(track: &Value) -> f64 {
    track["first_at"].as_f64().unwrap_or(f64::INFINITY)
}

#[tokio::test]
async fn a_one_to_one_video_call_carries_video_and_audio_both_ways() -> Result<()> {
    let stack = sfu_stack().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let access = call_everyone(&stack, &chat, "video", &ada, &[&bob]).await?;
    let peers = access.iter().map(|(url, token)| run_peer(url, token, &["--seconds", SECONDS]));
    let summaries: Vec<Value> = join_all(peers).await.into_iter().collect::<Result<_>>()?;
    for (summary, other) in summaries.iter().zip([&bob, &ada]) {
        eprintln!("peer: {summary}");
        let video = decoded(summary, "video", 20);
        let audio = decoded(summary, "audio", 50);
        assert_eq!((video.len(), audio.len()), (1, 1), "{summary}");
        assert!(first_at(&video[0]) <= 3.0 && first_at(&audio[0]) <= 3.0, "media took too long: {summary}");
        assert_eq!(video[0]["size"], json!([320, 240]));
        let participants = summary["participants"].as_array().cloned().unwrap_or_default();
        assert_eq!(participants.len(), 1, "{summary}");
        assert_eq!(participants[0]["user_id"], other.id.as_str());
        let mut kinds: Vec<&str> =
            participants[0]["tracks"].as_array().into_iter().flatten().filter_map(|t| t["kind"].as_str()).collect();
        kinds.sort();
        assert_eq!(kinds, ["audio", "video"], "{summary}");
    }
    let _ = Duration::ZERO;
    Ok(())
}
