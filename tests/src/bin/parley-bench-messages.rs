//! `parley-bench-messages [BASE_URL]`: drives simulated users over HTTP and WebSocket against a
//! running stack and prints, in one run:
//! - accepted (durably committed) messages/s with `BENCH_CONCURRENCY` senders in a closed loop,
//! - POST → recipient frame latency at a steady `BENCH_RATE` messages/s (open loop),
//! - projection lag: the age of the oldest committed event a projection has not applied yet,
//!   sampled every 10 ms during the steady phase,
//! - the time for one message to reach every member of a `BENCH_FANOUT`-member group,
//! - and, beside them, raw single-row INSERT throughput of the same PostgreSQL at the same
//!   concurrency (`DATABASE_URL`), so the ratio shows how close the write path is to the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures::future::join_all;
use parley_tests::bench::{
    cpu_rows, cpu_ticks, create_group, env_usize, listen, percentile, post, register_many, saturate, steady, Room, User,
};
use parley_tests::Socket;
use tokio::sync::Mutex;

// The load generator shares the two cores with the stack it measures, so its own CPU per message
// is overhead in every number it prints; the same allocator as the services keeps it lower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// Settles PostgreSQL before a measured phase, so that the phases compared start alike: vacuums
/// what the previous phase wrote, else autovacuum picks it up at some moment of the next phase.
/// (No `CHECKPOINT`: right after one, the first change to every page writes the whole page to
/// the WAL, which weighs on a path touching many tables and indexes far more than on appends to
/// one table; a phase starts wherever the server's own checkpoint cycle is, as in service.)
async fn settle(database_url: &str) -> Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(database_url).await?;
    sqlx::query("VACUUM (ANALYZE)").execute(&pool).await?;
    pool.close().await;
    Ok(())
}

/// Samples every projection's lag until `stop` is set: for each, the age of the oldest event (of
/// the types it reads) after its checkpoint.
async fn sample_lag(database_url: String, stop: Arc<std::sync::atomic::AtomicBool>) -> Result<Vec<Duration>> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&database_url).await?;
    let mut samples = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let lags: Vec<f64> = sqlx::query_scalar(
            "SELECT COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - ( \
               SELECT e.recorded_at FROM events e WHERE e.position > c.event_position \
                 AND e.aggregate_type = ANY(CASE c.projection WHEN 'users' THEN ARRAY['User'] \
                   WHEN 'chats' THEN ARRAY['Chat'] ELSE ARRAY['Chat', 'Inbox'] END) \
               ORDER BY e.position LIMIT 1))::float8, 0) \
             FROM projection_checkpoints c WHERE c.projection IN ('chats', 'feed')",
        )
        .fetch_all(&pool)
        .await?;
        samples.extend(lags.into_iter().map(|s| Duration::from_secs_f64(s.max(0.0))));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    samples.sort();
    Ok(samples)
}

/// The event store's last position: the burst's events come after it.
async fn last_event_position(database_url: &str) -> Result<i64> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(database_url).await?;
    Ok(sqlx::query_scalar("SELECT COALESCE(max(position), 0) FROM events").fetch_one(&pool).await?)
}

/// Waits until the `chats` and `feed` projections have applied every event committed after
/// `since`; returns how long that took. Only the chats those events belong to are checked: over
/// every chat's events, on a database of a million messages, one check took half a second.
async fn wait_for_read_side(database_url: &str, since: i64) -> Result<Duration> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(database_url).await?;
    let started = Instant::now();
    loop {
        let behind: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT e.aggregate_type, e.aggregate_id, max(e.sequence) AS v FROM events e \
               WHERE e.aggregate_type = 'Chat' AND e.position > $1 GROUP BY 1, 2) w \
             CROSS JOIN (VALUES ('chats'), ('feed')) AS p(name) \
             LEFT JOIN projection_versions pv ON pv.projection = p.name AND pv.aggregate_type = w.aggregate_type \
               AND pv.aggregate_id = w.aggregate_id \
             WHERE COALESCE(pv.version, 0) < w.v",
        )
        .bind(since)
        .fetch_one(&pool)
        .await?;
        if behind == 0 {
            return Ok(started.elapsed());
        }
        ensure!(started.elapsed() < Duration::from_secs(300), "the read side did not catch up in 5 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn latency_row(label: &str, sorted: &[Duration]) -> String {
    format!(
        "| {label} | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        percentile(sorted, 0.5),
        percentile(sorted, 0.99),
        percentile(sorted, 1.0)
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let chats = env_usize("BENCH_CHATS", 32);
    let concurrency = env_usize("BENCH_CONCURRENCY", 64);
    let total = env_usize("BENCH_MESSAGES", 20_000);
    let rate = env_usize("BENCH_RATE", 500);
    let steady_total = env_usize("BENCH_STEADY_MESSAGES", rate * 10);
    let fanout = env_usize("BENCH_FANOUT", 1000);
    let fanout_rounds = env_usize("BENCH_FANOUT_ROUNDS", 5);
    let database_url = std::env::var("DATABASE_URL").ok();
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    println!(
        "parley-bench-messages against {base}: {chats} chats; {total} messages from {concurrency} concurrent senders, \
         then {steady_total} at {rate}/s; fan-out to {fanout} members x {fanout_rounds}"
    );

    // Pairs: a sender and a recipient listening on a WebSocket.
    let users = register_many(&http, &base, chats * 2, 16).await?;
    let mut rooms = Vec::new();
    let arrivals = Arc::new(Mutex::new(HashMap::new()));
    let mut listeners = Vec::new();
    for pair in users.chunks(2) {
        let chat = create_group(&http, &base, &pair[0], &[&pair[1]]).await?;
        listeners.push(listen(0, Socket::connect(&base, &pair[1].token, None).await?, Some(Arc::clone(&arrivals))));
        rooms.push(Room { chat, sender: &pair[0] });
    }

    // The raw INSERT rate is measured right before and right after the burst, in the same state
    // (the same idle sockets, PostgreSQL settled before each of the three), and the burst is
    // compared with their mean: measured once, after the other phases, it had moved by up to
    // 40 % from run to run, which decided the ratio more than the write path did.
    let raw_before = match &database_url {
        Some(url) => {
            settle(url).await?;
            let rate = raw_insert_rate(url, concurrency, total).await?;
            settle(url).await?;
            Some(rate)
        }
        None => None,
    };
    let since = match &database_url {
        Some(url) => last_event_position(url).await?,
        None => 0,
    };
    let cpu_before = cpu_ticks();
    let elapsed = saturate(&http, &base, &rooms, concurrency, total).await?;
    let cpu_burst = cpu_rows(&cpu_before, &cpu_ticks(), total);
    let accepted = total as f64 / elapsed.as_secs_f64();
    // Let the read side drain the burst before measuring latency at a steady rate.
    let drained = match &database_url {
        Some(url) => Some(wait_for_read_side(url, since).await?),
        None => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            None
        }
    };
    let raw = match (&database_url, raw_before) {
        (Some(url), Some(before)) => {
            settle(url).await?;
            Some((before, raw_insert_rate(url, concurrency, total).await?))
        }
        _ => None,
    };

    let stop_sampling = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = database_url.clone().map(|url| tokio::spawn(sample_lag(url, Arc::clone(&stop_sampling))));
    let sent_at: HashMap<String, Instant> =
        steady(&http, &base, &rooms, rate as f64, steady_total, 2_000_000).await?.into_iter().collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_sampling.store(true, std::sync::atomic::Ordering::Relaxed);
    let lag = match sampler {
        Some(task) => Some(task.await??),
        None => None,
    };
    let mut latencies: Vec<Duration> = {
        let arrivals = arrivals.lock().await;
        sent_at
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
        fan_listeners.push(listen(
            i,
            Socket::connect(&base, &member.token, None).await?,
            Some(Arc::clone(&fan_arrivals)),
        ));
    }
    let mut fan_rounds = Vec::new();
    for round in 0..fanout_rounds {
        tokio::time::sleep(Duration::from_millis(500)).await;
        fan_arrivals.lock().await.clear();
        let posted = Instant::now();
        post(&http, &base, &big, &crowd[0], 1_000_000 + round).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let arrivals = fan_arrivals.lock().await;
            if arrivals.len() >= members.len() || Instant::now() > deadline {
                let mut times: Vec<Duration> = arrivals.values().map(|t| t.duration_since(posted)).collect();
                times.sort();
                fan_rounds.push(times);
                break;
            }
            drop(arrivals);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for listener in fan_listeners {
        listener.abort();
    }

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| messages accepted (201, committed), {concurrency} concurrent senders | {total} in {:.2} s = **{accepted:.0} msg/s** |",
        elapsed.as_secs_f64()
    );
    println!("| CPU during the burst (2 cores in all) | {} |", cpu_burst.join(", "));
    if let Some(drained) = drained {
        println!(
            "| read side (chats + feed projections) done with the burst | {:.2} s after the last 201 |",
            drained.as_secs_f64()
        );
    }
    if let Some((before, after)) = raw {
        println!(
            "| raw single-row INSERT, same Postgres, {concurrency} connections, right before / after the burst | {before:.0} / {after:.0} rows/s |"
        );
        println!(
            "| accepted messages / raw INSERT rate (their mean) | **{:.1} %** (to each: {:.1} / {:.1} %) |",
            accepted / ((before + after) / 2.0) * 100.0,
            accepted / before * 100.0,
            accepted / after * 100.0
        );
    }
    println!(
        "{}",
        latency_row(&format!("POST → recipient frame at {rate} msg/s ({delivered}/{steady_total} seen)"), &latencies)
    );
    if let Some(lag) = lag {
        println!("{}", latency_row(&format!("projection lag at {rate} msg/s ({} samples)", lag.len()), &lag));
    }
    for (round, times) in fan_rounds.iter().enumerate() {
        println!(
            "{}",
            latency_row(
                &format!("fan-out round {}: one message, {}/{} members reached", round + 1, times.len(), members.len()),
                times
            )
        );
    }
    // Per round, the time by which 99% of the members had it; p99 of that over the rounds.
    let mut round_p99: Vec<Duration> =
        fan_rounds.iter().map(|t| Duration::from_secs_f64(percentile(t, 0.99) / 1000.0)).collect();
    round_p99.sort();
    println!(
        "{}",
        latency_row(&format!("fan-out, 99% of members reached, over {} rounds", round_p99.len()), &round_p99)
    );
    Ok(())
}
