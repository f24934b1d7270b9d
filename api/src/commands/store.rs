//! Loading aggregates from, and committing events to, the `postgres-es` event store (its `events`
//! and `snapshots` tables, plus our `position` column and triggers).
//!
//! Commits are grouped. Each command's events join a queue; a committer task takes what is queued
//! (up to `BATCH`) and writes it in one statement with multi-row inserts. One WAL flush then
//! covers many commands on many aggregates, and Postgres runs one statement per batch instead of
//! several per command. If a batch fails (say one command lost an optimistic
//! concurrency race), its commands are retried one transaction each, so only the one at fault
//! sees the error.

use std::sync::Arc;

use cqrs_es::Aggregate;
use opentelemetry::metrics::Counter;
use opentelemetry::KeyValue;
use parley_eventbus::held::HeldConnection;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use uuid::Uuid;

use super::lookups::ClientMessageRow;

/// Commands queued per committer task before senders wait.
const QUEUE_DEPTH: usize = 4096;
/// Commands written in one transaction at most.
const BATCH: usize = 256;
/// Transactions in flight at once. One: while it waits for its statement and flush, the next
/// batch gathers, so batches grow with the load. Measured with `scripts/bench messages`
/// (2026-11-26, two runs each on a fresh database): one committer used 346–351 µs of CPU per
/// message over all processes against 385–394 µs with three (PostgreSQL 142–145 against
/// 174–178 µs), accepted 9 % more messages per second, and kept POST → frame p99 at 14–16 ms.
const COMMITTERS: usize = 1;

/// One event, serialised as `postgres-es` stores it.
pub struct EventRow {
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
}

/// The aggregate's state after `last_sequence`, so that loading it replays only later events.
pub struct SnapshotRow {
    pub aggregate_id: String,
    pub last_sequence: i64,
    pub payload: String,
}

/// The key that opens a message body sealed in a `MessageSent` event (crypto-shredding). It is
/// committed with the event, never inside it.
pub struct MessageKey {
    pub message_id: Uuid,
    pub key: Vec<u8>,
}

pub struct Commit {
    pub aggregate_type: &'static str,
    pub events: Vec<EventRow>,
    pub snapshot: Option<SnapshotRow>,
    pub message_keys: Vec<MessageKey>,
    pub client_messages: Vec<ClientMessageRow>,
}

struct Queued {
    commit: Commit,
    done: oneshot::Sender<Result<(), CommitError>>,
}

/// Which unique rule refused a commit. Each lookup table the events trigger (or the commit
/// itself) writes has one, and the handler that depends on it matches on its variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Another command committed this aggregate's next sequence number first (`events_pkey`,
    /// `snapshots_pkey`): the same command may succeed on fresh state.
    Concurrent,
    /// `user_emails_pkey`: an account with this email exists.
    EmailTaken,
    /// `direct_chats_pkey`: the two users already have a direct chat.
    DirectChatExists,
    /// `chat_client_messages_pkey`: this sender used this `client_msg_id` in the chat before.
    ClientMessageIdUsed,
    /// `active_calls_pkey`: a call already rings or runs in the chat.
    ChatHasLiveCall,
    /// A constraint no handler expects (named, for the log).
    Other(String),
}

impl Conflict {
    fn from_constraint(constraint: Option<&str>) -> Self {
        match constraint {
            Some("events_pkey" | "snapshots_pkey") => Conflict::Concurrent,
            Some("user_emails_pkey") => Conflict::EmailTaken,
            Some("direct_chats_pkey") => Conflict::DirectChatExists,
            Some("chat_client_messages_pkey") => Conflict::ClientMessageIdUsed,
            Some("active_calls_pkey") => Conflict::ChatHasLiveCall,
            Some(other) => Conflict::Other(other.to_owned()),
            None => Conflict::Other(String::new()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("a unique rule refused the commit: {0:?}")]
    Conflict(Conflict),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("an event or snapshot does not match its JSON form: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the event store is shutting down")]
    Closed,
}

fn classify(error: sqlx::Error) -> CommitError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            CommitError::Conflict(Conflict::from_constraint(db.constraint()))
        }
        _ => CommitError::Database(error),
    }
}

#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    queue: mpsc::Sender<Queued>,
}

impl EventStore {
    /// Starts the committer tasks; they end when the last `EventStore` clone is dropped.
    /// `committed` is signalled after each successful commit (it wakes this process's relay);
    /// `appended` counts the events committed, by aggregate type.
    pub fn start(pool: PgPool, committed: Arc<Notify>, appended: Counter<u64>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let receiver = Arc::new(Mutex::new(receiver));
        let signals = Committed { wake: committed, appended };
        for _ in 0..COMMITTERS {
            tokio::spawn(run_committer(pool.clone(), Arc::clone(&receiver), signals.clone()));
        }
        Self { pool, queue }
    }

    /// Writes `commit` in a transaction shared with whatever else is queued.
    pub async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        let (done, result) = oneshot::channel();
        self.queue.send(Queued { commit, done }).await.map_err(|_| CommitError::Closed)?;
        result.await.map_err(|_| CommitError::Closed)?
    }

    /// An aggregate's state and version: its newest snapshot plus the events after it.
    pub async fn load<A: Aggregate>(&self, aggregate_id: &str) -> Result<(A, i64), CommitError> {
        let snapshot = sqlx::query!(
            r#"SELECT last_sequence, payload::text AS "payload!" FROM snapshots
               WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY last_sequence DESC LIMIT 1"#,
            A::TYPE,
            aggregate_id
        )
        .fetch_optional(&self.pool)
        .await?;
        let (mut version, mut state) = match snapshot {
            Some(row) => (row.last_sequence, serde_json::from_str::<A>(&row.payload)?),
            None => (0, A::default()),
        };
        let events = sqlx::query!(
            r#"SELECT sequence, payload::text AS "payload!" FROM events
               WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence"#,
            A::TYPE,
            aggregate_id,
            version
        )
        .fetch_all(&self.pool)
        .await?;
        for event in events {
            state.apply(decode::<A::Event>(&event.payload)?);
            version = event.sequence;
        }
        Ok((state, version))
    }
}

fn decode<T: DeserializeOwned>(payload: &str) -> Result<T, CommitError> {
    Ok(serde_json::from_str(payload)?)
}

/// What a committer tells after a commit.
#[derive(Clone)]
struct Committed {
    wake: Arc<Notify>,
    appended: Counter<u64>,
}

impl Committed {
    fn signal(&self, commits: &[&Commit]) {
        self.wake.notify_one();
        for commit in commits {
            self.appended.add(commit.events.len() as u64, &[KeyValue::new("aggregate", commit.aggregate_type)]);
        }
    }
}

async fn run_committer(pool: PgPool, receiver: Arc<Mutex<mpsc::Receiver<Queued>>>, committed: Committed) {
    let mut connection = HeldConnection::new(pool);
    loop {
        let mut batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        let commits: Vec<&Commit> = batch.iter().map(|q| &q.commit).collect();
        match write(&mut connection, &commits).await {
            Ok(()) => {
                committed.signal(&commits);
                for queued in batch {
                    let _ = queued.done.send(Ok(()));
                }
            }
            // A lone commit that the database refused fails. One that failed on the connection
            // (say, the held one, closed by a restart of PostgreSQL while idle) is tried once
            // more below, on a fresh connection: if the first try did commit after all, the
            // events' primary key refuses the second and the command runs again on fresh state.
            Err(error) if batch.len() == 1 && !lost_connection(&error) => {
                if let Some(queued) = batch.pop() {
                    let _ = queued.done.send(Err(error));
                }
            }
            Err(error) => {
                tracing::debug!(%error, size = batch.len(), "group commit failed; committing one by one");
                for queued in batch {
                    let result = write(&mut connection, &[&queued.commit]).await;
                    if result.is_ok() {
                        committed.signal(&[&queued.commit]);
                    }
                    let _ = queued.done.send(result);
                }
            }
        }
    }
}

fn lost_connection(error: &CommitError) -> bool {
    matches!(error, CommitError::Database(e) if HeldConnection::is_connection_error(e))
}

/// Writes `commits` (see `insert`) on the held connection, and hands the connection back to the
/// pool after any failure but the database refusing the statement.
async fn write(connection: &mut HeldConnection, commits: &[&Commit]) -> Result<(), CommitError> {
    let result = match connection.get().await {
        Ok(conn) => insert(conn, commits).await,
        Err(error) => Err(error),
    };
    result.map_err(|error| {
        if HeldConnection::is_connection_error(&error) {
            connection.release();
        }
        classify(error)
    })
}

/// All of `commits` in one statement, so one round trip and atomic without BEGIN and COMMIT:
/// message keys, idempotency rows, events (their trigger writes the outbox and the other lookup
/// rows) and any snapshots. The setting `parley.commit_lookups` tells the trigger (which runs
/// after this statement's main query) that the idempotency rows are done (see migration 12).
async fn insert(conn: &mut PgConnection, commits: &[&Commit]) -> Result<(), sqlx::Error> {
    let (message_ids, keys): (Vec<Uuid>, Vec<&[u8]>) =
        commits.iter().flat_map(|c| &c.message_keys).map(|k| (k.message_id, k.key.as_slice())).unzip();
    let mut columns = EventColumns::default();
    for commit in commits {
        for event in &commit.events {
            columns.push(commit.aggregate_type, event);
        }
    }
    let snapshots: Vec<(&str, &SnapshotRow)> =
        commits.iter().filter_map(|c| c.snapshot.as_ref().map(|s| (c.aggregate_type, s))).collect();
    let sent = ClientMessageColumns::of(commits);
    // Array order is insert order, so `position` follows each aggregate's sequence.
    let snapshot_types: Vec<&str> = snapshots.iter().map(|(t, _)| *t).collect();
    let snapshot_ids: Vec<&str> = snapshots.iter().map(|(_, s)| s.aggregate_id.as_str()).collect();
    let snapshot_sequences: Vec<i64> = snapshots.iter().map(|(_, s)| s.last_sequence).collect();
    let snapshot_payloads: Vec<&str> = snapshots.iter().map(|(_, s)| s.payload.as_str()).collect();
    // Arrays of borrowed text and bytes bind as `text[]` and `bytea[]`; `as _` only tells the
    // macro so (it checks owned element types).
    sqlx::query!(
        "WITH keys AS ( \
           INSERT INTO message_keys (message_id, key) SELECT * FROM unnest($8::uuid[], $9::bytea[])), \
         old_snapshots AS ( \
           DELETE FROM snapshots s USING unnest($10::text[], $11::text[], $12::bigint[]) AS n(t, i, l) \
           WHERE s.aggregate_type = n.t AND s.aggregate_id = n.i AND s.last_sequence < n.l), \
         new_snapshots AS ( \
           INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload) \
           SELECT t, i, l, l, p::json FROM unnest($10::text[], $11::text[], $12::bigint[], $13::text[]) AS n(t, i, l, p) \
           ON CONFLICT DO NOTHING), \
         client_messages AS ( \
           INSERT INTO chat_client_messages (chat_id, sender_id, client_msg_id, message_id, seq) \
           SELECT * FROM unnest($14::uuid[], $15::uuid[], $16::text[], $17::uuid[], $18::bigint[])), \
         written AS ( \
           INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
           SELECT t, i, s, et, ev, p::json, m::json \
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) \
             AS u(t, i, s, et, ev, p, m) \
           RETURNING 1) \
         SELECT set_config('parley.commit_lookups', 'on', true) WHERE EXISTS (SELECT FROM written)",
        &columns.aggregate_types as _,
        &columns.aggregate_ids as _,
        &columns.sequences,
        &columns.event_types as _,
        &columns.event_versions as _,
        &columns.payloads as _,
        &columns.metadata as _,
        &message_ids,
        &keys as _,
        &snapshot_types as _,
        &snapshot_ids as _,
        &snapshot_sequences,
        &snapshot_payloads as _,
        &sent.chat_ids,
        &sent.sender_ids,
        &sent.client_msg_ids as _,
        &sent.message_ids,
        &sent.seqs
    )
    .fetch_optional(conn)
    .await?;
    Ok(())
}

#[derive(Default)]
struct ClientMessageColumns<'a> {
    chat_ids: Vec<Uuid>,
    sender_ids: Vec<Uuid>,
    client_msg_ids: Vec<&'a str>,
    message_ids: Vec<Uuid>,
    seqs: Vec<i64>,
}

impl<'a> ClientMessageColumns<'a> {
    fn of(commits: &[&'a Commit]) -> Self {
        let mut columns = Self::default();
        for row in commits.iter().flat_map(|c| &c.client_messages) {
            columns.chat_ids.push(row.chat_id);
            columns.sender_ids.push(row.sender_id);
            columns.client_msg_ids.push(&row.client_msg_id);
            columns.message_ids.push(row.message_id);
            columns.seqs.push(row.seq);
        }
        columns
    }
}

#[derive(Default)]
struct EventColumns<'a> {
    aggregate_types: Vec<&'static str>,
    aggregate_ids: Vec<&'a str>,
    sequences: Vec<i64>,
    event_types: Vec<&'a str>,
    event_versions: Vec<&'a str>,
    payloads: Vec<&'a str>,
    metadata: Vec<&'a str>,
}

impl<'a> EventColumns<'a> {
    fn push(&mut self, aggregate_type: &'static str, event: &'a EventRow) {
        self.aggregate_types.push(aggregate_type);
        self.aggregate_ids.push(&event.aggregate_id);
        self.sequences.push(event.sequence);
        self.event_types.push(&event.event_type);
        self.event_versions.push(&event.event_version);
        self.payloads.push(&event.payload);
        self.metadata.push(&event.metadata);
    }
}
