//! Running projections: the live JetStream consumer loop and the rebuild from the event store.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::{StreamExt, TryStreamExt};
use parley_domain::EventEnvelope;
use parley_eventbus::{event_store, StreamSettings};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use crate::{Projection, ProjectionError};

use parley_eventbus::PROGRESS_CHANNEL;

/// Applies one event to a projection inside `conn`'s transaction, exactly once per aggregate
/// sequence: duplicates are skipped, and a gap (an event arriving before its predecessors) is
/// filled from the event store first. Returns whether anything was applied.
pub async fn project_event(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    event: &EventEnvelope,
) -> Result<bool, ProjectionError> {
    let name = projection.name();
    sqlx::query(
        "INSERT INTO projection_versions (projection, aggregate_type, aggregate_id, version) \
         VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .execute(&mut *conn)
    .await?;
    // The row lock serialises concurrent projector replicas working on the same aggregate.
    let version: i64 = sqlx::query_scalar(
        "SELECT version FROM projection_versions \
         WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3 FOR UPDATE",
    )
    .bind(name)
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .fetch_one(&mut *conn)
    .await?;
    if event.sequence <= version {
        return Ok(false);
    }
    if event.sequence > version + 1 {
        let missing = event_store::aggregate_events(
            conn,
            &event.aggregate_type,
            &event.aggregate_id,
            version,
            event.sequence - 1,
        )
        .await?;
        tracing::info!(projection = name, aggregate_id = %event.aggregate_id, filled = missing.len(), "filled a gap from the event store");
        for earlier in &missing {
            projection.apply(conn, earlier).await?;
        }
    }
    projection.apply(conn, event).await?;
    sqlx::query(
        "UPDATE projection_versions SET version = $4 \
         WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(name)
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.sequence)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

async fn record_checkpoint(
    conn: &mut PgConnection,
    projection: &str,
    stream_sequence: u64,
    event_position: i64,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (projection, stream_sequence, event_position) VALUES ($1, $2, $3) \
         ON CONFLICT (projection) DO UPDATE SET \
           stream_sequence = GREATEST(projection_checkpoints.stream_sequence, EXCLUDED.stream_sequence), \
           event_position = GREATEST(projection_checkpoints.event_position, EXCLUDED.event_position), \
           updated_at = now()",
    )
    .bind(projection)
    .bind(stream_sequence as i64)
    .bind(event_position)
    .execute(&mut *conn)
    .await?;
    // Delivered at commit, so a waiter that wakes up sees the new state.
    sqlx::query("SELECT pg_notify($1, $2)").bind(PROGRESS_CHANNEL).bind(projection).execute(&mut *conn).await?;
    Ok(())
}

/// Applies one delivered event and its checkpoint in a single transaction.
async fn handle_delivery(
    pool: &PgPool,
    projection: &dyn Projection,
    event: &EventEnvelope,
    stream_sequence: u64,
) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    project_event(&mut tx, projection, event).await?;
    record_checkpoint(&mut tx, projection.name(), stream_sequence, event.position).await?;
    tx.commit().await?;
    Ok(())
}

/// Feeds one projection from its durable JetStream consumer until `shutdown` turns true.
/// Connection problems are logged and retried; nothing is acknowledged before it is committed.
pub async fn run_projection(
    pool: PgPool,
    jetstream: jetstream::Context,
    stream: StreamSettings,
    consumer_name: String,
    projection: Box<dyn Projection>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let result = tokio::select! {
            r = consume(&pool, &jetstream, &stream, &consumer_name, projection.as_ref()) => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => {
                tracing::warn!(projection = projection.name(), %error, retry_in_ms = backoff.as_millis() as u64, "projection consumer failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn consume(
    pool: &PgPool,
    jetstream: &jetstream::Context,
    settings: &StreamSettings,
    consumer_name: &str,
    projection: &dyn Projection,
) -> Result<(), ProjectionError> {
    let nats = |e: &dyn std::fmt::Display| ProjectionError::Nats(e.to_string());
    let stream = parley_eventbus::stream::ensure_stream(jetstream, settings).await?;
    let config = consumer::pull::Config {
        durable_name: Some(consumer_name.to_owned()),
        filter_subjects: projection.aggregate_types().iter().map(|t| settings.subject_for_type(t)).collect(),
        ack_policy: consumer::AckPolicy::Explicit,
        // A projector that dies mid-delivery holds its message this long before JetStream gives it
        // to a successor; applying an event takes milliseconds, and a redelivery is harmless.
        ack_wait: Duration::from_secs(5),
        ..Default::default()
    };
    let consumer: consumer::PullConsumer =
        stream.get_or_create_consumer(consumer_name, config).await.map_err(|e| nats(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| nats(&e))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| nats(&e))?;
        let stream_sequence = message.info().map_err(|e| nats(&*e))?.stream_sequence;
        let event: EventEnvelope = match serde_json::from_slice(&message.payload) {
            Ok(event) => event,
            Err(error) => {
                // Not an event we published: nothing can ever apply it.
                tracing::error!(projection = projection.name(), stream_sequence, %error, "dropping undecodable message");
                message.ack_with(AckKind::Term).await.map_err(|e| nats(&*e))?;
                continue;
            }
        };
        let span =
            tracing::info_span!("project", projection = projection.name(), event_id = %event.event_id, stream_sequence);
        let _entered = span.enter();
        projection.begin_delivery();
        match handle_delivery(pool, projection, &event, stream_sequence).await {
            Ok(()) => {
                projection.after_commit(&jetstream.client()).await;
                message.ack().await.map_err(|e| nats(&*e))?
            }
            Err(error) => {
                tracing::warn!(%error, "could not apply event; it will be redelivered");
                message.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await.map_err(|e| nats(&*e))?;
            }
        }
    }
    Ok(())
}

/// Rebuilds a projection from the event store alone, in one transaction: empties it, then applies
/// every relevant event in commit order. The live consumer may keep running: it waits on the
/// locks and afterwards skips what the rebuild already applied.
pub async fn rebuild(pool: &PgPool, projection: &dyn Projection) -> Result<u64, ProjectionError> {
    let mut tx = pool.begin().await?;
    projection.reset(&mut tx).await?;
    sqlx::query("DELETE FROM projection_versions WHERE projection = $1")
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    let types: Vec<String> = projection.aggregate_types().iter().map(|t| (*t).to_owned()).collect();
    // Events are streamed on a second connection so that `tx` stays free for the writes.
    let mut reader = pool.acquire().await?;
    let mut events = event_store::all_events(&mut reader, &types);
    let mut applied = 0u64;
    while let Some(event) = events.try_next().await? {
        if project_event(&mut tx, projection, &event).await? {
            applied += 1;
        }
    }
    tx.commit().await?;
    Ok(applied)
}
