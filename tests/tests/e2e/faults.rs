use std::time::Duration;

use anyhow::Result;
use parley_tests::{text, unique_email, OwnNats, Stack, StackOptions};
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
        let id = &*text(&user["user"]["id"])?;
        let response = http
            .put(format!("{base}/users/{id}"))
            .bearer_auth(text(&user["access_token"])?)
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

/// An upgrade from one consumer per projection to the chats+feed group: the group's new
/// consumer starts where the old consumers' acknowledgements ended (it neither replays the
/// stream nor skips what they had not applied), and the read models pick up what arrived while
/// no projector ran.
#[tokio::test]
async fn the_chats_feed_group_takes_over_from_the_old_per_projection_consumers() -> Result<()> {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    use futures::StreamExt;

    use parley_tests::{group, member, send};

    let mut stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    for n in 1..=3 {
        assert_eq!(send(&stack, &chat, &ada, &format!("before-{n}"), "before").await?.0, 201);
    }
    let history = format!("/chats/{chat}/messages");
    stack
        .eventually(Duration::from_secs(20), "the first messages in history", || async {
            Ok(stack.get(&history, Some(&bob.token)).await?.1["items"].as_array().map(Vec::len) == Some(3))
        })
        .await?;

    // As before grouping: the projector is stopped, and the consumers the previous version ran
    // (one per projection) have acknowledged everything so far.
    stack.kill_projector().await?;
    let jetstream = async_nats::jetstream::new(async_nats::connect(parley_tests::nats_url()).await?);
    let stream = jetstream.get_stream(&stack.stream_name).await?;
    stream.delete_consumer(&format!("t{}-chats-feed", stack.id)).await?;
    let subjects = |types: &[&str]| types.iter().map(|t| format!("t{}.events.{t}.*", stack.id)).collect::<Vec<_>>();
    let mut floor = u64::MAX;
    for (name, types) in [("chats", &["Chat"][..]), ("feed", &["Chat", "Inbox", "Call"][..])] {
        let durable = format!("t{}-{name}", stack.id);
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(durable.clone()),
                filter_subjects: subjects(types),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await?;
        let mut batch = consumer.fetch().max_messages(1000).expires(Duration::from_secs(1)).messages().await?;
        while let Some(message) = batch.next().await {
            message.map_err(|e| anyhow::anyhow!("{e}"))?.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        floor = floor.min(stream.consumer_info(&durable).await?.ack_floor.stream_sequence);
    }
    assert!(floor > 0 && floor < u64::MAX, "the old consumers acknowledged nothing");

    // Sent while no projector runs; then the new version starts.
    for n in 1..=2 {
        assert_eq!(send(&stack, &chat, &ada, &format!("after-{n}"), "after").await?.0, 201);
    }
    stack.start_projector()?;
    stack
        .eventually(Duration::from_secs(20), "all five messages in history", || async {
            Ok(stack.get(&history, Some(&bob.token)).await?.1["items"].as_array().map(Vec::len) == Some(5))
        })
        .await?;
    let info = stream.consumer_info(&format!("t{}-chats-feed", stack.id)).await?;
    assert_eq!(info.config.deliver_policy, DeliverPolicy::ByStartSequence { start_sequence: floor + 1 });
    Ok(())
}
