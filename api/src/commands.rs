//! Executing commands on event-sourced aggregates.
//!
//! `cqrs_es::CqrsFramework::execute` returns nothing about what it committed, and handlers need
//! the new state and version (to answer, and to wait for the read model). This runs the same steps
//! (load, handle, commit) on the same `postgres-es` store and returns them. Projections are not
//! dispatched here: the outbox relay publishes committed events to JetStream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use parley_domain::EventMetadata;
use postgres_es::PostgresEventRepository;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;

pub const MAX_CONFLICT_RETRIES: u32 = 50;

/// A short, jittered pause before retrying a command that lost an optimistic-concurrency race.
pub async fn conflict_backoff(attempt: u32) {
    let jitter = u64::from(rand::random::<u8>() % 4);
    tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(10)) + jitter)).await;
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

pub struct CommandBus<A: Aggregate> {
    store: PersistedEventStore<PostgresEventRepository, A>,
    services: A::Services,
    in_flight: AggregateLocks,
}

/// One async lock per aggregate id with a command in flight in this process. Commands on the
/// same aggregate (fifty people posting in one group) then queue here instead of racing to the
/// database and retrying on optimistic-concurrency conflicts; across replicas the optimistic
/// check still decides.
#[derive(Default)]
struct AggregateLocks {
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl AggregateLocks {
    async fn hold(&self, id: &str) -> AggregateGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(locks.entry(id.to_owned()).or_default())
        };
        let guard = Arc::clone(&lock).lock_owned().await;
        AggregateGuard { locks: self, id: id.to_owned(), lock, _guard: guard }
    }
}

struct AggregateGuard<'a> {
    locks: &'a AggregateLocks,
    id: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for AggregateGuard<'_> {
    fn drop(&mut self) {
        let mut locks = self.locks.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Ours, the map's and the guard's: nobody else waits, so forget the entry.
        if Arc::strong_count(&self.lock) <= 3 {
            locks.remove(&self.id);
        }
    }
}

impl<A: Aggregate + Clone> CommandBus<A> {
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        let store = PersistedEventStore::new_event_store(PostgresEventRepository::new(pool));
        Self { store, services, in_flight: AggregateLocks::default() }
    }

    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, AggregateError<A::Error>> {
        let _turn = self.in_flight.hold(aggregate_id).await;
        let mut context = self.store.load_aggregate(aggregate_id).await?;
        let sink = EventSink::default();
        context.aggregate.handle(command, &self.services, &sink).await.map_err(AggregateError::UserError)?;
        let events = sink.collect().await;
        let state = context.aggregate.clone();
        let before = context.current_sequence;
        let events =
            if events.is_empty() { Vec::new() } else { self.store.commit(events, context, metadata.to_map()).await? };
        Ok(Committed { state, version: (before + events.len()) as i64, events })
    }

    /// For aggregates with long histories: state is kept as one snapshot row updated with every
    /// commit (optimistic locking on it), so loading never replays the events.
    pub fn with_aggregate_store(pool: PgPool, services: A::Services) -> Self {
        let store = PersistedEventStore::new_aggregate_store(PostgresEventRepository::new(pool));
        Self { store, services, in_flight: AggregateLocks::default() }
    }

    /// Like `execute`, retrying when a concurrent command on the same aggregate won the race.
    pub async fn execute_retrying(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, AggregateError<A::Error>>
    where
        A::Command: Clone,
    {
        let mut attempt = 0;
        loop {
            match self.execute(aggregate_id, command.clone(), metadata).await {
                Err(AggregateError::AggregateConflict) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    conflict_backoff(attempt).await;
                }
                result => return result,
            }
        }
    }

    /// The aggregate's current state, straight from the event store.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, AggregateError<A::Error>> {
        Ok(self.store.load_aggregate(aggregate_id).await?.aggregate)
    }
}

/// Read-your-writes: lets a handler wait until a projection has applied an aggregate's events.
///
/// One `LISTEN` connection per process receives the projectors' progress notifications and bumps a
/// counter; waiters re-check the projection's version whenever it moves.
#[derive(Clone)]
pub struct ProjectionProgress {
    pool: PgPool,
    changes: watch::Receiver<u64>,
}

impl ProjectionProgress {
    pub async fn start(pool: PgPool) -> Result<Self, sqlx::Error> {
        let (notify, changes) = watch::channel(0u64);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(parley_eventbus::PROGRESS_CHANNEL).await?;
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(_) => {
                        notify.send_modify(|n| *n = n.wrapping_add(1));
                    }
                    Err(error) => {
                        // PgListener reconnects on the next recv; meanwhile waiters poll.
                        tracing::warn!(%error, "projection progress listener failed");
                        notify.send_modify(|n| *n = n.wrapping_add(1));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                if notify.is_closed() {
                    return;
                }
            }
        });
        Ok(Self { pool, changes })
    }

    /// Waits until `projection` has applied `aggregate`'s events up to `version`, or `timeout`
    /// passes. Returns whether it got there.
    pub async fn wait_for(
        &self,
        projection: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        version: i64,
        timeout: Duration,
    ) -> Result<bool, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.changes.clone();
        loop {
            changes.borrow_and_update();
            let applied: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM projection_versions \
                 WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3",
            )
            .bind(projection)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(&self.pool)
            .await?;
            if applied.unwrap_or(0) >= version {
                return Ok(true);
            }
            // The poll interval only matters if a notification is lost.
            let wake = tokio::time::Instant::now() + Duration::from_millis(250);
            match tokio::time::timeout_at(deadline.min(wake), changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tokio::time::sleep_until(deadline.min(wake)).await,
                Err(_) if tokio::time::Instant::now() >= deadline => return Ok(false),
                Err(_) => {}
            }
        }
    }
}
