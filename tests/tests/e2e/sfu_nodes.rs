//! Several SFU nodes: each reports itself to the directory, the api spreads calls over the live
//! ones and pins each call to its node; when a node dies its participants are told to join
//! again, land on a live node and their media flows again, while calls elsewhere never stall. A
//! node cut off from NATS gives its calls up the same way.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use parley_tests::proxy::CuttableProxy;
use parley_tests::{
    access, call_everyone, decoded, direct, jwt_claims, member, run_peer, text, Member, Socket, Stack, StackOptions,
};
use serde_json::{json, Value};

/// One direct call: its two members and their (url, token) each.
struct PlacedCall {
    id: String,
    members: [Member; 2],
    access: Vec<(String, String)>,
}

impl PlacedCall {
    fn url(&self) -> &str {
        &self.access[0].0
    }
}

async fn start_call(stack: &Stack, n: usize) -> Result<PlacedCall> {
    let (a, b) = (member(stack, &format!("a{n}")).await?, member(stack, &format!("b{n}")).await?);
    let chat = direct(stack, &a, &b).await?;
    let access = call_everyone(stack, &chat, "audio", &a, &[&b]).await?;
    let id = text(&jwt_claims(&access[0].1)?["call"])?;
    Ok(PlacedCall { id, members: [a, b], access })
}

fn audio_of(summary: &Value) -> Result<Value> {
    decoded(summary, "audio", 1).into_iter().next().with_context(|| format!("no audio: {summary}"))
}

/// Waits on `socket` for `call_id`'s `media_moved` (failing if the call ends instead).
async fn moved(socket: &mut Socket, call_id: &str) -> Result<Value> {
    loop {
        let frame = socket.expect("call.updated", Duration::from_secs(15)).await?;
        if frame["data"]["call_id"] == json!(call_id) && frame["data"]["change"] == "media_moved" {
            return Ok(frame);
        }
        ensure!(frame["data"]["change"] != "ended", "the call ended instead of moving: {frame}");
    }
}

/// Both members of a moved call join it again: on `node_url`, where their audio flows.
async fn rejoin_on(stack: &Stack, call: &PlacedCall, node_url: &str) -> Result<()> {
    let mut rejoined = Vec::new();
    for member in &call.members {
        let (status, body) =
            stack.post(&format!("/calls/{}/accept", call.id), Some(&member.token), &json!(null)).await?;
        ensure!(status == 200, "rejoin: {status} {body}");
        ensure!(body["call"]["status"] == "active", "{body}");
        rejoined.push(access(&body["sfu"])?);
    }
    ensure!(rejoined.iter().all(|(url, _)| url == node_url), "not rejoined on {node_url}: {rejoined:?}");
    let runs = rejoined.iter().map(|(url, token)| run_peer(url, token, &["--seconds", "4", "--audio-only"]));
    for summary in futures::future::join_all(runs).await {
        let summary = summary?;
        ensure!(!decoded(&summary, "audio", 50).is_empty(), "no media after rejoining: {summary}");
    }
    Ok(())
}

#[tokio::test]
async fn calls_spread_over_sfu_nodes_and_a_dead_nodes_calls_rejoin_elsewhere() -> Result<()> {
    let mut stack = Stack::start_with(StackOptions::default().with_sfus(2)).await?;
    let nodes = stack.sfu_nodes();

    // Four calls on two idle nodes: two each, every call's participants on one node, which the
    // token names.
    let mut calls = Vec::new();
    for n in 0..4 {
        calls.push(start_call(&stack, n).await?);
    }
    for call in &calls {
        ensure!(call.access.iter().all(|(url, _)| url == call.url()), "a call split over nodes");
        let (node_id, _) = nodes.iter().find(|(_, url)| url == call.url()).context("an unknown node URL")?;
        for (_, token) in &call.access {
            ensure!(jwt_claims(token)?["node"] == json!(node_id), "the token names another node");
        }
    }
    let used: BTreeSet<&str> = calls.iter().map(PlacedCall::url).collect();
    ensure!(used.len() == 2, "calls did not spread over both nodes: {used:?}");
    let doomed_url = nodes[0].1.clone();
    let doomed = calls.iter().find(|c| c.url() == doomed_url).context("no call on node 0")?;
    let survivor = calls.iter().find(|c| c.url() != doomed_url).context("no call on node 1")?;

    // A join token is for its node only.
    let elsewhere = run_peer(&nodes[1].1, &doomed.access[1].1, &["--seconds", "1"]).await?;
    ensure!(elsewhere["close"]["code"] == 4001, "another node admitted the token: {elsewhere}");
    ensure!(elsewhere["close"]["reason"].as_str().is_some_and(|r| r.contains("another SFU node")), "{elsewhere}");

    // Both calls run; node 0 dies under one of them.
    let mut listening = Socket::connect(&stack.base_url, &doomed.members[1].token, None).await?;
    let survivor_peers = tokio::spawn({
        let access = survivor.access.clone();
        async move {
            let runs = access.iter().map(|(url, token)| run_peer(url, token, &["--seconds", "14", "--audio-only"]));
            futures::future::join_all(runs).await
        }
    });
    let doomed_peers = futures::future::join_all(
        doomed.access.iter().map(|(url, token)| run_peer(url, token, &["--seconds", "14", "--audio-only"])),
    );
    let killer = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        stack.kill_sfu(0).await
    };
    let (doomed_summaries, killed) = tokio::join!(doomed_peers, killer);
    killed?;
    for summary in doomed_summaries {
        let summary = summary?;
        audio_of(&summary)?;
        ensure!(!summary["close"].is_null(), "the dead node's peer was not dropped: {summary}");
    }

    // Its participants hear where to go: the call moved, it did not end.
    let frame = moved(&mut listening, &doomed.id).await?;
    eprintln!("moved: {frame}");
    rejoin_on(&stack, doomed, &nodes[1].1).await?;

    // The other node's call went on throughout, without a stall.
    for summary in survivor_peers.await? {
        let summary = summary?;
        let audio = audio_of(&summary)?;
        ensure!(audio["frames"].as_u64().unwrap_or(0) >= 400, "too little audio: {summary}");
        let gap = audio["largest_gap"].as_f64().unwrap_or(f64::INFINITY);
        ensure!(gap < 1.0, "the other node's call stalled for {gap} s: {summary}");
    }
    Ok(())
}

#[tokio::test]
async fn a_node_cut_off_from_nats_drops_its_calls_and_admits_nobody_until_it_is_back() -> Result<()> {
    // Node 0 reaches NATS through a proxy the test can cut; everything else reaches it directly.
    let nats = parley_tests::nats_url();
    let proxy = CuttableProxy::start(nats.trim_start_matches("nats://")).await?;
    let options = StackOptions::default().with_sfus(2).sfu_node_env(0, "NATS_URL", &format!("nats://{}", proxy.addr));
    let stack = Stack::start_with(options).await?;
    let nodes = stack.sfu_nodes();
    let mut calls = Vec::new();
    for n in 0..2 {
        calls.push(start_call(&stack, n).await?);
    }
    let cut = calls.iter().find(|c| c.url() == nodes[0].1).context("no call on node 0")?;
    // A token for node 0 that nobody has used yet (accepting again is allowed in a call).
    let (status, body) =
        stack.post(&format!("/calls/{}/accept", cut.id), Some(&cut.members[0].token), &json!(null)).await?;
    ensure!(status == 200, "accept again: {status} {body}");
    let (spare_url, spare_token) = access(&body["sfu"])?;
    ensure!(spare_url == nodes[0].1, "the call is pinned to node 0");
    let mut listening = Socket::connect(&stack.base_url, &cut.members[1].token, None).await?;

    // The call runs on node 0; four seconds in, node 0 loses NATS.
    let peers = futures::future::join_all(
        cut.access.iter().map(|(url, token)| run_peer(url, token, &["--seconds", "20", "--audio-only"])),
    );
    let cutter = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        proxy.cut();
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64())
    };
    let (summaries, cut_at) = tokio::join!(peers, cutter);
    let cut_at = cut_at?;
    for summary in summaries {
        let summary = summary?;
        audio_of(&summary)?;
        // It no longer hears whose right ended, so nobody stays: within its deadline (3 s) and a
        // heartbeat or two.
        ensure!(summary["close"]["code"] == 4503, "the cut-off node kept its peer: {summary}");
        let after = summary["closed_at_unix"].as_f64().unwrap_or(f64::INFINITY) - cut_at;
        ensure!(after < 6.0, "dropped {after:.1} s after the cut: {summary}");
    }
    // Nobody joins it while cut off.
    let refused = run_peer(&spare_url, &spare_token, &["--seconds", "1"]).await?;
    ensure!(refused["close"]["code"] == 4503, "a cut-off node admitted a peer: {refused}");
    ensure!(refused["close"]["reason"].as_str().is_some_and(|r| r.contains("lost contact")), "{refused}");

    // The api moved the call.
    moved(&mut listening, &cut.id).await?;

    // Back on NATS, node 0 admits again, but not a token from before the move: the call lives on
    // node 1 now and must not have a second room.
    proxy.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let refused = run_peer(&spare_url, &spare_token, &["--seconds", "1"]).await?;
        if refused["close"]["code"] != 4503 || tokio::time::Instant::now() > deadline {
            break refused;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    ensure!(refused["close"]["code"] == 4001, "an old token joined the moved call's old node: {refused}");
    ensure!(refused["close"]["reason"].as_str().is_some_and(|r| r.contains("moved")), "{refused}");

    // Its members carry on on node 1.
    rejoin_on(&stack, cut, &nodes[1].1).await?;

    // And the node that came back takes the next call (it is the least loaded).
    let next = start_call(&stack, 2).await?;
    ensure!(next.url() == nodes[0].1, "the idle node that came back got no call");
    let runs = next.access.iter().map(|(url, token)| run_peer(url, token, &["--seconds", "3", "--audio-only"]));
    for summary in futures::future::join_all(runs).await {
        let summary = summary?;
        ensure!(!decoded(&summary, "audio", 30).is_empty(), "no media on the node that came back: {summary}");
    }
    Ok(())
}
