//! `parley-bench-sfu [API_BASE_URL]`: synthetic call participants (str0m clients in this
//! process, each with its own UDP socket) against a running api + SFU, then, on the same
//! machine, a minimal raw UDP relay for comparison. Prints:
//! - join latency (signaling WebSocket opened → ICE + DTLS connected → first media received),
//! - packets the SFU sent per second, and the SFU's CPU seconds per forwarded packet (from
//!   `/proc/<BENCH_SFU_PID>/stat` and the SFU's `/metrics`),
//! - per phase: a 10-person video room (everyone publishes audio and video, everyone receives
//!   the other nine), then `BENCH_SFU_ROOMS` rooms of 1 publisher and `BENCH_SFU_SUBSCRIBERS`
//!   subscribers,
//! - the raw relay's packets out per CPU second (one thread: receive, send to each subscriber).
//!
//! The load generator shares the two cores with the SFU; CPU is counted per process.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures::{SinkExt, StreamExt};
use parley_tests::{read, unique_email, PASSWORD};
use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one synthetic participant measured.
#[derive(Default, Debug)]
struct ClientStats {
    connected_after: Option<Duration>,
    first_media_after: Option<Duration>,
    frames_received: u64,
}

struct User {
    token: String,
}

async fn register(http: &reqwest::Client, base: &str, n: usize) -> Result<Vec<(String, User)>> {
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({"name": format!("Caller {i}"), "email": unique_email("sfu"), "password": PASSWORD});
        let (status, user) = read(http.post(format!("{base}/auth/register")).json(&body).send().await?).await?;
        ensure!(status == 201, "register: {status} {user}");
        let id = user["user"]["id"].as_str().unwrap_or_default().to_owned();
        users.push((id, User { token: user["access_token"].as_str().unwrap_or_default().to_owned() }));
    }
    Ok(users)
}

/// A group of `users` with a call everyone accepted: each one's `(sfu url, join token)`.
async fn call(http: &reqwest::Client, base: &str, users: &[(String, User)]) -> Result<Vec<(String, String)>> {
    let ids: Vec<&str> = users.iter().skip(1).map(|(id, _)| id.as_str()).collect();
    let admin = &users[0].1;
    let (status, chat) = read(
        http.post(format!("{base}/chats"))
            .bearer_auth(&admin.token)
            .json(&json!({"type": "group", "name": "Bench", "member_ids": ids}))
            .send()
            .await?,
    )
    .await?;
    ensure!(status == 201, "group: {status} {chat}");
    let (status, started) = read(
        http.post(format!("{base}/calls"))
            .bearer_auth(&admin.token)
            .json(&json!({"chat_id": chat["id"], "kind": "video"}))
            .send()
            .await?,
    )
    .await?;
    ensure!(status == 201, "call: {status} {started}");
    let access = |sfu: &Value| {
        (sfu["url"].as_str().unwrap_or_default().to_owned(), sfu["token"].as_str().unwrap_or_default().to_owned())
    };
    let mut all = vec![access(&started["sfu"])];
    for (_, user) in users.iter().skip(1) {
        let url = format!("{base}/calls/{}/accept", started["id"].as_str().unwrap_or_default());
        let (status, accepted) = read(http.post(url).bearer_auth(&user.token).send().await?).await?;
        ensure!(status == 200, "accept: {status} {accepted}");
        all.push(access(&accepted["sfu"]));
    }
    Ok(all)
}

/// One participant: joins, publishes a synthetic 30 fps video (5 packets a frame) and 50 fps
/// audio when `publish`, receives whatever the SFU sends, until `stop`.
async fn participant(url: String, token: String, publish: bool, stop: Arc<AtomicBool>) -> Result<ClientStats> {
    let mut stats = ClientStats::default();
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let local = socket.local_addr()?;
    let started = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?token={token}")).await?;
    let mut rtc = Rtc::builder().build(started);
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut api = rtc.sdp_api();
    let direction = if publish { Direction::SendRecv } else { Direction::RecvOnly };
    let audio = api.add_media(MediaKind::Audio, direction, None, None, None);
    let video = api.add_media(MediaKind::Video, direction, None, None, None);
    let (offer, pending) = api.apply().context("no offer")?;
    ws.send(Message::Text(json!({"type": "offer", "sdp": offer.to_sdp_string()}).to_string().into())).await?;
    let mut pending: Option<SdpPendingOffer> = Some(pending);
    let mut buffer = vec![0u8; 2048];
    let mut video_tick = tokio::time::interval(Duration::from_millis(33));
    let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
    let (mut video_frames, mut audio_frames) = (0u64, 0u64);
    let frame: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let sound: Vec<u8> = vec![0x55; 120];
    let mut connected = false;
    loop {
        // Drain str0m: datagrams out, events, next timeout.
        let wake = loop {
            match rtc.poll_output()? {
                Output::Timeout(at) => break at,
                Output::Transmit(t) => {
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => {
                    connected = true;
                    stats.connected_after = Some(started.elapsed());
                }
                Output::Event(Event::MediaData(_)) => {
                    stats.frames_received += 1;
                    stats.first_media_after.get_or_insert_with(|| started.elapsed());
                }
                Output::Event(_) => {}
            }
        };
        if stop.load(Ordering::Relaxed) {
            let _ = ws.send(Message::Text(json!({"type": "leave"}).to_string().into())).await;
            return Ok(stats);
        }
        let wake = wake.min(Instant::now() + Duration::from_millis(50));
        tokio::select! {
            received = socket.recv_from(&mut buffer) => {
                let (len, source) = received?;
                if let Ok(receive) = Receive::new(Protocol::Udp, source, local, &buffer[..len]) {
                    rtc.handle_input(Input::Receive(Instant::now(), receive))?;
                }
            }
            message = ws.next() => {
                let Some(message) = message else { bail!("signaling closed") };
                let Message::Text(text) = message? else { continue };
                let frame: Value = serde_json::from_str(&text)?;
                match frame["type"].as_str() {
                    Some("answer") => {
                        let answer = SdpAnswer::from_sdp_string(frame["sdp"].as_str().unwrap_or_default())?;
                        if let Some(pending) = pending.take() {
                            rtc.sdp_api().accept_answer(pending, answer)?;
                        }
                    }
                    Some("offer") => {
                        let offer = SdpOffer::from_sdp_string(frame["sdp"].as_str().unwrap_or_default())?;
                        let answer = rtc.sdp_api().accept_offer(offer)?;
                        ws.send(Message::Text(json!({"type": "answer", "sdp": answer.to_sdp_string()}).to_string().into())).await?;
                    }
                    Some("error") => bail!("SFU refused: {frame}"),
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                rtc.handle_input(Input::Timeout(Instant::now()))?;
            }
            _ = video_tick.tick(), if publish && connected => {
                if let Some(writer) = rtc.writer(video) {
                    let pt = writer.payload_params().find(|p| p.spec().codec == Codec::Vp8).map(|p| p.pt());
                    if let Some(pt) = pt {
                        video_frames += 1;
                        let mut data = frame.clone();
                        // Every 30th frame looks like a VP8 keyframe (bit 0 of the first byte clear).
                        data[0] = if video_frames % 30 == 1 { 0x10 } else { 0x11 };
                        writer.write(pt, Instant::now(), MediaTime::from_90khz(video_frames * 3000), data)?;
                    }
                }
            }
            _ = audio_tick.tick(), if publish && connected => {
                if let Some(writer) = rtc.writer(audio) {
                    let pt = writer.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt());
                    if let Some(pt) = pt {
                        audio_frames += 1;
                        writer.write(pt, Instant::now(), MediaTime::new(audio_frames * 960, str0m::media::Frequency::FORTY_EIGHT_KHZ), sound.clone())?;
                    }
                }
            }
        }
    }
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = fields.get(11..13).into_iter().flatten().filter_map(|f| f.parse::<u64>().ok()).sum();
    ticks as f64 / 100.0
}

async fn sfu_packets_sent(http: &reqwest::Client, metrics_url: &str) -> Result<f64> {
    let text = http.get(metrics_url).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("sfu_udp_packets_sent"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

struct Phase {
    name: String,
    joins: Vec<ClientStats>,
    packets_per_second: f64,
    cpu_per_packet_us: f64,
    sfu_cores: f64,
}

/// Runs `rooms` (each a list of (url, token, publishes)) for `seconds` after everyone joined.
async fn run_phase(
    name: String,
    rooms: Vec<Vec<(String, String, bool)>>,
    seconds: u64,
    http: &reqwest::Client,
    metrics_url: &str,
    sfu_pid: Option<u32>,
) -> Result<Phase> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for room in rooms {
        for (url, token, publish) in room {
            tasks.push(tokio::spawn(participant(url, token, publish, Arc::clone(&stop))));
        }
    }
    // Let joins and renegotiation settle, then measure a steady window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (packets_before, cpu_before, at_before) =
        (sfu_packets_sent(http, metrics_url).await?, sfu_pid.map(cpu_seconds), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (packets_after, cpu_after, elapsed) =
        (sfu_packets_sent(http, metrics_url).await?, sfu_pid.map(cpu_seconds), at_before.elapsed());
    stop.store(true, Ordering::Relaxed);
    let mut joins = Vec::new();
    for task in tasks {
        joins.push(task.await??);
    }
    let packets = packets_after - packets_before;
    let cpu = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => after - before,
        _ => f64::NAN,
    };
    Ok(Phase {
        name,
        joins,
        packets_per_second: packets / elapsed.as_secs_f64(),
        cpu_per_packet_us: cpu / packets * 1e6,
        sfu_cores: cpu / elapsed.as_secs_f64(),
    })
}

/// A minimal relay: one thread receives each datagram and sends it to every subscriber socket,
/// as an SFU forwards one upstream packet to each downstream. Returns packets out per CPU second
/// of the relay thread.
fn raw_relay(subscribers: usize, seconds: u64) -> Result<(f64, f64)> {
    let relay = StdUdpSocket::bind("127.0.0.1:0")?;
    relay.set_read_timeout(Some(Duration::from_millis(100)))?;
    let relay_addr = relay.local_addr()?;
    let sinks: Vec<StdUdpSocket> =
        (0..subscribers).map(|_| StdUdpSocket::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let targets: Vec<SocketAddr> = sinks.iter().map(|s| s.local_addr()).collect::<Result<_, _>>()?;
    for sink in &sinks {
        sink.set_nonblocking(true)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let relay_thread = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            let cpu_start = thread_cpu_seconds();
            while !stop.load(Ordering::Relaxed) {
                if let Ok((len, _)) = relay.recv_from(&mut buffer) {
                    for target in &targets {
                        if relay.send_to(&buffer[..len], target).is_ok() {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            thread_cpu_seconds() - cpu_start
        })
    };
    // Sinks drain their sockets so the kernel does not drop at the receive side.
    let drainer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let mut idle = true;
                for sink in &sinks {
                    while sink.recv_from(&mut buffer).is_ok() {
                        idle = false;
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        })
    };
    let sender = StdUdpSocket::bind("127.0.0.1:0")?;
    let payload = [0x80u8; 1100];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        let _ = sender.send_to(&payload, relay_addr);
        // Paced a little so the relay, not the sender, is what gets measured.
        std::hint::spin_loop();
    }
    stop.store(true, Ordering::Relaxed);
    let relay_cpu = relay_thread.join().map_err(|_| anyhow::anyhow!("relay thread panicked"))?;
    let _ = drainer.join();
    let out = sent.load(Ordering::Relaxed) as f64;
    Ok((out / started.elapsed().as_secs_f64(), out / relay_cpu))
}

fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn percentile(mut values: Vec<f64>, q: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let i = ((values.len() as f64 - 1.0) * q).round() as usize;
    values.get(i).copied().unwrap_or(f64::NAN)
}

fn print_phase(phase: &Phase) {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let connected: Vec<f64> = phase.joins.iter().filter_map(|j| ms(j.connected_after)).collect();
    let media: Vec<f64> = phase.joins.iter().filter_map(|j| ms(j.first_media_after)).collect();
    let received: u64 = phase.joins.iter().map(|j| j.frames_received).sum();
    println!(
        "| {} | {:.0} pkt/s | {:.1} µs | {:.2} cores | p50 {:.0} / p99 {:.0} ms ({} of {}) | p50 {:.0} / p99 {:.0} ms | {received} |",
        phase.name,
        phase.packets_per_second,
        phase.cpu_per_packet_us,
        phase.sfu_cores,
        percentile(connected.clone(), 0.5),
        percentile(connected.clone(), 0.99),
        connected.len(),
        phase.joins.len(),
        percentile(media.clone(), 0.5),
        percentile(media, 0.99),
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let metrics_url = std::env::var("BENCH_SFU_METRICS").unwrap_or_else(|_| "http://127.0.0.1:8081/metrics".into());
    let sfu_pid: Option<u32> = std::env::var("BENCH_SFU_PID").ok().and_then(|p| p.parse().ok());
    let seconds = env_usize("BENCH_SFU_SECONDS", 10) as u64;
    let room_size = env_usize("BENCH_SFU_ROOM", 10);
    let fan_rooms = env_usize("BENCH_SFU_ROOMS", 4);
    let fan_subscribers = env_usize("BENCH_SFU_SUBSCRIBERS", 10);
    let http = reqwest::Client::new();
    println!("parley-bench-sfu against {base}: a {room_size}-person room, then {fan_rooms} rooms of 1 publisher + {fan_subscribers} subscribers; {seconds} s each");

    let users = register(&http, &base, room_size).await?;
    let access = call(&http, &base, &users).await?;
    let room: Vec<(String, String, bool)> = access.into_iter().map(|(u, t)| (u, t, true)).collect();
    let meeting =
        run_phase(format!("{room_size}-person video room"), vec![room], seconds, &http, &metrics_url, sfu_pid).await?;

    let mut rooms = Vec::new();
    for _ in 0..fan_rooms {
        let users = register(&http, &base, fan_subscribers + 1).await?;
        let access = call(&http, &base, &users).await?;
        rooms.push(access.into_iter().enumerate().map(|(i, (u, t))| (u, t, i == 0)).collect());
    }
    let fan = run_phase(
        format!("{fan_rooms} × (1 publisher → {fan_subscribers} subscribers)"),
        rooms,
        seconds,
        &http,
        &metrics_url,
        sfu_pid,
    )
    .await?;

    let (relay_rate, relay_per_cpu) = raw_relay(fan_subscribers, 5)?;

    println!();
    println!("| phase | SFU packets sent | SFU CPU per packet | SFU CPU | join: ICE+DTLS connected | join: first media | frames received |");
    println!("|---|---|---|---|---|---|---|");
    print_phase(&meeting);
    print_phase(&fan);
    println!();
    for phase in [&meeting, &fan] {
        println!("{}: {:.0} packets per SFU CPU-second", phase.name, 1e6 / phase.cpu_per_packet_us);
    }
    println!(
        "raw UDP relay (1 thread, 1 → {fan_subscribers}): {relay_rate:.0} packets/s out, {relay_per_cpu:.0} packets per relay CPU-second"
    );
    Ok(())
}
