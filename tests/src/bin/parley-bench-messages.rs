//! `parley-bench-messages [BASE_URL]`: drives simulated users over HTTP and WebSocket against a
//! running stack and prints, in one run: accepted (durably committed) messages/s, POST→recipient
//! frame latency, the time for one message to reach every member of a large group, and — beside
//! it — raw single-row INSERT throughput of the same PostgreSQL at the same concurrency
//! (`DATABASE_URL`), so the ratio shows how close the write path is to the database's limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use base64::Engine;
use futures::future::join_all;
use parley_tests::{read, unique_email, Socket, PASSWORD};
use serde_json::json;
use tokio::sync::Mutex;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
}

struct User {
    id: String,
    token: String,
}

async fn register_many(http: &reqwest::Client, base: &str, n: usize, concurrency: usize) -> Result<Vec<User>> {
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

async fn create_group(http: &reqwest::Client, base: &str, admin: &User, members: &[&User]) -> Result<String> {
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

async fn post(http: &reqwest::Client, base: &str, chat: &str, from: &User, n: usize) -> Result<String> {
    let body = json!({
        "client_msg_id": format!("load-{n}"),
        "ciphertext": base64::engine::general_purpose::STANDARD.encode(format!("payload {n} ........................................")),
        "algorithm": "m.megolm.v1.aes-sha2",
    });
    let (status, message) =
        read(http.post(format!("{base}/chats/{chat}/messages")).bearer_auth(&from.token).json(&body).send().await?)
            .await?;
    ensure!(status == 201, "send: {status} {message}");
    Ok(message["id"].as_str().unwrap_or_default().to_owned())
}

/// Reads `message.created` frames and records when each message id reached this listener
/// (keyed `<listener>/<message id>`).
fn listen(
    listener: usize,
    mut socket: Socket,
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(Some(frame)) = socket.next(Duration::from_secs(30)).await {
            if frame["type"] == "message.created" {
                if let Some(id) = frame["data"]["id"].as_str() {
                    arrivals.lock().await.entry(format!("{listener}/{id}")).or_insert_with(Instant::now);
                }
            }
        }
    })
}

async fn raw_insert_rate(database_url: &str, concurrency: usize, total: usize) -> Result<f64> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(concurrency as u32).connect(database_url).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw_insert (id bigserial PRIMARY KEY, chat uuid, body text, at timestamptz DEFAULT now())")
        .execute(&pool)
        .await?;
    let started = Instant::now();
    let per_worker = total / concurrency;
    let workers = (0..concurrency).map(|_| {
        let pool = pool.clone();
        async move {
            for n in 0..per_worker {
                sqlx::query("INSERT INTO bench_raw_insert (chat, body) VALUES ($1, $2)")
                    .bind(uuid::Uuid::new_v4())
                    .bind(format!("payload {n}"))
                    .execute(&pool)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        }
    });
    for result in join_all(workers).await {
        result?;
    }
    let rate = (per_worker * concurrency) as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_raw_insert").execute(&pool).await?;
    Ok(rate)
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let chats = env_usize("BENCH_CHATS", 32);
    let concurrency = env_usize("BENCH_CONCURRENCY", 64);
    let total = env_usize("BENCH_MESSAGES", 6000);
    let fanout = env_usize("BENCH_FANOUT", 1000);
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    println!(
        "parley-bench-messages against {base}: {total} messages over {chats} chats, {concurrency} concurrent senders"
    );

    // Pairs: a sender and a recipient listening on a WebSocket.
    let users = register_many(&http, &base, chats * 2, 16).await?;
    let mut rooms = Vec::new();
    let arrivals = Arc::new(Mutex::new(HashMap::new()));
    let mut listeners = Vec::new();
    for pair in users.chunks(2) {
        let chat = create_group(&http, &base, &pair[0], &[&pair[1]]).await?;
        listeners.push(listen(0, Socket::connect(&base, &pair[1].token, None).await?, Arc::clone(&arrivals)));
        rooms.push((chat, &pair[0]));
    }

    let sent_at = Arc::new(Mutex::new(HashMap::new()));
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers = (0..concurrency).map(|_| {
        let (http, base, rooms, sent_at, next) = (&http, &base, &rooms, Arc::clone(&sent_at), Arc::clone(&next));
        async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                let (chat, from) = &rooms[n % rooms.len()];
                let posted = Instant::now();
                let id = post(http, base, chat, from, n).await?;
                sent_at.lock().await.insert(id, posted);
            }
        }
    });
    for result in join_all(workers).await {
        result?;
    }
    let elapsed = started.elapsed();
    let accepted = total as f64 / elapsed.as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies: Vec<Duration> = {
        let arrivals = arrivals.lock().await;
        sent_at
            .lock()
            .await
            .iter()
            .filter_map(|(id, posted)| arrivals.get(&format!("0/{id}")).map(|t| t.duration_since(*posted)))
            .collect()
    };
    latencies.sort();
    let delivered = latencies.len();
    for listener in listeners {
        listener.abort();
    }

    // Fan-out: one message to every member of a big group, each on its own WebSocket.
    let crowd = register_many(&http, &base, fanout, 16).await.context("registering the crowd")?;
    let members: Vec<&User> = crowd.iter().skip(1).collect();
    let big = create_group(&http, &base, &crowd[0], &members).await?;
    let fan_arrivals = Arc::new(Mutex::new(HashMap::new()));
    let mut fan_listeners = Vec::new();
    for (i, member) in members.iter().enumerate() {
        fan_listeners.push(listen(i, Socket::connect(&base, &member.token, None).await?, Arc::clone(&fan_arrivals)));
    }
    let mut fan_times = Vec::new();
    for round in 0..3 {
        fan_arrivals.lock().await.clear();
        let posted = Instant::now();
        let id = post(&http, &base, &big, &crowd[0], 1_000_000 + round).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let arrivals = fan_arrivals.lock().await;
            let got = arrivals.len();
            if got >= members.len() || Instant::now() > deadline {
                let last = arrivals.values().max().map(|t| t.duration_since(posted));
                fan_times.push((got, last.unwrap_or_default(), id.clone()));
                break;
            }
            drop(arrivals);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for listener in fan_listeners {
        listener.abort();
    }

    let raw = match std::env::var("DATABASE_URL") {
        Ok(url) => Some(raw_insert_rate(&url, concurrency, total).await?),
        Err(_) => None,
    };

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| messages accepted (201, committed) | {total} in {:.2} s = **{accepted:.0} msg/s** |",
        elapsed.as_secs_f64()
    );
    println!(
        "| POST → recipient WebSocket frame ({delivered}/{total} seen) | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    for (round, (got, last, _)) in fan_times.iter().enumerate() {
        println!(
            "| fan-out round {}: one message to {} members | all {got} frames within {:.1} ms |",
            round + 1,
            members.len(),
            last.as_secs_f64() * 1000.0
        );
    }
    if let Some(raw) = raw {
        println!("| raw single-row INSERT, same Postgres, {concurrency} connections | {raw:.0} rows/s |");
        println!("| accepted messages / raw INSERT rate | {:.1} % |", accepted / raw * 100.0);
    }
    Ok(())
}
