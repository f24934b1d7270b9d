//! The outbox relay: publishes committed events to JetStream in commit order.
//!
//! Every event insert also inserts an `outbox` row (trigger, same transaction). The relay, in one
//! transaction, deletes the oldest rows, publishes each event with `Nats-Msg-Id` = event id, waits
//! for JetStream's acknowledgements and only then commits the deletion. A crash before that commit
//! re-publishes: JetStream's duplicate window and the projectors' per-aggregate versions make that
//! harmless. NATS being down simply rolls the deletion back and leaves the rows until it is back.
//!
//! Several `api` replicas may run a relay; a transaction-scoped advisory lock lets exactly one
//! publish at a time, which keeps each aggregate's events in order on the stream.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use parley_domain::EventEnvelope;
use sqlx::postgres::PgListener;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use tokio::sync::{watch, Notify};

use crate::event_store::take_outbox;
use crate::stream::ensure_stream;
use crate::{BusError, StreamSettings};

const BATCH_SIZE: i64 = 256;
/// An arbitrary constant naming the relay's advisory lock.
const RELAY_LOCK_KEY: i64 = 0x0070_6172_6c65_7901;
/// Fallback poll in case a notification was missed (e.g. the listener reconnected).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// How this process's own commits reach its relay.
#[derive(Clone)]
pub struct LocalCommits {
    /// This process's identity: the payload its commits send with their `parley_outbox`
    /// notification, so that its relay, which hears of them through `committed`, ignores them.
    pub origin: String,
    /// Signalled after each of this process's commits.
    pub committed: Arc<Notify>,
}

impl LocalCommits {
    pub fn new() -> Self {
        Self { origin: uuid::Uuid::new_v4().to_string(), committed: Arc::new(Notify::new()) }
    }
}

impl Default for LocalCommits {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Relay {
    /// The relay's own connection (see `new`).
    pool: PgPool,
    /// The process's pool, which the `LISTEN` connection comes from.
    shared: PgPool,
    jetstream: jetstream::Context,
    settings: StreamSettings,
    local: LocalCommits,
}

impl Relay {
    /// `local` wakes the relay on this process's own commits without the round trip through
    /// `NOTIFY`, which brings other replicas' commits.
    pub fn new(pool: &PgPool, jetstream: jetstream::Context, settings: StreamSettings, local: LocalCommits) -> Self {
        // A connection of its own, set up for a queue table: the outbox holds a handful of live
        // rows among many deleted ones not yet vacuumed, where a sequential scan (the planner's
        // choice for a "small" table) reads them all; its index finds the oldest rows directly.
        // Its commits only delete rows JetStream already has, so they need not wait for the WAL
        // flush either: a lost deletion publishes a de-duplicated event again. Its one statement
        // is planned once: PostgreSQL had re-planned it on every call (0.2 ms each), since each
        // custom plan looked cheaper than the generic one.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "SET enable_seqscan = off; SET synchronous_commit = off; \
                         SET plan_cache_mode = force_generic_plan",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_lazy_with((*pool.connect_options()).clone());
        Self { pool: own, shared: pool.clone(), jetstream, settings, local }
    }

    /// Runs until `shutdown` turns true. Errors are logged and retried with backoff.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut listener = self.listen().await;
        let mut backoff = Duration::from_millis(100);
        let mut stream_ready = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let result = match stream_ready {
                true => self.publish_batch().await,
                false => ensure_stream(&self.jetstream, &self.settings).await.map(|_| {
                    stream_ready = true;
                    0
                }),
            };
            match result {
                Ok(published) if published as i64 == BATCH_SIZE => continue,
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    tokio::select! {
                        _ = wait_for_foreign_commit(&mut listener, &self.local.origin) => {}
                        _ = self.local.committed.notified() => {}
                        _ = shutdown.changed() => {}
                    }
                    // Every commit notifies; one pass publishes what all of those queued so far
                    // committed.
                    if let Some(l) = listener.as_mut() {
                        while l.next_buffered().is_some() {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "relay could not publish");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if listener.is_none() {
                        listener = self.listen().await;
                    }
                }
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.shared).await.ok()?;
        listener.listen("parley_outbox").await.ok()?;
        Some(listener)
    }

    /// Publishes up to one batch; returns how many events were published (0 if another relay holds
    /// the lock).
    pub async fn publish_batch(&self) -> Result<usize, BusError> {
        let mut tx = self.pool.begin().await?;
        // One statement: become the leader (or return nothing), take the oldest outbox rows and
        // their events. The rows are deleted now but only for good at commit, after JetStream
        // acknowledged them; if publishing fails the transaction rolls back and they stay.
        let events = take_outbox(&mut tx, RELAY_LOCK_KEY, BATCH_SIZE).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let mut acks = Vec::with_capacity(events.len());
        for event in &events {
            acks.push(self.publish(event).await?);
        }
        for ack in acks {
            ack.await.map_err(BusError::nats)?;
        }
        tx.commit().await?;
        tracing::debug!(count = events.len(), last_position = events.last().map(|e| e.position), "relayed events");
        Ok(events.len())
    }

    async fn publish(&self, event: &EventEnvelope) -> Result<jetstream::context::PublishAckFuture, BusError> {
        let subject = EventEnvelope::subject(&self.settings.subject_prefix, &event.aggregate_type, &event.aggregate_id);
        let payload = serde_json::to_vec(event)?;
        let message = PublishMessage::build().payload(payload.into()).message_id(&event.event_id);
        self.jetstream.send_publish(subject, message).await.map_err(BusError::nats)
    }
}

/// Returns when another process commits, when the listener fails, or after `IDLE_POLL`. This
/// process's own commits (`origin`) are skipped: `LocalCommits::committed` brought them already,
/// and a pass for each would mostly find the outbox empty.
async fn wait_for_foreign_commit(listener: &mut Option<PgListener>, origin: &str) {
    let Some(l) = listener else {
        tokio::time::sleep(IDLE_POLL).await;
        return;
    };
    let deadline = tokio::time::Instant::now() + IDLE_POLL;
    loop {
        match tokio::time::timeout_at(deadline, l.recv()).await {
            Ok(Ok(notification)) if notification.payload() == origin => continue,
            Ok(Ok(_)) | Err(_) => return,
            Ok(Err(error)) => {
                tracing::warn!(%error, "outbox listener failed; falling back to polling");
                *listener = None;
                return;
            }
        }
    }
}
