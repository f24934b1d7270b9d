//! `parley-bench-soak [BASE_URL]`: a long steady load, to see what grows. `BENCH_SOAK_SOCKETS`
//! users (1,000) each hold a WebSocket, in groups of ten; the maximum message rate is measured
//! first (32 closed-loop senders for `BENCH_SOAK_PROBE_SECS`, 60, timed until each message reached
//! its room's timing socket), then messages go out at half of it (or `BENCH_SOAK_RATE`) for `BENCH_SOAK_SECS` (600). With `BENCH_PEER_PYTHON` and `BENCH_PEER_SCRIPT` set, two aiortc
//! peers hold an audio call through the SFU all along. It prints, per minute, the POST → frame
//! latency and each watched process's (`BENCH_WATCH`, `name:pid,...`) resident memory and open
//! file descriptors, then each one's memory slope (least squares after the first minute) and its
//! change in descriptors. With `DATABASE_URL`, also PostgreSQL's WAL written and checkpoints
//! begun per minute, since checkpoints are what latency spikes line up with; and how busy the
//! machine's cores were, and how much of that was this load generator.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use parley_tests::bench::{
    create_group, env_usize, listen, percentile, register_many, saturate_for, steady, Room, User,
};
use parley_tests::Socket;
use serde_json::json;
use tokio::sync::Mutex;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One reading of a watched process.
struct Sample {
    at: Duration,
    name: String,
    rss_kib: u64,
    fds: usize,
}

fn watched() -> Vec<(String, String)> {
    std::env::var("BENCH_WATCH")
        .unwrap_or_default()
        .split(',')
        .filter_map(|entry| entry.split_once(':'))
        .filter(|(_, pid)| !pid.is_empty())
        .map(|(name, pid)| (name.to_owned(), pid.to_owned()))
        .collect()
}

fn read_process(pid: &str) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

/// CPU jiffies (user + system) process `pid` has used.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11).take(2);
    fields.map(|v| v.parse::<u64>().ok()).sum()
}

/// CPU jiffies each watched process, PostgreSQL (all its processes) and this load generator
/// have used.
fn cpu_by_process(processes: &[(String, String)]) -> Vec<(String, u64)> {
    let mut used: Vec<(String, u64)> =
        processes.iter().filter_map(|(name, pid)| Some((name.clone(), process_ticks(pid)?))).collect();
    let postgres = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().into_string().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "postgres").then(|| process_ticks(&pid)).flatten()
        })
        .sum();
    used.push(("postgres".into(), postgres));
    used.push(("load generator".into(), process_ticks("self").unwrap_or(0)));
    used
}

/// Jiffies the machine's cores spent busy and in all (`/proc/stat`), and this process's own.
fn read_cpu() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let times: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = times.iter().sum();
    // idle and iowait
    let idle = times.get(3)? + times.get(4).copied().unwrap_or(0);
    Some((total - idle, total, process_ticks("self")?))
}

/// PostgreSQL's WAL position (bytes) and checkpoints begun so far.
async fn read_database(pool: &sqlx::PgPool) -> Option<(i64, i64)> {
    sqlx::query_as(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, \
                (checkpoints_timed + checkpoints_req)::bigint FROM pg_stat_bgwriter",
    )
    .fetch_one(pool)
    .await
    .ok()
}

/// Least-squares slope of `points` (x minutes, y MiB), in MiB per minute.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (mean_x, mean_y) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let covariance: f64 = points.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    covariance / variance
}

/// Two peers in an audio call through the SFU for `seconds`, when the peer script is given.
async fn call_through_the_sfu(
    http: &reqwest::Client,
    base: &str,
    a: &User,
    b: &User,
    seconds: u64,
) -> Result<Vec<tokio::process::Child>> {
    let (Ok(python), Ok(script)) = (std::env::var("BENCH_PEER_PYTHON"), std::env::var("BENCH_PEER_SCRIPT")) else {
        return Ok(Vec::new());
    };
    let (status, chat) = parley_tests::read(
        http.post(format!("{base}/chats"))
            .bearer_auth(&a.token)
            .json(&json!({"type": "direct", "member_ids": [b.id]}))
            .send()
            .await?,
    )
    .await?;
    ensure!(status == 201, "direct chat: {status} {chat}");
    let (status, started) = parley_tests::read(
        http.post(format!("{base}/calls"))
            .bearer_auth(&a.token)
            .json(&json!({"chat_id": chat["id"], "kind": "audio"}))
            .send()
            .await?,
    )
    .await?;
    ensure!(status == 201, "call: {status} {started}");
    let call = started["id"].as_str().context("call id")?.to_owned();
    let (status, accepted) =
        parley_tests::read(http.post(format!("{base}/calls/{call}/accept")).bearer_auth(&b.token).send().await?)
            .await?;
    ensure!(status == 200, "accept: {status} {accepted}");
    let mut peers = Vec::new();
    for sfu in [&started["sfu"], &accepted["sfu"]] {
        let child = tokio::process::Command::new(&python)
            .arg(&script)
            .arg(sfu["url"].as_str().unwrap_or_default())
            .arg(sfu["token"].as_str().unwrap_or_default())
            .args(["--seconds", &seconds.to_string(), "--audio-only"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        peers.push(child);
    }
    Ok(peers)
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let sockets = env_usize("BENCH_SOAK_SOCKETS", 1000).max(20);
    let seconds = env_usize("BENCH_SOAK_SECS", 600) as u64;
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    println!("parley-bench-soak against {base}: {sockets} sockets, {seconds} s");

    let users = register_many(&http, &base, sockets, 16).await?;
    let arrivals = Arc::new(Mutex::new(HashMap::new()));
    let mut rooms = Vec::new();
    let mut listeners = Vec::new();
    for group in users.chunks(10) {
        let members: Vec<&User> = group.iter().skip(1).collect();
        let chat = create_group(&http, &base, &group[0], &members).await?;
        rooms.push(Room { chat, sender: &group[0] });
        for (i, user) in group.iter().enumerate() {
            let socket = Socket::connect(&base, &user.token, None).await?;
            // The second member's socket times each room's messages; the rest just read theirs.
            let record = if i == 1 { Some(Arc::clone(&arrivals)) } else { None };
            listeners.push(listen(0, socket, record));
        }
    }
    // Long enough to span the probe and the soak; it is awaited at the end.
    let peers = call_through_the_sfu(&http, &base, &users[0], &users[1], seconds + 40).await?;

    let probe_for = Duration::from_secs(env_usize("BENCH_SOAK_PROBE_SECS", 60) as u64);
    let rate = match std::env::var("BENCH_SOAK_RATE").ok().and_then(|r| r.parse::<f64>().ok()) {
        Some(rate) => rate,
        None => {
            // The maximum the machine sustains, not what a burst gets in: a burst of a few seconds
            // (1,539 msg/s delivered) meets no checkpoint, full-page write or vacuum, and half of
            // it had kept the cores about 90 % busy in the soak, p99 swinging with every stall.
            // Timed until each message reached its room's timing socket: each one's feed rows and
            // frames are written after its 201.
            let started = Instant::now();
            let probed = saturate_for(&http, &base, &rooms, 32, 0, probe_for).await?;
            let accepted_in = started.elapsed();
            let deadline = Instant::now() + Duration::from_secs(120);
            while arrivals.lock().await.len() < probed && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (delivered_in, seen) = (started.elapsed(), arrivals.lock().await.len());
            ensure!(seen == probed, "only {seen} of the {probed} probe messages reached their timing socket");
            let accepted = probed as f64 / accepted_in.as_secs_f64();
            let max = probed as f64 / delivered_in.as_secs_f64();
            println!(
                "maximum rate (32 closed-loop senders for {} s, {probed} messages): accepted {accepted:.0} msg/s; \
                 delivered to the members' sockets {max:.0} msg/s",
                probe_for.as_secs()
            );
            max / 2.0
        }
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("soak: {rate:.0} msg/s for {seconds} s");

    let processes = watched();
    let database = match std::env::var("DATABASE_URL") {
        Ok(url) => Some(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await?),
        Err(_) => None,
    };
    let started = Instant::now();
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let database_samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cpu_samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = tokio::spawn({
        let (samples, processes) = (Arc::clone(&samples), processes.clone());
        let (database_samples, cpu_samples) = (Arc::clone(&database_samples), Arc::clone(&cpu_samples));
        async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(10));
            loop {
                ticks.tick().await;
                for (name, pid) in &processes {
                    if let Some((rss_kib, fds)) = read_process(pid) {
                        let sample = Sample { at: started.elapsed(), name: name.clone(), rss_kib, fds };
                        samples.lock().map(|mut s| s.push(sample)).unwrap_or_default();
                    }
                }
                if let Some(reading) = read_cpu() {
                    cpu_samples.lock().map(|mut s| s.push((started.elapsed(), reading))).unwrap_or_default();
                }
                if let Some(reading) = match &database {
                    Some(pool) => read_database(pool).await,
                    None => None,
                } {
                    database_samples.lock().map(|mut s| s.push((started.elapsed(), reading))).unwrap_or_default();
                }
            }
        }
    });

    let total = (rate * seconds as f64) as usize;
    let cpu_before = cpu_by_process(&processes);
    let sent = steady(&http, &base, &rooms, rate, total, 5_000_000).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu_after = cpu_by_process(&processes);
    sampler.abort();
    for listener in listeners {
        listener.abort();
    }
    // The call's two peers: how much audio each decoded, and whether anything closed them early.
    for peer in peers {
        let output = tokio::time::timeout(Duration::from_secs(90), peer.wait_with_output()).await??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or_default();
        let audio: Vec<String> = summary["received"]
            .as_object()
            .into_iter()
            .flat_map(|tracks| tracks.values())
            .map(|track| format!("{} frames, largest gap {} s", track["frames"], track["largest_gap"]))
            .collect();
        println!(
            "call peer: answered {}, close {}, audio received: {}",
            summary["answered"],
            summary["close"],
            audio.join("; ")
        );
    }

    // Per minute: latency of the messages posted in it, and the watched processes.
    let arrivals = arrivals.lock().await;
    let minutes = seconds.div_ceil(60) as usize;
    let mut by_minute: Vec<Vec<Duration>> = vec![Vec::new(); minutes];
    let mut by_ten_seconds: Vec<Vec<Duration>> = vec![Vec::new(); minutes * 6];
    let mut missing = 0usize;
    for (id, posted) in &sent {
        let second = posted.duration_since(started).as_secs() as usize;
        match arrivals.get(&format!("0/{id}")) {
            Some(arrived) => {
                let latency = arrived.duration_since(*posted);
                by_minute[(second / 60).min(minutes - 1)].push(latency);
                by_ten_seconds[(second / 10).min(minutes * 6 - 1)].push(latency);
            }
            None => missing += 1,
        }
    }
    // Each minute's worst ten seconds: a spike shows here even when the minute's p99 hides it.
    let worst_ten_seconds: Vec<f64> = by_ten_seconds
        .chunks_mut(6)
        .map(|windows| {
            windows.iter_mut().filter(|w| !w.is_empty()).fold(0.0, |worst, w| {
                w.sort();
                f64::max(worst, percentile(w, 0.99))
            })
        })
        .collect();
    let database_samples = database_samples.lock().map(|s| s.clone()).unwrap_or_default();
    let cpu_samples = cpu_samples.lock().map(|s| s.clone()).unwrap_or_default();
    // The machine's busy share and the load generator's share of all its cores, per minute.
    let cpu_by_minute: Vec<Option<(f64, f64)>> = (0..minutes as u64)
        .map(|minute| {
            let before = cpu_samples.iter().rfind(|(at, _)| at.as_secs() / 60 < minute).or(cpu_samples.first());
            let last = cpu_samples.iter().rfind(|(at, _)| at.as_secs() / 60 == minute);
            let ((_, (busy_before, total_before, own_before)), (_, (busy, total, own))) = (before?, last?);
            let elapsed = total.checked_sub(*total_before).filter(|t| *t > 0)? as f64;
            Some(((busy - busy_before) as f64 / elapsed * 100.0, (own - own_before) as f64 / elapsed * 100.0))
        })
        .collect();
    // WAL MiB and checkpoints begun in each minute (from the last reading before it to its last).
    let database_by_minute: Vec<Option<(f64, i64)>> = (0..minutes as u64)
        .map(|minute| {
            let before =
                database_samples.iter().rfind(|(at, _)| at.as_secs() / 60 < minute).or(database_samples.first());
            let last = database_samples.iter().rfind(|(at, _)| at.as_secs() / 60 == minute);
            let ((_, (wal_before, checkpoints_before)), (_, (wal, checkpoints))) = (before?, last?);
            Some(((wal - wal_before) as f64 / (1024.0 * 1024.0), checkpoints - checkpoints_before))
        })
        .collect();
    let samples = samples
        .lock()
        .map(|s| s.iter().map(|s| (s.at, s.name.clone(), s.rss_kib, s.fds)).collect::<Vec<_>>())
        .unwrap_or_default();
    println!();
    let names: Vec<&str> = processes.iter().map(|(name, _)| name.as_str()).collect();
    println!(
        "| minute | messages | p50 | p99 | worst 10 s p99 | cores busy (load generator) | WAL, checkpoints begun | {} |",
        names.iter().map(|n| format!("{n} RSS, fds")).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|---|---|---|---|---|---|{}", "---|".repeat(names.len()));
    for (minute, latencies) in by_minute.iter_mut().enumerate() {
        latencies.sort();
        let cells: Vec<String> = names
            .iter()
            .map(|name| {
                let last = samples.iter().rfind(|(at, n, ..)| n == name && at.as_secs() / 60 == minute as u64);
                last.map_or("-".into(), |(_, _, rss, fds)| format!("{:.1} MiB, {fds}", *rss as f64 / 1024.0))
            })
            .collect();
        let database =
            database_by_minute[minute].map_or("-".into(), |(wal, checkpoints)| format!("{wal:.0} MiB, {checkpoints}"));
        let cpu = cpu_by_minute[minute].map_or("-".into(), |(busy, own)| format!("{busy:.0} % ({own:.0} %)"));
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {cpu} | {database} | {} |",
            minute + 1,
            latencies.len(),
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            worst_ten_seconds[minute],
            cells.join(" | ")
        );
    }
    println!();
    println!("messages sent: {}; not seen by their timing socket: {missing}", sent.len());
    // Jiffies are 1/100 s on Linux: 10,000 µs each.
    let per_message: Vec<String> = cpu_after
        .iter()
        .filter_map(|(name, after)| {
            let before = cpu_before.iter().find(|(n, _)| n == name)?.1;
            let micros = after.saturating_sub(before) as f64 * 10_000.0 / sent.len().max(1) as f64;
            Some(format!("{name} {micros:.0} µs"))
        })
        .collect();
    println!("CPU per message over the soak: {}", per_message.join(", "));
    if let (Some((_, (first, _))), Some((_, (last, _)))) = (database_samples.first(), database_samples.last()) {
        let per_message = (last - first) as f64 / sent.len().max(1) as f64 / 1024.0;
        println!("PostgreSQL WAL per message: {per_message:.1} KiB (all writes over the soak, per message sent)");
    }
    for name in &names {
        let mine: Vec<&(Duration, String, u64, usize)> = samples.iter().filter(|(_, n, ..)| n == name).collect();
        let settled: Vec<(f64, f64)> = mine
            .iter()
            .filter(|(at, ..)| at.as_secs() >= 60)
            .map(|(at, _, rss, _)| (at.as_secs_f64() / 60.0, *rss as f64 / 1024.0))
            .collect();
        let (first, last) = (mine.first(), mine.last());
        println!(
            "{name}: memory slope after the first minute {:+.3} MiB/min ({} samples, {:.1} → {:.1} MiB); file descriptors {} → {}",
            slope(&settled),
            settled.len(),
            first.map_or(0.0, |s| s.2 as f64 / 1024.0),
            last.map_or(0.0, |s| s.2 as f64 / 1024.0),
            first.map_or(0, |s| s.3),
            last.map_or(0, |s| s.3),
        );
    }
    Ok(())
}
