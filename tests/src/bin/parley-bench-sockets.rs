//! `parley-bench-sockets [BASE_URL]`: many idle authenticated WebSockets on one api while messages
//! flow. `BENCH_SOCKET_USERS` users (1,000) open `BENCH_SOCKETS` (100,000) sockets between them,
//! from `BENCH_SOURCE_ADDRESSES` loopback addresses (127.0.0.1, .2, ...: one address has fewer
//! ephemeral ports than that), and keep them open and answered (pongs) without a word. Then
//! `BENCH_SOCKETS_RATE` messages/s (1,000) go between `BENCH_SOCKETS_ROOMS` pairs (100) for
//! `BENCH_SOCKETS_SECS` (30) while the sockets stay open. It prints the api's resident memory
//! (`BENCH_API_PID`) before and after the sockets opened, per socket, its open descriptors, and the
//! POST → recipient frame latency under that load.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use parley_tests::bench::{create_group, env_usize, listen, percentile, post, register_many, Room};
use parley_tests::Socket;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// (resident KiB, open descriptors) of `pid`.
fn process(pid: &str) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (rss, fds)
}

type IdleSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A socket to the api from `source`, authenticated as the token's user.
async fn open_socket(server: SocketAddr, host: &str, source: IpAddr, token: &str) -> Result<IdleSocket> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(server).await?;
    let request = format!("ws://{host}/ws?token={token}");
    // The client reads only pings: a small buffer keeps the load generator's own memory down.
    let config = WebSocketConfig::default().read_buffer_size(1024).write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(ws)
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let sockets = env_usize("BENCH_SOCKETS", 100_000);
    let holders = env_usize("BENCH_SOCKET_USERS", 1000);
    let sources = env_usize("BENCH_SOURCE_ADDRESSES", 5).clamp(1, 250);
    let rate = env_usize("BENCH_SOCKETS_RATE", 1000);
    let rooms_wanted = env_usize("BENCH_SOCKETS_ROOMS", 100);
    let seconds = env_usize("BENCH_SOCKETS_SECS", 30);
    let api_pid = std::env::var("BENCH_API_PID").unwrap_or_default();
    let host = base.trim_start_matches("http://").to_owned();
    let server: SocketAddr = host.parse().context("BASE_URL must be http://IP:PORT")?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    println!(
        "parley-bench-sockets against {base}: {sockets} idle sockets of {holders} users from {sources} addresses, \
         then {rate} msg/s for {seconds} s in {rooms_wanted} rooms"
    );

    let users = register_many(&http, &base, holders + rooms_wanted * 2, 16).await?;
    let (holding, talking) = users.split_at(holders);
    let arrivals = Arc::new(Mutex::new(HashMap::new()));
    let mut rooms = Vec::new();
    let mut listeners = Vec::new();
    for pair in talking.chunks(2) {
        let chat = create_group(&http, &base, &pair[0], &[&pair[1]]).await?;
        listeners.push(listen(0, Socket::connect(&base, &pair[1].token, None).await?, Some(Arc::clone(&arrivals))));
        rooms.push(Room { chat, sender: &pair[0] });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_before, fds_before) = process(&api_pid);

    let open = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut idle = Vec::with_capacity(sockets);
    for n in 0..sockets {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, (n % sources + 1) as u8));
        let token = holding[n % holding.len()].token.clone();
        let (opened, failures, host) = (Arc::clone(&open), Arc::clone(&failed), host.clone());
        let gate = Arc::clone(&gate);
        idle.push(tokio::spawn(async move {
            // At most 256 handshakes at a time.
            let permit = gate.acquire_owned().await;
            match open_socket(server, &host, source, &token).await {
                Ok(mut ws) => {
                    drop(permit);
                    opened.fetch_add(1, Ordering::Relaxed);
                    // Reading answers the api's pings; nothing else comes.
                    while let Some(Ok(_)) = ws.next().await {}
                    opened.fetch_sub(1, Ordering::Relaxed);
                }
                Err(_) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        if n % 10_000 == 9_999 {
            println!(
                "  {} open, {} failed after {:.0} s",
                open.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            );
        }
    }
    while open.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < sockets
        && started.elapsed() < Duration::from_secs(900)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let opening = started.elapsed();
    // Settle: allocator, presence refresh, a heartbeat or two.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (rss_idle, fds_idle) = process(&api_pid);
    let held = open.load(Ordering::Relaxed);

    let total = rate * seconds;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        let room = &rooms[n % rooms.len()];
        let (http, base, chat, sender) = (http.clone(), base.clone(), room.chat.clone(), room.sender.clone());
        in_flight.push(tokio::spawn(async move {
            let posted = Instant::now();
            post(&http, &base, &chat, &sender, 7_000_000 + n).await.map(|id| (id, posted))
        }));
    }
    let mut sent = Vec::with_capacity(total);
    for task in in_flight {
        sent.push(task.await??);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_loaded, fds_loaded) = process(&api_pid);
    let still_open = open.load(Ordering::Relaxed);
    let arrivals = arrivals.lock().await;
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, posted)| arrivals.get(&format!("0/{id}")).map(|t| t.duration_since(*posted)))
        .collect();
    latencies.sort();

    let per_socket = (rss_idle.saturating_sub(rss_before)) as f64 / held.max(1) as f64;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| sockets open (of {sockets}; {} failed) | {held} after {:.0} s; {still_open} still open after the load |",
        failed.load(Ordering::Relaxed),
        opening.as_secs_f64()
    );
    println!(
        "| api RSS before the sockets → with them idle → after the load | {:.0} → {:.0} → {:.0} MiB |",
        rss_before as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        rss_loaded as f64 / 1024.0
    );
    println!("| api memory per idle socket | **{per_socket:.1} KiB** |");
    println!("| api open descriptors before → idle → loaded | {fds_before} → {fds_idle} → {fds_loaded} |");
    println!(
        "| POST → recipient frame at {rate} msg/s with the sockets open ({}/{total} seen) | p50 {:.1} ms, **p99 {:.1} ms**, max {:.1} ms |",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    for task in idle {
        task.abort();
    }
    for listener in listeners {
        listener.abort();
    }
    Ok(())
}
