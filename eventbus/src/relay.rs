//! The outbox relay: publishes committed events to JetStream in commit order.
//!
//! Every event insert also inserts an `outbox` row (trigger, same transaction). The relay, in one
//! transaction, deletes the oldest rows, publishes each event with `Nats-Msg-Id` = event id, waits
//! for JetStream's acknowledgements and only then commits the deletion. A crash before that commit
//! re-publishes: JetStream's duplicate window and the projectors' per-aggregate versions make that
//! harmless. NATS being down simply rolls the deletion back and leaves the rows until it is back.
//!
//! Several `api` replicas may run a relay; a transaction-scoped advisory lock lets exactly one
//! publish at a time, which keeps each aggregate's events in order on the stream. Each replica's
//! committers wake their own relay after every commit, and a relay that finds another one
//! publishing waits for it and then takes what is left, so no commit needs a cross-process wake-up
//! (`NOTIFY`) to be published promptly: the committing process's own relay always makes a pass
//! after the commit. A poll every `IDLE_POLL` picks up what a process that died right after
//! committing left behind.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use parley_domain::EventEnvelope;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::{watch, Notify};
use tracing::Instrument;

use crate::event_store::take_outbox;
use crate::held::HeldConnection;
use crate::stream::ensure_stream;
use crate::{BusError, StreamSettings};

const BATCH_SIZE: i64 = 256;
/// An arbitrary constant naming the relay's advisory lock.
const RELAY_LOCK_KEY: i64 = 0x0070_6172_6c65_7901;
/// How often a relay looks for events without being woken (left by a process that died after
/// committing, or by a writer from before relays woke themselves).
const IDLE_POLL: Duration = Duration::from_millis(500);

pub struct Relay {
    /// The relay's own connection (see `new`).
    pool: PgPool,
    jetstream: jetstream::Context,
    settings: StreamSettings,
    local_commits: Arc<Notify>,
}

impl Relay {
    /// `local_commits` is signalled after each of this process's commits.
    pub fn new(
        pool: &PgPool,
        jetstream: jetstream::Context,
        settings: StreamSettings,
        local_commits: Arc<Notify>,
    ) -> Self {
        // A connection of its own, set up for a queue table: the outbox holds a handful of live
        // rows among many deleted ones not yet vacuumed, where a sequential scan (the planner's
        // choice for a "small" table) reads them all; its index finds the oldest rows directly.
        // Its commits only delete rows JetStream already has, so they need not wait for the WAL
        // flush either: a lost deletion publishes a de-duplicated event again. Its statements are
        // planned once: PostgreSQL had re-planned the outbox one on every call (0.2 ms each), since
        // each custom plan looked cheaper than the generic one. Waiting for another relay's turn is
        // bounded, so that a stuck one shows up as an error here rather than a silent stall.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "SET enable_seqscan = off; SET synchronous_commit = off; \
                         SET plan_cache_mode = force_generic_plan; SET lock_timeout = '10s'",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_lazy_with((*pool.connect_options()).clone());
        Self { pool: own, jetstream, settings, local_commits }
    }

    /// Runs until `shutdown` turns true. Errors are logged and retried with backoff.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        let mut stream_ready = false;
        let mut connection = HeldConnection::new(self.pool.clone());
        loop {
            if *shutdown.borrow() {
                return;
            }
            let result = match stream_ready {
                true => self.publish_batch(&mut connection).await,
                false => ensure_stream(&self.jetstream, &self.settings).await.map(|_| {
                    stream_ready = true;
                    0
                }),
            };
            match result {
                Ok(published) if published as i64 == BATCH_SIZE => continue,
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    // Commits signalled meanwhile leave one wake-up: one pass publishes what all of
                    // them committed.
                    tokio::select! {
                        _ = self.local_commits.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "relay could not publish");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Publishes up to one batch, after any other relay's turn; returns how many events were
    /// published. After a failure the connection goes back to the pool (see `HeldConnection`).
    async fn publish_batch(&self, connection: &mut HeldConnection) -> Result<usize, BusError> {
        let result = match connection.get().await {
            Ok(conn) => self.publish_batch_on(conn).await,
            Err(error) => Err(error.into()),
        };
        if result.is_err() {
            connection.release();
        }
        result
    }

    async fn publish_batch_on(&self, conn: &mut PgConnection) -> Result<usize, BusError> {
        let mut tx = conn.begin().await?;
        // The lock first, in a statement of its own, so that the next one's snapshot includes
        // everything the previous holder left.
        sqlx::query!("SELECT pg_advisory_xact_lock($1)", RELAY_LOCK_KEY).execute(&mut *tx).await?;
        // The oldest outbox rows and their events. The rows are deleted now but only for good at
        // commit, after JetStream acknowledged them; if publishing fails the transaction rolls
        // back and they stay.
        let events = take_outbox(&mut tx, BATCH_SIZE).await?;
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
        let mut message = PublishMessage::build().payload(payload.into()).message_id(&event.event_id);
        let Some(traceparent) = committed_trace(event) else {
            return self.jetstream.send_publish(subject, message).await.map_err(BusError::nats);
        };
        // The publish continues the committing command's (sampled) trace, and the message carries
        // it on.
        let traced = async {
            let span = tracing::info_span!("relay.publish", otel.kind = "producer", event = %event.event_id);
            parley_runtime::traces::continue_from(&span, &traceparent);
            if let Some(context) = parley_runtime::traces::traceparent(&span) {
                message = message.header(parley_runtime::traces::TRACEPARENT, context.as_str());
            }
            self.jetstream.send_publish(subject, message).instrument(span).await.map_err(BusError::nats)
        };
        parley_runtime::traces::recorded(true, traced).await
    }
}

/// The trace context its command stored with the event, while traces are exported.
fn committed_trace(event: &EventEnvelope) -> Option<String> {
    parley_runtime::traces::exporting().then(|| parley_runtime::traces::stored_in(event.metadata.get())).flatten()
}
