//! Calls through the real SFU, with aiortc (an independent WebRTC implementation, in Python) as
//! every participant: generated video and an audio tone go in, decoded frames are counted out.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use futures::future::join_all;
use parley_tests::{call_everyone, decoded, run_chromium_peer, run_peer, sfu_stack, text, Stack, StackOptions};
use serde_json::{json, Value};

use parley_tests::{direct, group, member, Member};

/// Each peer stays this long in the call.
const SECONDS: &str = "6";

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
        let participants = summary["participants_peak"].as_array().cloned().unwrap_or_default();
        assert_eq!(participants.len(), 1, "{summary}");
        assert_eq!(participants[0]["user_id"], other.id.as_str());
        let mut kinds: Vec<&str> =
            participants[0]["tracks"].as_array().into_iter().flatten().filter_map(|t| t["kind"].as_str()).collect();
        kinds.sort();
        assert_eq!(kinds, ["audio", "video"], "{summary}");
    }
    Ok(())
}

#[tokio::test]
async fn a_four_person_group_call_gives_everyone_the_other_three() -> Result<()> {
    let stack = sfu_stack().await?;
    let mut people = Vec::new();
    for name in ["ada", "bob", "cyd", "dee"] {
        people.push(member(&stack, name).await?);
    }
    let others: Vec<&Member> = people.iter().skip(1).collect();
    let chat = group(&stack, &people[0], &others).await?;
    let access = call_everyone(&stack, &chat, "video", &people[0], &others).await?;
    let peers = access.iter().map(|(url, token)| run_peer(url, token, &["--seconds", "8"]));
    let summaries: Vec<Value> = join_all(peers).await.into_iter().collect::<Result<_>>()?;
    for (me, summary) in people.iter().zip(&summaries) {
        eprintln!("peer: {summary}");
        // Several decoders share this machine's two cores: a few frames each proves the path.
        assert_eq!(decoded(summary, "video", 5).len(), 3, "{summary}");
        assert_eq!(decoded(summary, "audio", 20).len(), 3, "{summary}");
        let mut seen: Vec<String> = summary["participants_peak"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["tracks"].as_array().map_or(0, Vec::len) == 2)
            .filter_map(|p| p["user_id"].as_str().map(str::to_owned))
            .collect();
        seen.sort();
        let mut expected: Vec<String> = people.iter().filter(|p| p.id != me.id).map(|p| p.id.clone()).collect();
        expected.sort();
        assert_eq!(seen, expected, "{summary}");
    }
    Ok(())
}

#[tokio::test]
async fn an_audio_only_call_carries_audio() -> Result<()> {
    let stack = sfu_stack().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let access = call_everyone(&stack, &chat, "audio", &ada, &[&bob]).await?;
    let peers = access.iter().map(|(url, token)| run_peer(url, token, &["--seconds", "4", "--audio-only"]));
    for summary in join_all(peers).await {
        let summary = summary?;
        assert_eq!(decoded(&summary, "audio", 50).len(), 1, "{summary}");
        assert!(decoded(&summary, "video", 1).is_empty(), "{summary}");
    }
    Ok(())
}

/// Reads a counter from the SFU's Prometheus text.
async fn sfu_metric(stack: &Stack, name: &str) -> Result<f64> {
    let base = stack.sfu_base.clone().context("the stack has an SFU")?;
    let text = stack.http.get(format!("{base}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum())
}

#[tokio::test]
async fn a_late_joiner_gets_a_keyframe_promptly() -> Result<()> {
    let stack = sfu_stack().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let access = call_everyone(&stack, &chat, "video", &ada, &[&bob]).await?;
    let requests_before = sfu_metric(&stack, "sfu_keyframe_requests").await?;
    // Ada has been sending for 4 s when Bob arrives: his decoder needs a fresh keyframe.
    let (early, late) = tokio::join!(
        run_peer(&access[0].0, &access[0].1, &["--seconds", "8"]),
        run_peer(&access[1].0, &access[1].1, &["--seconds", "4", "--delay", "4"]),
    );
    let (early, late) = (early?, late?);
    eprintln!("early: {early}\nlate: {late}");
    let video = decoded(&late, "video", 10);
    assert_eq!(video.len(), 1, "{late}");
    assert!(first_at(&video[0]) <= 1.5, "first frame after {} s: {late}", first_at(&video[0]));
    assert!(sfu_metric(&stack, "sfu_keyframe_requests").await? > requests_before);
    assert_eq!(decoded(&early, "video", 10).len(), 1, "{early}");
    Ok(())
}

#[tokio::test]
async fn a_peer_that_vanishes_is_removed_after_the_timeout_and_the_others_are_told() -> Result<()> {
    let stack = Stack::start_with(
        StackOptions::default()
            .with_sfu()
            .env("PARLEY_SFU_PEER_TIMEOUT_MS", "2000")
            .env("PARLEY_SFU_REJOIN_GRACE_MS", "1000"),
    )
    .await?;
    let (ada, bob, cyd) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&bob, &cyd]).await?;
    let access = call_everyone(&stack, &chat, "video", &ada, &[&bob, &cyd]).await?;
    let (ada_sees, bob_sees, cyd_sees) = tokio::join!(
        run_peer(&access[0].0, &access[0].1, &["--seconds", "9"]),
        run_peer(&access[1].0, &access[1].1, &["--seconds", "9"]),
        // Cyd's network goes away after 3 s; her signaling socket stays open and says nothing.
        run_peer(&access[2].0, &access[2].1, &["--seconds", "9", "--freeze-after", "3"]),
    );
    let (ada_sees, bob_sees, cyd_sees) = (ada_sees?, bob_sees?, cyd_sees?);
    eprintln!("ada: {ada_sees}\ncyd: {cyd_sees}");
    // Cyd is told why she was removed; Ada and Bob see the room shrink to one other person.
    assert_eq!(cyd_sees["close"]["code"], 4408, "{cyd_sees}");
    assert!(cyd_sees["close"]["reason"].as_str().unwrap_or_default().contains("timed out"), "{cyd_sees}");
    for (summary, other) in [(&ada_sees, &bob), (&bob_sees, &ada)] {
        let rooms = summary["rooms"].as_array().cloned().unwrap_or_default();
        let all_three = rooms.iter().position(|r| r["users"].as_array().map_or(0, Vec::len) == 2);
        assert!(all_three.is_some(), "{summary}");
        let later = &rooms[all_three.unwrap_or_default()..];
        let without_cyd = later.iter().find(|r| r["users"] == json!([other.id]));
        let removed_at = without_cyd.and_then(|r| r["at"].as_f64()).unwrap_or(f64::INFINITY);
        // Frozen at 3 s, timeout 2 s, checked every 250 ms.
        assert!(removed_at < 7.0, "Cyd removed only after {removed_at} s: {summary}");
    }
    // The api heard it too: Cyd left the call, which goes on for the other two.
    let call_id = text(&parley_tests::jwt_claims(&access[0].1)?["call"])?;
    let cyd_id = cyd.id.clone();
    stack
        .eventually(Duration::from_secs(10), "Cyd to have left the call", || async {
            let (_, call) = stack.get(&format!("/calls/{call_id}"), Some(&ada.token)).await?;
            Ok(call["participants"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["user_id"] == cyd_id.as_str() && p["state"] == "left"))
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn bad_join_attempts_are_refused_with_a_reason_while_other_rooms_go_on() -> Result<()> {
    let stack = Stack::start_with(StackOptions::default().with_sfu().env("PARLEY_SFU_TOKEN_TTL_SECS", "5")).await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let access = call_everyone(&stack, &chat, "video", &ada, &[&bob]).await?;
    let issued = std::time::Instant::now();
    let url = access[0].0.clone();
    let token = access[0].1.clone();
    let call_id = text(&parley_tests::jwt_claims(&token)?["call"])?;
    // A token is admitted once: the malformed offer gets one of its own (Ada joining again).
    let (status, again) = stack.post(&format!("/calls/{call_id}/accept"), Some(&ada.token), &json!(null)).await?;
    ensure!(status == 200, "accept again: {status} {again}");
    let spare = text(&again["sfu"]["token"])?;
    let other_call = uuid::Uuid::now_v7().to_string();
    // A good call runs meanwhile, on the same SFU.
    let good = tokio::spawn({
        let access = access.clone();
        async move {
            let peers = access.iter().map(|(url, token)| run_peer(url, token, &["--seconds", "8"]));
            join_all(peers).await
        }
    });
    // The valid token's cases first: it expires 5 s after the call started.
    let refusals = [
        (
            run_peer(&url, &token, &["--seconds", "3", "--call-id", &other_call]).await?,
            "join token is for another call",
        ),
        (run_peer(&url, &spare, &["--seconds", "3", "--sdp-garbage"]).await?, "malformed SDP offer"),
        (run_peer(&url, "", &["--seconds", "3"]).await?, "missing join token"),
        (run_peer(&url, "not.a.jwt", &["--seconds", "3"]).await?, "invalid join token"),
    ];
    for (summary, reason) in &refusals {
        assert!(summary["close"]["reason"].as_str().unwrap_or_default().starts_with(reason), "{reason}: {summary}");
        assert!(summary["errors"][0]["reason"].as_str().unwrap_or_default().starts_with(reason), "{summary}");
        assert!(summary["received"].as_object().is_none_or(|r| r.values().all(|t| t["frames"] == 0)), "{summary}");
    }
    // An access token is not a join token.
    let summary = run_peer(&url, &ada.token, &["--seconds", "3"]).await?;
    assert_eq!(summary["close"]["code"], 4001, "{summary}");
    for summary in good.await? {
        let summary = summary?;
        assert_eq!(decoded(&summary, "video", 20).len(), 1, "{summary}");
    }
    // Join tokens live 5 s here: this one has expired.
    tokio::time::sleep((issued + Duration::from_secs(6)).saturating_duration_since(std::time::Instant::now())).await;
    let summary = run_peer(&url, &token, &["--seconds", "3"]).await?;
    assert_eq!(summary["close"]["reason"], "join token expired", "{summary}");
    Ok(())
}

#[tokio::test]
async fn each_subscriber_gets_the_simulcast_layer_it_asked_for() -> Result<()> {
    let stack = sfu_stack().await?;
    let (ada, bob, cyd) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&bob, &cyd]).await?;
    let access = call_everyone(&stack, &chat, "video", &ada, &[&bob, &cyd]).await?;
    // Ada publishes three layers from Chromium; Bob takes the default (her best), Cyd asks for `l`.
    let (ada_sees, bob_sees, cyd_sees) = tokio::join!(
        // Ada reads her stats while the others are still in the call.
        run_chromium_peer(&access[0].0, &access[0].1, 9, &["--simulcast"]),
        run_peer(&access[1].0, &access[1].1, &["--seconds", "16", "--delay", "1"]),
        run_peer(&access[2].0, &access[2].1, &["--seconds", "16", "--delay", "1", "--layer", "l"]),
    );
    let (ada_sees, bob_sees, cyd_sees) = (ada_sees?, bob_sees?, cyd_sees?);
    eprintln!("ada: {ada_sees}\nbob: {bob_sees}\ncyd: {cyd_sees}");
    let sent: Vec<&Value> = ada_sees["sent"].as_array().into_iter().flatten().collect();
    assert!(sent.len() >= 2, "Chromium did not send simulcast: {ada_sees}");
    let from_ada = |summary: &Value| {
        summary["received"]
            .as_object()
            .into_iter()
            .flat_map(|t| t.values())
            .filter(|t| t["kind"] == "video" && t["frames"].as_u64().unwrap_or(0) > 10)
            .filter_map(|t| t["last_size"][0].as_u64())
            .max()
            .unwrap_or(0)
    };
    let (bob_width, cyd_width) = (from_ada(&bob_sees), from_ada(&cyd_sees));
    assert!(bob_width > 0 && cyd_width > 0, "bob {bob_width}, cyd {cyd_width}");
    assert!(cyd_width < bob_width, "the low layer should be smaller: bob {bob_width}, cyd {cyd_width}");
    // And Chromium decodes what the aiortc peers send it through the SFU.
    let decoded_by_ada = ada_sees["received"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == "video" && r["frames"].as_u64().unwrap_or(0) > 10)
        .count();
    assert_eq!(decoded_by_ada, 2, "{ada_sees}");
    Ok(())
}

#[tokio::test]
async fn lost_packets_are_nacked_and_retransmitted() -> Result<()> {
    // The SFU drops every 25th RTP datagram it sends; Chromium, receiving, must NACK them and get
    // them back as retransmissions (RTX) and keep decoding.
    let options = StackOptions::default().with_sfu().env("PARLEY_SFU_TEST_DROP_EVERY_NTH_RTP", "25");
    let stack = Stack::start_with(options).await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let access = call_everyone(&stack, &chat, "video", &ada, &[&bob]).await?;
    let (aiortc, chromium) = tokio::join!(
        // aiortc stays well past Chromium's reading of its stats, however slow Chromium starts.
        run_peer(&access[0].0, &access[0].1, &["--seconds", "16"]),
        run_chromium_peer(&access[1].0, &access[1].1, 7, &[]),
    );
    let (_, chromium) = (aiortc?, chromium?);
    eprintln!("chromium: {chromium}");
    let video = chromium["received"].as_array().into_iter().flatten().find(|r| r["kind"] == "video").cloned();
    let video = video.unwrap_or_default();
    assert!(video["nacks"].as_u64().unwrap_or(0) > 0, "{chromium}");
    assert!(video["retransmitted"].as_u64().unwrap_or(0) > 0, "{chromium}");
    // About 6 s of 30 fps video: losses repaired, decoding goes on.
    assert!(video["frames"].as_u64().unwrap_or(0) > 100, "{chromium}");
    assert!(sfu_metric(&stack, "sfu_nacks").await? > 0.0, "no NACKs counted");
    Ok(())
}

#[tokio::test]
async fn rejoining_from_a_new_connection_does_not_end_a_direct_call() -> Result<()> {
    let stack = sfu_stack().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    let access = call_everyone(&stack, &chat, "video", &ada, &[&bob]).await?;
    let call_id = text(&parley_tests::jwt_claims(&access[0].1)?["call"])?;
    // Bob's phone changes networks: a second connection, with a new token (each admits once),
    // replaces the first.
    let (status, again) = stack.post(&format!("/calls/{call_id}/accept"), Some(&bob.token), &json!(null)).await?;
    ensure!(status == 200, "accept again: {status} {again}");
    let bob_again = text(&again["sfu"]["token"])?;
    let peers = tokio::spawn({
        let access = access.clone();
        async move {
            tokio::join!(
                run_peer(&access[0].0, &access[0].1, &["--seconds", "10"]),
                run_peer(&access[1].0, &access[1].1, &["--seconds", "10"]),
                run_peer(&access[1].0, &bob_again, &["--seconds", "7", "--delay", "3"]),
            )
        }
    });
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (_, call) = stack.get(&format!("/calls/{call_id}"), Some(&ada.token)).await?;
    assert_eq!(call["status"], "active", "{call}");
    let (_, first_bob, second_bob) = peers.await?;
    let (first_bob, second_bob) = (first_bob?, second_bob?);
    assert_eq!(first_bob["close"]["code"], 4408, "{first_bob}");
    assert_eq!(decoded(&second_bob, "video", 20).len(), 1, "{second_bob}");
    Ok(())
}

#[tokio::test]
async fn a_dropped_connection_ends_a_direct_call_only_when_it_does_not_come_back_in_time() -> Result<()> {
    let stack = Stack::start_with(StackOptions::default().with_sfu().env("PARLEY_SFU_REJOIN_GRACE_MS", "5000")).await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    // The test-only fault endpoint is not there unless PARLEY_SFU_TEST_FAULTS=1.
    let sfu = stack.sfu_base.clone().context("the stack has an SFU")?;
    let fault = stack.http.post(format!("{sfu}/test/blackhole")).json(&json!({"user_id": bob.id, "ms": 5000}));
    assert_eq!(fault.send().await?.status().as_u16(), 404);
    let access = call_everyone(&stack, &chat, "video", &ada, &[&bob]).await?;
    let call_id = text(&parley_tests::jwt_claims(&access[0].1)?["call"])?;
    // Bob's socket goes away after 4 s without a `leave`; Ada stays on.
    let peers = tokio::spawn({
        let access = access.clone();
        async move {
            tokio::join!(
                run_peer(&access[0].0, &access[0].1, &["--seconds", "14"]),
                run_peer(&access[1].0, &access[1].1, &["--seconds", "4", "--no-leave"]),
            )
        }
    });
    let status = || async {
        let (_, call) = stack.get(&format!("/calls/{call_id}"), Some(&ada.token)).await?;
        anyhow::Ok(text(&call["status"])?)
    };
    // Well inside the grace, the call goes on for Ada.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(status().await?, "active");
    // Past it, Bob has left and the 1:1 call is over.
    stack
        .eventually(Duration::from_secs(10), "the call to end after the grace", || async {
            Ok(status().await? == "ended")
        })
        .await?;
    let (ada_sees, bob_sees) = peers.await?;
    let (ada_sees, bob_sees) = (ada_sees?, bob_sees?);
    assert!(bob_sees["close"].is_null(), "{bob_sees}");
    // The SFU took Bob out of the room at once: Ada saw it empty long before the call ended.
    let rooms = ada_sees["rooms"].as_array().cloned().unwrap_or_default();
    assert!(rooms.iter().any(|r| r["users"] == json!([bob.id])), "{ada_sees}");
    assert!(rooms.last().is_some_and(|r| r["users"] == json!([])), "{ada_sees}");
    Ok(())
}
