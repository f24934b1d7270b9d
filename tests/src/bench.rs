//! Helpers shared by the benchmark binaries in `src/bin`: knobs from the environment, percentiles,
//! the CPU time of the processes under load (read from `/proc`), and the load users' actions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use base64::Engine;
use futures::future::join_all;
use serde_json::json;
use tokio::sync::Mutex;

use crate::{read, unique_email, Socket, PASSWORD};

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `q` quantile of `sorted`, in milliseconds.
pub fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
}

/// CPU ticks (user + system, plus exited children's) of each watched process, by name: those in
/// `BENCH_WATCH` (`name:pid,...`) and, summed, every process called `postgres`.
pub fn cpu_ticks() -> Vec<(String, u64)> {
    fn ticks(stat: &str) -> Option<u64> {
        // Fields after the parenthesised command name; utime is the 14th field overall.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11..15)?.iter().filter_map(|f| f.parse::<u64>().ok()).sum())
    }
    let mut watched: Vec<(String, u64)> = std::env::var("BENCH_WATCH")
        .unwrap_or_default()
        .split(',')
        .filter_map(|entry| entry.split_once(':'))
        .map(|(name, pid)| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            (name.to_owned(), ticks(&stat).unwrap_or(0))
        })
        .collect();
    let postgres: u64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| stat.contains("(postgres)"))
        .filter_map(|stat| ticks(&stat))
        .sum();
    watched.push(("postgres".to_owned(), postgres));
    // This load generator shares the same cores.
    let own = std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| ticks(&stat)).unwrap_or(0);
    watched.push(("load generator".to_owned(), own));
    watched
}

/// CPU seconds used between two `cpu_ticks` readings, by name.
pub fn cpu_seconds(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, f64)> {
    let hz = 100.0; // USER_HZ on Linux
    before
        .iter()
        .zip(after)
        .map(|((name, then), (_, now))| (name.clone(), now.saturating_sub(*then) as f64 / hz))
        .collect()
}

/// CPU used between two `cpu_ticks` readings, in µs per message.
pub fn cpu_rows(before: &[(String, u64)], after: &[(String, u64)], messages: usize) -> Vec<String> {
    cpu_seconds(before, after)
        .into_iter()
        .map(|(name, seconds)| format!("{name} {seconds:.1} s = {:.0} µs/msg", seconds * 1e6 / messages as f64))
        .collect()
}

/// A registered load user.
#[derive(Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

/// Registers `n` users, `concurrency` at a time.
pub async fn register_many(http: &reqwest::Client, base: &str, n: usize, concurrency: usize) -> Result<Vec<User>> {
    let mut users = Vec::with_capacity(n);
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(concurrency) {
        let batch = chunk.iter().map(|i| async move {
            let body = json!({"name": format!("Load {i}"), "email": unique_email("load"), "password": PASSWORD});
            let (status, user) = read(http.post(format!("{base}/auth/register")).json(&body).send().await?).await?;
            ensure!(status == 201, "register: {status} {user}");
            Ok(User {
                id: user["user"]["id"].as_str().unwrap_or_default().to_owned(),
                token: user["access_token"].as_str().unwrap_or_default().to_owned(),
            })
        });
        for user in join_all(batch).await {
            users.push(user?);
        }
    }
    Ok(users)
}

/// A group of `admin` and `members` (added 200 at a time); its id.
pub async fn create_group(http: &reqwest::Client, base: &str, admin: &User, members: &[&User]) -> Result<String> {
    let first: Vec<&str> = members.iter().take(200).map(|u| u.id.as_str()).collect();
    let (status, chat) = read(
        http.post(format!("{base}/chats"))
            .bearer_auth(&admin.token)
            .json(&json!({"type": "group", "name": "Load", "member_ids": first}))
            .send()
            .await?,
    )
    .await?;
    ensure!(status == 201, "create group: {status} {chat}");
    let chat_id = chat["id"].as_str().unwrap_or_default().to_owned();
    for rest in members.iter().skip(200).collect::<Vec<_>>().chunks(200) {
        let ids: Vec<&str> = rest.iter().map(|u| u.id.as_str()).collect();
        let response = http
            .post(format!("{base}/chats/{chat_id}/members"))
            .bearer_auth(&admin.token)
            .json(&json!({"user_ids": ids}))
            .send()
            .await?;
        ensure!(response.status().as_u16() == 200, "add members: {}", response.status());
    }
    Ok(chat_id)
}

/// What the load generator reads of a send's answer and of a frame: parsing only that (not a
/// whole `serde_json::Value`) keeps its own CPU, which shares the cores with the stack, down.
#[derive(serde::Deserialize)]
struct Sent {
    id: String,
}

#[derive(serde::Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    data: Option<FrameData>,
}

#[derive(serde::Deserialize)]
struct FrameData {
    id: Option<String>,
}

/// Sends message number `n` to `chat` as `from`; the message's id.
pub async fn post(http: &reqwest::Client, base: &str, chat: &str, from: &User, n: usize) -> Result<String> {
    let ciphertext = base64::engine::general_purpose::STANDARD
        .encode(format!("payload {n} ........................................"));
    let body =
        format!(r#"{{"client_msg_id":"load-{n}","ciphertext":"{ciphertext}","algorithm":"m.megolm.v1.aes-sha2"}}"#);
    let response = http
        .post(format!("{base}/chats/{chat}/messages"))
        .bearer_auth(&from.token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    ensure!(status == 201, "send: {status} {text}");
    Ok(serde_json::from_str::<Sent>(&text)?.id)
}

/// Reads `message.created` frames and records when each message id reached this listener
/// (keyed `<listener>/<message id>`).
/// (Or, without `arrivals`, only reads them, as a client keeps up with its socket.)
pub fn listen(
    listener: usize,
    mut socket: Socket,
    arrivals: Option<Arc<Mutex<HashMap<String, Instant>>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Until the socket closes: reading also answers the api's pings.
        loop {
            let text = match socket.next_text(Duration::from_secs(30)).await {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                Err(_) => return,
            };
            let Some(arrivals) = &arrivals else { continue };
            let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
            if frame.kind == "message.created" {
                if let Some(id) = frame.data.and_then(|d| d.id) {
                    arrivals.lock().await.entry(format!("{listener}/{id}")).or_insert_with(Instant::now);
                }
            }
        }
    })
}

/// A chat and who sends to it.
pub struct Room<'a> {
    pub chat: String,
    pub sender: &'a User,
}

/// Sends `total` messages as fast as `concurrency` senders can; returns the elapsed time.
pub async fn saturate(
    http: &reqwest::Client,
    base: &str,
    rooms: &[Room<'_>],
    concurrency: usize,
    total: usize,
) -> Result<Duration> {
    let started = Instant::now();
    closed_loop(http, base, rooms, concurrency, 0..total, None).await?;
    Ok(started.elapsed())
}

/// As many messages as `concurrency` closed-loop senders post in `duration` (numbered from
/// `first`); how many were sent.
pub async fn saturate_for(
    http: &reqwest::Client,
    base: &str,
    rooms: &[Room<'_>],
    concurrency: usize,
    first: usize,
    duration: Duration,
) -> Result<usize> {
    closed_loop(http, base, rooms, concurrency, first..usize::MAX, Some(Instant::now() + duration)).await
}

/// `concurrency` senders post the messages numbered `numbers`, each as soon as its previous one
/// was answered, until `until` if given; how many were sent.
async fn closed_loop(
    http: &reqwest::Client,
    base: &str,
    rooms: &[Room<'_>],
    concurrency: usize,
    numbers: std::ops::Range<usize>,
    until: Option<Instant>,
) -> Result<usize> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (next, sent) = (AtomicUsize::new(numbers.start), AtomicUsize::new(0));
    let workers = (0..concurrency).map(|_| async {
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n >= numbers.end || until.is_some_and(|until| Instant::now() >= until) {
                return Ok::<_, anyhow::Error>(());
            }
            let room = &rooms[n % rooms.len()];
            post(http, base, &room.chat, room.sender, n).await?;
            sent.fetch_add(1, Ordering::Relaxed);
        }
    });
    for result in join_all(workers).await {
        result?;
    }
    Ok(sent.load(Ordering::Relaxed))
}

/// Sends `total` messages at `rate` per second whatever the answers' pace (numbered from
/// `first`); each message's id and when its POST started.
pub async fn steady(
    http: &reqwest::Client,
    base: &str,
    rooms: &[Room<'_>],
    rate: f64,
    total: usize,
    first: usize,
) -> Result<Vec<(String, Instant)>> {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        let room = &rooms[n % rooms.len()];
        let (http, base, chat, sender) = (http.clone(), base.to_owned(), room.chat.clone(), room.sender.clone());
        in_flight.push(tokio::spawn(async move {
            let posted = Instant::now();
            post(&http, &base, &chat, &sender, first + n).await.map(|id| (id, posted))
        }));
    }
    let mut sent = Vec::with_capacity(total);
    for task in in_flight {
        sent.push(task.await??);
    }
    Ok(sent)
}
