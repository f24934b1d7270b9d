use std::time::Duration;

use anyhow::Result;
use parley_tests::{unique_email, OwnNats, Stack, StackOptions};
use serde_json::json;

async fn count(stack: &Stack, sql: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(&stack.pool).await?)
}

/// Every user's read-model version equals the number of events it has in the event store.
async fn projection_matches_event_counts(stack: &Stack) -> Result<bool> {
    let mismatched = count(
        stack,
        "SELECT count(*) FROM (SELECT aggregate_id, count(*) AS n FROM events WHERE aggregate_type = 'User' GROUP BY aggregate_id) e \
         LEFT JOIN projection_versions v ON v.projection = 'users' AND v.aggregate_type = 'User' AND v.aggregate_id = e.aggregate_id \
         WHERE v.version IS DISTINCT FROM e.n",
    )
    .await?;
    Ok(mismatched == 0)
}

#[tokio::test]
async fn a_projector_killed_mid_stream_converges_to_the_rebuild() -> Result<()> {
    let mut stack = Stack::start_with(StackOptions::default().env("PARLEY_READ_YOUR_WRITES_TIMEOUT_MS", "50")).await?;
    let users = 40;
    let writing = tokio::spawn({
        let base = stack.base_url.clone();
        async move { register_and_update(base, "killed", users).await }
    });
    // Kill it hard, again and again, for as long as events stream in.
    let mut kills = 0;
    while !writing.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stack.kill_projector().await?;
        kills += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        stack.start_projector()?;
    }
    writing.await??;
    assert!(kills >= 3, "only {kills} kills happened while writing");

    stack
        .eventually(Duration::from_secs(60), "projection to converge", || async {
            Ok(count(&stack, "SELECT count(*) FROM users").await? == users as i64
                && projection_matches_event_counts(&stack).await?)
        })
        .await?;
    let live = stack.users_read_model().await?;
    stack.kill_projector().await?;
    stack.rebuild("users").await?;
    let rebuilt = stack.users_read_model().await?;
    assert_eq!(live.len(), users);
    assert_eq!(live, rebuilt);
    assert!(live.iter().all(|u| u["status"].as_str().is_some_and(|s| s.starts_with("status "))));
    Ok(())
}

/// Registers `n` users, each then changing their status once (two events per user), through the
/// public API only, so that it can run in a task beside a test that holds `&mut Stack`.
async fn register_and_update(base: String, tag: &str, n: usize) -> Result<()> {
    let http = reqwest::Client::new();
    for i in 0..n {
        let response = http
            .post(format!("{base}/auth/register"))
            .json(
                &json!({"name": format!("{tag} {i}"), "email": unique_email(tag), "password": parley_tests::PASSWORD}),
            )
            .send()
            .await?;
        let (status, user) = parley_tests::read(response).await?;
        anyhow::ensure!(status == 201, "register: {status} {user}");
        let id = user["user"]["id"].as_str().unwrap_or_default();
        let response = http
            .put(format!("{base}/users/{id}"))
            .bearer_auth(user["access_token"].as_str().unwrap_or_default())
            .json(&json!({"status": format!("status {i}")}))
            .send()
            .await?;
        anyhow::ensure!(response.status().as_u16() == 200, "update: {}", response.status());
    }
    Ok(())
}

#[tokio::test]
async fn events_committed_while_nats_is_down_reach_the_projection_exactly_once() -> Result<()> {
    let mut nats = OwnNats::start().await?;
    let stack = Stack::start_with(StackOptions {
        nats_url: Some(nats.url.clone()),
        ..StackOptions::default().env("PARLEY_READ_YOUR_WRITES_TIMEOUT_MS", "50")
    })
    .await?;
    register_and_update(stack.base_url.clone(), "before", 5).await?;
    stack
        .eventually(Duration::from_secs(30), "first users projected", || async {
            Ok(count(&stack, "SELECT count(*) FROM users").await? == 5)
        })
        .await?;

    nats.stop().await?;
    // The write side keeps working without the bus: events pile up in the outbox.
    register_and_update(stack.base_url.clone(), "during", 10).await?;
    assert!(count(&stack, "SELECT count(*) FROM outbox").await? > 0);
    assert_eq!(count(&stack, "SELECT count(*) FROM users").await?, 5);

    nats.resume().await?;
    stack
        .eventually(Duration::from_secs(90), "outbox drained and projection caught up", || async {
            Ok(count(&stack, "SELECT count(*) FROM outbox").await? == 0
                && count(&stack, "SELECT count(*) FROM users").await? == 15
                && projection_matches_event_counts(&stack).await?)
        })
        .await?;

    // Exactly once on the stream: one message per committed event.
    let client = async_nats::connect(&nats.url).await?;
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream.get_stream(&stack.stream_name).await?;
    let messages = stream.info().await?.state.messages;
    assert_eq!(messages as i64, count(&stack, "SELECT count(*) FROM events").await?);

    let live = stack.users_read_model().await?;
    stack.rebuild("users").await?;
    assert_eq!(live, stack.users_read_model().await?);
    Ok(())
}
