//! `parley-bench [BASE_URL]`: measures a running stack (default `http://127.0.0.1:8080`, as
//! started by `scripts/dev up`) and prints latency percentiles and throughput.
//!
//! The profile update is the interesting one: it returns only after the event went through the
//! outbox, the relay, JetStream and the projector (read-your-writes), so its latency is the
//! commit-to-read-model latency.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use futures::future::join_all;
use parley_tests::{read, unique_email, PASSWORD};
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Samples {
    name: &'static str,
    durations: Vec<Duration>,
    wall: Duration,
}

impl Samples {
    fn print(&mut self) {
        self.durations.sort();
        let pick = |q: f64| {
            let i = ((self.durations.len() as f64 - 1.0) * q).round() as usize;
            self.durations.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
        };
        println!(
            "{:<28} n={:<5} p50={:>7.2}ms p95={:>7.2}ms p99={:>7.2}ms max={:>7.2}ms  {:>8.1} req/s",
            self.name,
            self.durations.len(),
            pick(0.5),
            pick(0.95),
            pick(0.99),
            pick(1.0),
            self.durations.len() as f64 / self.wall.as_secs_f64()
        );
    }
}

/// Runs `total` calls of `call`, `concurrency` at a time, timing each.
async fn measure<F, Fut>(name: &'static str, total: usize, concurrency: usize, call: F) -> Result<Samples>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let started = Instant::now();
    let mut durations = Vec::with_capacity(total);
    let indices: Vec<usize> = (0..total).collect();
    for chunk in indices.chunks(concurrency.max(1)) {
        let timed = chunk.iter().map(|&i| {
            let call = &call;
            async move {
                let t = Instant::now();
                call(i).await.map(|()| t.elapsed())
            }
        });
        for result in join_all(timed).await {
            durations.push(result?);
        }
    }
    Ok(Samples { name, durations, wall: started.elapsed() })
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let users = env_usize("BENCH_USERS", 100);
    let reads = env_usize("BENCH_READS", 5000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    println!("parley-bench against {base}: {users} users, {reads} reads, concurrency {concurrency}");

    let emails: Vec<String> = (0..users).map(|_| unique_email("bench")).collect();
    let sessions = tokio::sync::Mutex::new(Vec::new());
    let mut register = measure("register (argon2id)", users, concurrency, |i| {
        let (http, base, email, sessions) = (&http, &base, &emails[i], &sessions);
        async move {
            let body = json!({"name": format!("Bench {i}"), "email": email, "password": PASSWORD});
            let (status, user) = read(http.post(format!("{base}/auth/register")).json(&body).send().await?).await?;
            ensure!(status == 201, "register: {status} {user}");
            sessions.lock().await.push(user);
            Ok(())
        }
    })
    .await?;
    register.print();
    let sessions = sessions.into_inner();

    let mut login = measure("login (argon2id)", users, concurrency, |i| {
        let (http, base, email) = (&http, &base, &emails[i]);
        async move {
            let body = json!({"email": email, "password": PASSWORD});
            let response = http.post(format!("{base}/auth/login")).json(&body).send().await?;
            ensure!(response.status().as_u16() == 200, "login: {}", response.status());
            Ok(())
        }
    })
    .await?;
    login.print();

    let mut update = measure("update profile (to read model)", users, 1, |i| {
        let (http, base, user) = (&http, &base, &sessions[i]);
        async move {
            let id = user["user"]["id"].as_str().unwrap_or_default();
            let token = user["access_token"].as_str().unwrap_or_default();
            let response = http
                .put(format!("{base}/users/{id}"))
                .bearer_auth(token)
                .json(&json!({"status": format!("benchmarking {i}")}))
                .send()
                .await?;
            ensure!(response.status().as_u16() == 200, "update: {}", response.status());
            Ok(())
        }
    })
    .await?;
    update.print();

    let mut profile_reads = measure("get profile", reads, concurrency, |i| {
        let (http, base) = (&http, &base);
        let viewer = &sessions[i % sessions.len()];
        let target = &sessions[(i * 7) % sessions.len()];
        async move {
            let id = target["user"]["id"].as_str().unwrap_or_default();
            let token = viewer["access_token"].as_str().unwrap_or_default();
            let response = http.get(format!("{base}/users/{id}")).bearer_auth(token).send().await?;
            ensure!(response.status().as_u16() == 200, "get: {}", response.status());
            Ok(())
        }
    })
    .await?;
    profile_reads.print();

    let mut searches = measure("search users", reads / 5, concurrency, |i| {
        let (http, base) = (&http, &base);
        let token = sessions[i % sessions.len()]["access_token"].as_str().unwrap_or_default().to_owned();
        async move {
            let response =
                http.get(format!("{base}/users?q=bench%20{}&limit=20", i % 10)).bearer_auth(token).send().await?;
            ensure!(response.status().as_u16() == 200, "search: {}", response.status());
            Ok(())
        }
    })
    .await?;
    searches.print();
    Ok(())
}
