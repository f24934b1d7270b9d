//! Running projections: the live JetStream consumer loop and the rebuild from the event store.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::{FutureExt, StreamExt, TryStreamExt};
use parley_domain::EventEnvelope;
use parley_eventbus::held::HeldConnection;
use parley_eventbus::{event_store, StreamSettings};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use tracing::Instrument;

use crate::metrics::ProjectionMetrics;
use crate::{Projection, ProjectionError};

use parley_eventbus::PROGRESS_CHANNEL;

/// Moves `projection_versions` forward: $1 projection, $2 aggregate types, $3 ids, $4 versions.
const STORE_VERSIONS: &str = "UPDATE projection_versions p SET version = u.v \
     FROM unnest($2::text[], $3::text[], $4::bigint[]) AS u(t, i, v) \
     WHERE p.projection = $1 AND p.aggregate_type = u.t AND p.aggregate_id = u.i AND p.version < u.v";

/// Deliveries applied in one transaction at most.
const BATCH: usize = 256;
/// How long a delivery that found events already waiting (a busy stream) waits for more before
/// it is applied: each delivery has a fixed cost (a transaction, the version rows, the
/// checkpoint, a commit), and a busy stream's events otherwise went in small deliveries. A
/// quiet stream's lone event is applied at once.
const BUSY_LINGER: Duration = Duration::from_millis(2);

/// The per-aggregate versions a projection has applied, read once per transaction (and locked,
/// which serialises projector replicas working on the same aggregates) and written back once.
#[derive(Default)]
pub struct AppliedVersions {
    versions: HashMap<(String, String), i64>,
}

impl AppliedVersions {
    /// Locks and reads the versions of `keys`' aggregates. Sorted, so that two replicas lock
    /// rows in the same order and cannot deadlock.
    async fn lock(
        &mut self,
        conn: &mut PgConnection,
        projection: &str,
        keys: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ProjectionError> {
        let keys: BTreeSet<(String, String)> = keys.into_iter().filter(|k| !self.versions.contains_key(k)).collect();
        if keys.is_empty() {
            return Ok(());
        }
        let (types, ids): (Vec<String>, Vec<String>) = keys.into_iter().unzip();
        // Makes the rows exist and locks them in one statement. The conflict action updates
        // nothing (`WHERE false` still locks the row): a no-op update had written a new version
        // of every row on every delivery, beside the one `store` writes.
        sqlx::query!("INSERT INTO projection_versions (projection, aggregate_type, aggregate_id, version) \
             SELECT $1, t, i, 0 FROM unnest($2::text[], $3::text[]) AS u(t, i) \
             ON CONFLICT (projection, aggregate_type, aggregate_id) DO UPDATE SET version = projection_versions.version \
             WHERE false", projection, &types, &ids)
        .execute(&mut *conn)
        .await?;
        // A statement of its own, so its snapshot shows what a replica that held a lock before us
        // committed.
        let rows = sqlx::query!(
            "SELECT p.aggregate_type, p.aggregate_id, p.version FROM projection_versions p \
             JOIN unnest($2::text[], $3::text[]) AS u(t, i) ON p.aggregate_type = u.t AND p.aggregate_id = u.i \
             WHERE p.projection = $1",
            projection,
            &types,
            &ids
        )
        .fetch_all(conn)
        .await?;
        for row in rows {
            self.versions.insert((row.aggregate_type, row.aggregate_id), row.version);
        }
        Ok(())
    }

    /// Writes every version back (still inside the caller's transaction).
    async fn store(&self, conn: &mut PgConnection, projection: &str) -> Result<(), ProjectionError> {
        let (types, ids, versions) = self.columns();
        sqlx::query(&format!("WITH moved AS ({STORE_VERSIONS}) SELECT 1"))
            .bind(projection)
            .bind(&types)
            .bind(&ids)
            .bind(&versions)
            .execute(conn)
            .await?;
        Ok(())
    }

    fn columns(&self) -> (Vec<&str>, Vec<&str>, Vec<i64>) {
        let mut types = Vec::with_capacity(self.versions.len());
        let mut ids = Vec::with_capacity(self.versions.len());
        let mut versions = Vec::with_capacity(self.versions.len());
        for ((aggregate_type, aggregate_id), version) in &self.versions {
            types.push(aggregate_type.as_str());
            ids.push(aggregate_id.as_str());
            versions.push(*version);
        }
        (types, ids, versions)
    }

    /// Decides what applying `event` exactly once takes: nothing for a duplicate; for an event
    /// after a gap, the missing events from the event store first, then it. Returns those events
    /// (to apply in order) and counts them as applied.
    pub async fn accept(
        &mut self,
        conn: &mut PgConnection,
        projection: &dyn Projection,
        event: EventEnvelope,
    ) -> Result<Vec<EventEnvelope>, ProjectionError> {
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        self.lock(conn, projection.name(), [key.clone()]).await?;
        let version = self.versions.get(&key).copied().unwrap_or(0);
        if event.sequence <= version {
            return Ok(Vec::new());
        }
        let mut accepted = Vec::new();
        if event.sequence > version + 1 {
            accepted = event_store::aggregate_events(
                conn,
                &event.aggregate_type,
                &event.aggregate_id,
                version,
                event.sequence - 1,
            )
            .await?;
            tracing::info!(projection = projection.name(), aggregate_id = %event.aggregate_id, filled = accepted.len(), "filled a gap from the event store");
        }
        self.versions.insert(key, event.sequence);
        accepted.push(event);
        Ok(accepted)
    }
}

/// Ends a delivery's transaction in one round trip: the applied versions, the checkpoint, and
/// the progress notification (delivered at commit, so a waiter that wakes up sees the new state).
async fn record_progress(
    conn: &mut PgConnection,
    projection: &str,
    versions: &AppliedVersions,
    stream_sequence: u64,
    event_position: i64,
) -> Result<(), ProjectionError> {
    let (types, ids, applied) = versions.columns();
    sqlx::query(&format!(
        "WITH moved AS ({STORE_VERSIONS}), \
         saved AS ( \
           INSERT INTO projection_checkpoints (projection, stream_sequence, event_position) VALUES ($1, $5, $6) \
           ON CONFLICT (projection) DO UPDATE SET \
             stream_sequence = GREATEST(projection_checkpoints.stream_sequence, EXCLUDED.stream_sequence), \
             event_position = GREATEST(projection_checkpoints.event_position, EXCLUDED.event_position), \
             updated_at = now() \
           RETURNING projection) \
         SELECT pg_notify($7, projection) FROM saved"
    ))
    .bind(projection)
    .bind(&types)
    .bind(&ids)
    .bind(&applied)
    .bind(stream_sequence as i64)
    .bind(event_position)
    .bind(PROGRESS_CHANNEL)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Applies delivered events to every projection of a group, with their checkpoints, in a single
/// transaction. Each projection sees only the events of its aggregate types, in delivery order.
async fn apply_batch(
    conn: &mut PgConnection,
    group: &[Arc<dyn Projection>],
    events: Vec<EventEnvelope>,
    stream_sequence: u64,
) -> Result<Vec<(&'static str, usize)>, ProjectionError> {
    let mut applied = Vec::with_capacity(group.len());
    let mut tx = conn.begin().await?;
    let mut batch = Some(events);
    for (index, projection) in group.iter().enumerate() {
        // The last projection takes the batch itself; the others take copies of their events.
        let events: Vec<EventEnvelope> = match batch.take() {
            Some(all) if index + 1 == group.len() => all.into_iter().filter(|e| projection.reads(e)).collect(),
            Some(all) => {
                let mine = all.iter().filter(|e| projection.reads(e)).cloned().collect();
                batch = Some(all);
                mine
            }
            None => Vec::new(),
        };
        let Some(last_position) = events.iter().map(|e| e.position).max() else { continue };
        let mut versions = AppliedVersions::default();
        versions
            .lock(&mut tx, projection.name(), events.iter().map(|e| (e.aggregate_type.clone(), e.aggregate_id.clone())))
            .await?;
        let mut accepted = Vec::with_capacity(events.len());
        for event in events {
            accepted.extend(versions.accept(&mut tx, projection.as_ref(), event).await?);
        }
        projection.apply_all(&mut tx, &accepted).await?;
        record_progress(&mut tx, projection.name(), &versions, stream_sequence, last_position).await?;
        applied.push((projection.name(), accepted.len()));
    }
    tx.commit().await?;
    Ok(applied)
}

/// A projection group's durable JetStream consumer: its name, and the consumers its projections
/// had of their own before they were grouped (it takes over where they were).
pub struct GroupConsumer {
    pub name: String,
    pub superseded: Vec<String>,
}

/// Feeds a group of projections from one durable JetStream consumer until `shutdown` turns
/// true: each delivery is fetched, decoded and acknowledged once for the whole group, and applied
/// to all of its projections in one transaction. Connection problems are logged and retried;
/// nothing is acknowledged before it is committed. `superseded` names the consumers the group's
/// projections had of their own, if any: a new group consumer takes over where they were.
pub async fn run_projections(
    pool: PgPool,
    jetstream: jetstream::Context,
    stream: StreamSettings,
    consumer: GroupConsumer,
    group: Vec<Box<dyn Projection>>,
    metrics: Arc<ProjectionMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let GroupConsumer { name: consumer_name, superseded } = consumer;
    let group: Arc<[Arc<dyn Projection>]> = group.into_iter().map(Arc::from).collect();
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Each attempt is a task of its own, so that a panic (one was seen inside the tracing
        // subscriber) is logged and retried like any failure instead of silently ending this
        // projection while the process lives on. Unacknowledged events are redelivered.
        let attempt = tokio::spawn({
            let (pool, jetstream, stream) = (pool.clone(), jetstream.clone(), stream.clone());
            let (consumer_name, superseded, group) = (consumer_name.clone(), superseded.clone(), Arc::clone(&group));
            let metrics = Arc::clone(&metrics);
            async move { consume(&pool, &jetstream, &stream, &consumer_name, &superseded, &group, &metrics).await }
        });
        let abort = attempt.abort_handle();
        let result = tokio::select! {
            r = attempt => r.unwrap_or_else(|join| Err(ProjectionError::Inconsistent(format!("consumer task ended: {join}")))),
            _ = shutdown.changed() => {
                abort.abort();
                return;
            }
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => {
                tracing::warn!(consumer = consumer_name, %error, retry_in_ms = backoff.as_millis() as u64, "projection consumer failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Where a group's new consumer starts when it replaces consumers its projections had of their
/// own (an upgrade): after the lowest acknowledgement floor among them. Nothing one of them had
/// not applied yet is skipped (anything applied twice is skipped by the versions), and the
/// stream's history is not replayed. From the start if any of them is missing.
async fn takeover_point(stream: &jetstream::stream::Stream, superseded: &[String]) -> consumer::DeliverPolicy {
    let mut floor = u64::MAX;
    for name in superseded {
        match stream.consumer_info(name).await {
            Ok(info) => floor = floor.min(info.ack_floor.stream_sequence),
            Err(_) => return consumer::DeliverPolicy::All,
        }
    }
    consumer::DeliverPolicy::ByStartSequence { start_sequence: floor.saturating_add(1) }
}

async fn consume(
    pool: &PgPool,
    jetstream: &jetstream::Context,
    settings: &StreamSettings,
    consumer_name: &str,
    superseded: &[String],
    group: &[Arc<dyn Projection>],
    metrics: &ProjectionMetrics,
) -> Result<(), ProjectionError> {
    let nats = |e: &dyn std::fmt::Display| ProjectionError::Nats(e.to_string());
    let stream = parley_eventbus::stream::ensure_stream(jetstream, settings).await?;
    let aggregate_types: BTreeSet<&str> = group.iter().flat_map(|p| p.aggregate_types().iter().copied()).collect();
    let mut config = consumer::pull::Config {
        durable_name: Some(consumer_name.to_owned()),
        filter_subjects: aggregate_types.iter().map(|t| settings.subject_for_type(t)).collect(),
        ack_policy: consumer::AckPolicy::Explicit,
        // A projector that dies mid-delivery holds its message this long before JetStream gives it
        // to a successor; applying an event takes milliseconds, and a redelivery is harmless.
        ack_wait: Duration::from_secs(5),
        ..Default::default()
    };
    if !superseded.is_empty() && stream.consumer_info(consumer_name).await.is_err() {
        config.deliver_policy = takeover_point(&stream, superseded).await;
        tracing::info!(consumer = consumer_name, ?superseded, deliver_policy = ?config.deliver_policy, "creating a group consumer");
    }
    let mut consumer: consumer::PullConsumer =
        stream.get_or_create_consumer(consumer_name, config.clone()).await.map_err(|e| nats(&e))?;
    // A projection that now reads more aggregate types (say, the feed learning of calls) keeps
    // its durable consumer and position; only the filter changes.
    let mut wanted = config.filter_subjects.clone();
    let current = &consumer.cached_info().config;
    let mut existing = current.filter_subjects.clone();
    if existing.is_empty() && !current.filter_subject.is_empty() {
        existing.push(current.filter_subject.clone());
    }
    wanted.sort();
    existing.sort();
    if wanted != existing {
        tracing::info!(consumer = consumer_name, ?wanted, "updating the consumer's subjects");
        consumer = stream.update_consumer(config).await.map_err(|e| nats(&e))?;
    }
    let mut messages = consumer.messages().await.map_err(|e| nats(&e))?;
    let mut connection = HeldConnection::new(pool.clone());
    // Whatever has arrived is applied together (up to BATCH): one transaction and one progress
    // notification for many events when busy (and a little more time to gather them), a batch
    // of one when idle.
    while let Some(first) = messages.next().await {
        let mut delivered = vec![first.map_err(|e| nats(&e))?];
        while delivered.len() < BATCH {
            match messages.next().now_or_never() {
                Some(Some(message)) => delivered.push(message.map_err(|e| nats(&e))?),
                _ => break,
            }
        }
        if delivered.len() > 1 {
            let until = tokio::time::Instant::now() + BUSY_LINGER;
            while delivered.len() < BATCH {
                match tokio::time::timeout_at(until, messages.next()).await {
                    Ok(Some(message)) => delivered.push(message.map_err(|e| nats(&e))?),
                    _ => break,
                }
            }
        }
        let (mut messages, mut events) = (Vec::with_capacity(delivered.len()), Vec::with_capacity(delivered.len()));
        let mut stream_sequence = 0;
        for message in delivered {
            stream_sequence = stream_sequence.max(message.info().map_err(|e| nats(&*e))?.stream_sequence);
            match serde_json::from_slice::<EventEnvelope>(&message.payload) {
                Ok(event) if aggregate_types.contains(event.aggregate_type.as_str()) => {
                    messages.push(message);
                    events.push(event);
                }
                // A server without multi-subject filters (NATS < 2.10) delivers everything.
                Ok(_) => message.ack().await.map_err(|e| nats(&*e))?,
                Err(error) => {
                    // Not an event we published: nothing can ever apply it.
                    tracing::error!(consumer = consumer_name, stream_sequence, %error, "dropping undecodable message");
                    message.ack_with(AckKind::Term).await.map_err(|e| nats(&*e))?;
                }
            }
        }
        if events.is_empty() {
            continue;
        }
        // `instrument`, never `span.enter()` across awaits: a guard held over an await is left
        // on whichever worker thread the task moved from, and the subscriber later panicked
        // ("tried to clone a span that already closed"), which had stopped a projector.
        // Recorded when it continues a sampled trace, else as often as a new trace is sampled.
        let recording = traced(&messages).next().is_some() || parley_runtime::traces::sample();
        let span = parley_runtime::traces::recorded(recording, async {
            let span = tracing::info_span!(
                "project",
                otel.kind = "consumer",
                consumer = consumer_name,
                events = events.len(),
                stream_sequence
            );
            follow_traces(&span, &messages);
            span
        })
        .await;
        let delivery = async {
            for projection in group {
                projection.begin_delivery();
            }
            let started = std::time::Instant::now();
            let result = match connection.get().await {
                Ok(conn) => apply_batch(conn, group, events, stream_sequence).await,
                Err(error) => Err(error.into()),
            };
            if result.is_err() {
                connection.release();
            }
            match result {
                Ok(applied) => {
                    metrics.batch_applied(consumer_name, started.elapsed(), &applied);
                    for projection in group {
                        projection.after_commit(&jetstream.client()).await;
                    }
                    for message in &messages {
                        message.ack().await.map_err(|e| nats(&*e))?;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "could not apply events; they will be redelivered");
                    for message in &messages {
                        message.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await.map_err(|e| nats(&*e))?;
                    }
                }
            }
            Ok::<(), ProjectionError>(())
        };
        parley_runtime::traces::recorded(recording, delivery.instrument(span)).await?;
    }
    Ok(())
}

/// A delivery serves the traces of all its events: the span continues the first one's (so a
/// quiet system shows request → relay → projector → frame as one trace) and links the others.
fn follow_traces(span: &tracing::Span, messages: &[jetstream::Message]) {
    let mut traces = traced(messages);
    if let Some(first) = traces.next() {
        parley_runtime::traces::continue_from(span, first);
    }
    for other in traces {
        parley_runtime::traces::link_to(span, other);
    }
}

/// The trace contexts the messages carry (only sampled traces are passed on).
fn traced(messages: &[jetstream::Message]) -> impl Iterator<Item = &str> {
    messages.iter().filter_map(|m| m.headers.as_ref()?.get(parley_runtime::traces::TRACEPARENT)).map(|v| v.as_str())
}

/// Rebuilds a projection from the event store alone, in one transaction: empties it, then applies
/// every relevant event in commit order. The live consumer may keep running: it waits on the
/// locks and afterwards skips what the rebuild already applied.
pub async fn rebuild(pool: &PgPool, projection: &dyn Projection) -> Result<u64, ProjectionError> {
    let mut tx = pool.begin().await?;
    projection.reset(&mut tx).await?;
    sqlx::query!("DELETE FROM projection_versions WHERE projection = $1", projection.name()).execute(&mut *tx).await?;
    let types: Vec<String> = projection.aggregate_types().iter().map(|t| (*t).to_owned()).collect();
    // Events are streamed on a second connection so that `tx` stays free for the writes.
    let mut reader = pool.acquire().await?;
    let mut events = event_store::all_events(&mut reader, &types);
    let mut applied = 0u64;
    let mut versions = AppliedVersions::default();
    let mut accepted = Vec::new();
    while let Some(event) = events.try_next().await? {
        accepted.extend(versions.accept(&mut tx, projection, event).await?);
        if accepted.len() >= BATCH {
            projection.apply_all(&mut tx, &accepted).await?;
            applied += accepted.len() as u64;
            accepted.clear();
        }
    }
    drop(events);
    projection.apply_all(&mut tx, &accepted).await?;
    applied += accepted.len() as u64;
    versions.store(&mut tx, projection.name()).await?;
    tx.commit().await?;
    Ok(applied)
}
