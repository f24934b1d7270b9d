//! Executing commands on event-sourced aggregates.
//!
//! `cqrs_es::CqrsFramework::execute` returns nothing about what it committed, and handlers need
//! the new state and version. This runs the same steps (load, handle, commit) and returns them.
//! Projections are not dispatched here: the outbox relay publishes committed events to JetStream.
//!
//! Each aggregate a process works on stays in memory after its first load, behind an async lock
//! that also queues commands on it (fifty people posting in one group wait their turn here rather
//! than race to the database). Another replica may commit to the same aggregate meanwhile: then
//! our commit collides on the events' primary key, the cached state is dropped, and the caller
//! retries on a fresh load. So the cache never decides a command on stale state.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use parley_domain::EventMetadata;
use tracing::Instrument;

use super::lookups::WriteLookups;
use super::store::{Commit, CommitError, Conflict, EventRow, EventStore, MessageKey, SnapshotRow};

/// Attempts of a command that keeps losing optimistic-concurrency races, at most.
const MAX_CONFLICT_RETRIES: u32 = 50;
/// Aggregates kept in memory per bus; beyond it, idle ones are dropped (and reloaded on use).
const CACHED_AGGREGATES: usize = 20_000;
/// A snapshot is written every this many events, so a load replays at most as many.
const SNAPSHOT_EVERY: i64 = 100;

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused the command (its domain error).
    #[error(transparent)]
    Refused(E),
    /// A unique rule refused the commit, and which one.
    #[error("a unique rule refused the commit: {0:?}")]
    Conflict(Conflict),
    /// The event store could not be read or written.
    #[error(transparent)]
    Store(CommitError),
}

impl<E: std::error::Error> From<CommitError> for CommandError<E> {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::Conflict(conflict) => CommandError::Conflict(conflict),
            other => CommandError::Store(other),
        }
    }
}

/// Runs `attempt` again, after a short jittered pause, while it loses an optimistic-concurrency
/// race ([`Conflict::Concurrent`]); any other outcome, or the last try's, is returned.
pub async fn retry_concurrent<T, E, F, Fut>(mut attempt: F) -> Result<T, CommandError<E>>
where
    E: std::error::Error,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CommandError<E>>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(CommandError::Conflict(Conflict::Concurrent)) if tries < MAX_CONFLICT_RETRIES => {
                tries += 1;
                let jitter = u64::from(rand::random::<u8>() % 4);
                tokio::time::sleep(Duration::from_millis(u64::from(tries.min(10)) + jitter)).await;
            }
            result => return result,
        }
    }
}

/// What a successful command produced.
#[derive(Debug)]
pub struct Committed<A: Aggregate> {
    /// The aggregate's state after the command.
    pub state: A,
    /// The events recorded (none if the command changed nothing).
    pub events: Vec<EventEnvelope<A>>,
    /// The aggregate's sequence after the command.
    pub version: i64,
}

struct Loaded<A> {
    state: A,
    version: i64,
}

type Slot<A> = Arc<tokio::sync::Mutex<Option<Loaded<A>>>>;

pub struct CommandBus<A: Aggregate> {
    store: EventStore,
    services: A::Services,
    slots: std::sync::Mutex<HashMap<String, Slot<A>>>,
}

impl<A: WriteLookups + Clone> CommandBus<A> {
    pub fn new(store: EventStore, services: A::Services) -> Self {
        Self { store, services, slots: std::sync::Mutex::new(HashMap::new()) }
    }

    fn slot(&self, aggregate_id: &str) -> Slot<A> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.len() >= CACHED_AGGREGATES {
            // Only the map holds an idle slot.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        Arc::clone(slots.entry(aggregate_id.to_owned()).or_default())
    }

    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        self.execute_with_keys(aggregate_id, command, metadata, Vec::new()).await
    }

    /// Like `execute`, committing `message_keys` in the same transaction as the events.
    #[tracing::instrument(name = "command", skip_all, fields(aggregate = A::TYPE))]
    pub async fn execute_with_keys(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
        message_keys: Vec<MessageKey>,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        let slot = self.slot(aggregate_id);
        let mut cached = slot.lock().await;
        let (from_cache, Loaded { mut state, mut version }) = match cached.take() {
            Some(loaded) => (true, loaded),
            None => (false, self.load_fresh(aggregate_id).await?),
        };
        let mut sink = EventSink::default();
        let mut decided = state.handle(command.clone(), &self.services, &sink).await;
        if decided.is_err() && from_cache {
            // Another replica may have changed what made the command fail (say, added the
            // sender to the group): a refusal is only given on fresh state.
            Loaded { state, version } = self.load_fresh(aggregate_id).await?;
            sink = EventSink::default();
            decided = state.handle(command, &self.services, &sink).await;
        }
        let events = sink.collect().await;
        if decided.is_err() || events.is_empty() {
            // Nothing changed; an aggregate that does not exist is not worth remembering.
            let unchanged = state.clone();
            if version > 0 {
                *cached = Some(Loaded { state, version });
            }
            return decided
                .map(|()| Committed { state: unchanged, events: Vec::new(), version })
                .map_err(CommandError::Refused);
        }

        let mut metadata_map = metadata.to_map();
        // The relay, the projectors and the frames they send continue this command's trace.
        if let Some(traceparent) = parley_runtime::traces::traceparent(&tracing::Span::current()) {
            metadata_map.insert(parley_runtime::traces::TRACEPARENT.to_owned(), traceparent);
        }
        let metadata_json =
            serde_json::to_string(&metadata_map).map_err(|e| CommandError::Store(CommitError::Json(e)))?;
        let mut rows = Vec::with_capacity(events.len());
        let mut envelopes = Vec::with_capacity(events.len());
        let mut client_messages = Vec::new();
        for (offset, event) in events.into_iter().enumerate() {
            let sequence = version + 1 + offset as i64;
            client_messages.extend(A::client_message(aggregate_id, &event));
            rows.push(EventRow {
                aggregate_id: aggregate_id.to_owned(),
                sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_string(&event).map_err(|e| CommandError::Store(CommitError::Json(e)))?,
                metadata: metadata_json.clone(),
            });
            // `handle` already applied it to `state` (`EventSink::write` does).
            envelopes.push(EventEnvelope {
                aggregate_id: aggregate_id.to_owned(),
                sequence: sequence as usize,
                payload: event,
                metadata: metadata_map.clone(),
            });
        }
        let new_version = version + rows.len() as i64;
        let snapshot = if new_version / SNAPSHOT_EVERY > version / SNAPSHOT_EVERY {
            Some(SnapshotRow {
                aggregate_id: aggregate_id.to_owned(),
                last_sequence: new_version,
                payload: serde_json::to_string(&state).map_err(|e| CommandError::Store(CommitError::Json(e)))?,
            })
        } else {
            None
        };
        // On any failure the cache stays empty: the next command on this aggregate reloads it.
        let commit_span = tracing::info_span!("commit", events = rows.len());
        self.store
            .commit(Commit { aggregate_type: A::TYPE, events: rows, snapshot, message_keys, client_messages })
            .instrument(commit_span)
            .await?;
        *cached = Some(Loaded { state: state.clone(), version: new_version });
        Ok(Committed { state, events: envelopes, version: new_version })
    }

    async fn load_fresh(&self, aggregate_id: &str) -> Result<Loaded<A>, CommandError<A::Error>> {
        let (state, version) = self.store.load::<A>(aggregate_id).await?;
        Ok(Loaded { state, version })
    }

    /// The aggregate's current state, straight from the event store.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>> {
        Ok(self.load_fresh(aggregate_id).await?.state)
    }

    /// Like `execute`, retrying when a concurrent command on the same aggregate won the race.
    pub async fn execute_retrying(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        retry_concurrent(|| self.execute(aggregate_id, command.clone(), metadata)).await
    }
}
