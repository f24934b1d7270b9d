//! `parley-bench-sockets [BASE_URL]`: many idle authenticated WebSockets on the api while messages
//! flow. `BENCH_SOCKET_USERS` users (1,000) open `BENCH_SOCKETS` (100,000) sockets between them and
//! keep them open and answered (pongs) without a word. A process may hold only so many descriptors
//! (20,000 on the benchmark machine, whose limit the scripts cannot raise), so the sockets go to
//! the api replicas in `BENCH_API_URLS` (whose pids are `BENCH_API_PIDS`) from worker processes of
//! this binary, each with `BENCH_SOCKETS_PER_WORKER` (14,000) sockets from a loopback address of
//! its own (127.0.0.1, .2, ...: one address has fewer ephemeral ports than 100,000 sockets need).
//! Then `BENCH_SOCKETS_RATE` messages/s (1,000) go between `BENCH_SOCKETS_ROOMS` pairs (100) for
//! `BENCH_SOCKETS_SECS` (30). It prints the replicas' resident memory before and with the sockets,
//! per socket, their open descriptors, and the POST → recipient frame latency under that load.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use parley_tests::bench::{create_group, env_usize, listen, percentile, register_many, steady, Room};
use parley_tests::Socket;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// (resident KiB, open descriptors) summed over `pids`.
fn processes(pids: &[String]) -> (u64, usize) {
    pids.iter().fold((0, 0), |(rss, fds), pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let own = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
        (rss + own, fds + open)
    })
}

type IdleSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A socket to the api at `server` from `source`, authenticated as the token's user.
async fn open_socket(server: SocketAddr, source: IpAddr, token: &str) -> Result<IdleSocket> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(server).await?;
    let request = format!("ws://{server}/ws?token={token}");
    // The client reads only pings: a small buffer keeps the load generator's own memory down.
    let config = WebSocketConfig::default().read_buffer_size(1024).write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(ws)
}

/// A worker: `count` sockets to `server` from `source` with the tokens in `tokens` (one per line),
/// printing "open N failed M" each second, held until the parent kills it.
async fn worker(server: SocketAddr, source: IpAddr, count: usize, tokens: &str) -> Result<()> {
    let tokens: Vec<String> = std::fs::read_to_string(tokens)?.lines().map(str::to_owned).collect();
    let (open, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let reporter = {
        let (open, failed) = (Arc::clone(&open), Arc::clone(&failed));
        tokio::spawn(async move {
            loop {
                println!("open {} failed {}", open.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let mut held = Vec::with_capacity(count);
    for n in 0..count {
        let token = tokens[n % tokens.len()].clone();
        let (opened, failures, gate) = (Arc::clone(&open), Arc::clone(&failed), Arc::clone(&gate));
        held.push(tokio::spawn(async move {
            // At most 64 handshakes at a time per worker.
            let permit = gate.acquire_owned().await;
            match open_socket(server, source, &token).await {
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
    }
    for socket in held {
        let _ = socket.await;
    }
    reporter.abort();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        let server: SocketAddr = args.get(2).context("server")?.parse()?;
        let source: IpAddr = args.get(3).context("source")?.parse()?;
        let count: usize = args.get(4).context("count")?.parse()?;
        return worker(server, source, count, args.get(5).context("tokens file")?).await;
    }
    let base = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let sockets = env_usize("BENCH_SOCKETS", 100_000);
    let holders = env_usize("BENCH_SOCKET_USERS", 1000);
    let per_worker = env_usize("BENCH_SOCKETS_PER_WORKER", 14_000).max(1);
    let rate = env_usize("BENCH_SOCKETS_RATE", 1000);
    let rooms_wanted = env_usize("BENCH_SOCKETS_ROOMS", 100);
    let seconds = env_usize("BENCH_SOCKETS_SECS", 30);
    let api_urls: Vec<String> = std::env::var("BENCH_API_URLS")
        .unwrap_or_else(|_| base.clone())
        .split(',')
        .map(|u| u.trim_start_matches("http://").to_owned())
        .collect();
    let api_pids: Vec<String> = std::env::var("BENCH_API_PIDS")
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let workers = sockets.div_ceil(per_worker);
    println!(
        "parley-bench-sockets: {sockets} idle sockets of {holders} users over {} api replicas from {workers} worker \
         processes, then {rate} msg/s for {seconds} s in {rooms_wanted} rooms",
        api_urls.len()
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
    let (rss_before, fds_before) = processes(&api_pids);

    let tokens = std::env::temp_dir().join(format!("parley-bench-sockets-{}.tokens", std::process::id()));
    std::fs::write(&tokens, holding.iter().map(|u| u.token.as_str()).collect::<Vec<_>>().join("\n"))?;
    let started = Instant::now();
    let counts = Arc::new(std::sync::Mutex::new(vec![(0usize, 0usize); workers]));
    let mut children = Vec::new();
    for index in 0..workers {
        let count = per_worker.min(sockets - index * per_worker);
        let server = &api_urls[index % api_urls.len()];
        let source = Ipv4Addr::new(127, 0, 0, (index % 250 + 1) as u8);
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["--worker", server, &source.to_string(), &count.to_string()])
            .arg(&tokens)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let numbers: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
                if let ([open, failed], Ok(mut counts)) = (numbers.as_slice(), counts.lock()) {
                    counts[index] = (*open, *failed);
                }
            }
        });
        children.push(child);
    }
    let totals = || counts.lock().map(|c| c.iter().fold((0, 0), |(o, f), (a, b)| (o + a, f + b))).unwrap_or((0, 0));
    let mut last_print = Instant::now();
    loop {
        let (open, failed) = totals();
        if open + failed >= sockets || started.elapsed() > Duration::from_secs(900) {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            println!("  {open} open, {failed} failed after {:.0} s", started.elapsed().as_secs_f64());
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let opening = started.elapsed();
    // Settle: allocator, a presence refresh, a heartbeat or two.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (rss_idle, fds_idle) = processes(&api_pids);
    let (held, failed) = totals();

    let total = rate * seconds;
    let sent = steady(&http, &base, &rooms, rate as f64, total, 7_000_000).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_loaded, fds_loaded) = processes(&api_pids);
    let (still_open, _) = totals();
    let arrivals = arrivals.lock().await;
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, posted)| arrivals.get(&format!("0/{id}")).map(|t| t.duration_since(*posted)))
        .collect();
    latencies.sort();
    let _ = std::fs::remove_file(&tokens);

    let per_socket = rss_idle.saturating_sub(rss_before) as f64 / held.max(1) as f64;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| sockets open (of {sockets}; {failed} failed) | **{held}** after {:.0} s; {still_open} still open after the load |",
        opening.as_secs_f64()
    );
    println!(
        "| api RSS ({} replicas) before the sockets → with them idle → after the load | {:.0} → {:.0} → {:.0} MiB |",
        api_pids.len(),
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
    drop(children);
    for listener in listeners {
        listener.abort();
    }
    Ok(())
}
