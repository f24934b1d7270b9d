//! The api writes events with its own group committer, in `postgres-es`'s table layout. This
//! loads what it wrote through `postgres-es` itself: same state, same version. On a database of
//! its own on the test server (`PARLEY_TEST_DATABASE_URL`, as the end-to-end tests; `scripts/test`
//! provides it).

use std::sync::Arc;

use chrono::Utc;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::EventStore as _;
use parley_api::commands::{CommandBus, Committed, EventStore, MessageKey};
use parley_domain::chat::{Chat, ChatCommand, ChatEvent, ChatKind};
use parley_domain::sealed;
use parley_domain::EventMetadata;
use postgres_es::PostgresEventRepository;
use sqlx::postgres::PgPoolOptions;
use sqlx::Connection as _;
use uuid::Uuid;

/// A counter nobody exports (the global meter provider is a no-op here).
fn appended() -> opentelemetry::metrics::Counter<u64> {
    opentelemetry::global::meter("test").u64_counter("appended").build()
}

/// A group of two (Ada, who created it, and Bob), on a bus over a fresh migrated database.
struct GroupChat {
    url: String,
    pool: sqlx::PgPool,
    bus: CommandBus<Chat>,
    chat_id: Uuid,
    id: String,
    ada: Uuid,
    bob: Uuid,
    metadata: EventMetadata,
}

impl GroupChat {
    async fn create(database: &str, name: &str) -> anyhow::Result<Self> {
        Self::create_with(database, name, PgPoolOptions::new()).await
    }

    async fn create_with(database: &str, name: &str, options: PgPoolOptions) -> anyhow::Result<Self> {
        let url = parley_tests::fresh_database(database).await?;
        let pool = options.max_connections(4).connect(&url).await?;
        parley_eventbus::migrate(&pool).await?;
        let bus: CommandBus<Chat> =
            CommandBus::new(EventStore::start(pool.clone(), Arc::new(Default::default()), appended()), ());
        let (chat_id, ada, bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let id = chat_id.to_string();
        let metadata = EventMetadata::new(Some(ada), Utc::now(), None);
        let create = ChatCommand::Create {
            chat_id,
            kind: ChatKind::Group,
            creator_id: ada,
            name: Some(name.into()),
            member_ids: vec![bob],
            at: Utc::now(),
        };
        bus.execute(&id, create, &metadata).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self { url, pool, bus, chat_id, id, ada, bob, metadata })
    }

    /// Sends a message whose body key is `key_byte` repeated, with its key.
    async fn send(&self, sender_id: Uuid, client_msg_id: String, key_byte: u8) -> anyhow::Result<Committed<Chat>> {
        let message_id = Uuid::now_v7();
        let key = [key_byte; sealed::KEY_BYTES];
        let send = ChatCommand::SendMessage {
            message_id,
            sender_id,
            sender_device_id: None,
            client_msg_id,
            body: sealed::seal(&key, &[0u8; sealed::NONCE_BYTES], b"ciphertext"),
            algorithm: "x".into(),
            media_ids: Vec::new(),
            reply_to: None,
            at: Utc::now(),
        };
        let keys = vec![MessageKey { message_id, key: key.to_vec() }];
        self.bus.execute_with_keys(&self.id, send, &self.metadata, keys).await.map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[tokio::test]
async fn events_the_group_committer_wrote_load_through_postgres_es() -> anyhow::Result<()> {
    let chat = GroupChat::create("layout", "Layout").await?;
    let (pool, chat_id, id, ada, bob) = (chat.pool.clone(), chat.chat_id, chat.id.clone(), chat.ada, chat.bob);
    // 120 messages: past the snapshot written at 100.
    let mut last = None;
    for n in 0..120 {
        last = Some(chat.send(if n % 2 == 0 { ada } else { bob }, format!("c{n}"), n as u8).await?);
    }
    let last = last.ok_or_else(|| anyhow::anyhow!("nothing sent"))?;
    assert_eq!(last.version, 121);

    let store = PersistedEventStore::<_, Chat>::new_event_store(PostgresEventRepository::new(pool.clone()));
    let loaded = store.load_aggregate(&id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(loaded.current_sequence, 121);
    assert_eq!(serde_json::to_value(&loaded.aggregate)?, serde_json::to_value(&last.state)?);
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM message_keys").fetch_one(&pool).await?;
    assert_eq!(keys, 120);
    // Each message's idempotency row, from the commit's own statement.
    let client_rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT client_msg_id, seq FROM chat_client_messages WHERE chat_id = $1 ORDER BY seq")
            .bind(chat_id)
            .fetch_all(&pool)
            .await?;
    let expected: Vec<(String, i64)> = (0..120).map(|n| (format!("c{n}"), n + 1)).collect();
    assert_eq!(client_rows, expected);

    // A writer that does not write the idempotency rows itself (an api replica from before
    // migration 12, during a rolling update): the trigger still derives the row from the event.
    let old_writer = ChatEvent::MessageSent {
        message_id: Uuid::now_v7(),
        sender_id: ada,
        sender_device_id: None,
        seq: 121,
        client_msg_id: "old-writer".into(),
        body: sealed::seal(&[7; sealed::KEY_BYTES], &[0u8; sealed::NONCE_BYTES], b"ciphertext"),
        algorithm: "x".into(),
        media_ids: Vec::new(),
        reply_to: None,
        sent_at: Utc::now(),
    };
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Chat', $1, 122, 'MessageSent', '1', $2::json, '{}')",
    )
    .bind(&id)
    .bind(serde_json::to_string(&old_writer)?)
    .execute(&pool)
    .await?;
    let derived: Option<i64> = sqlx::query_scalar(
        "SELECT seq FROM chat_client_messages WHERE chat_id = $1 AND sender_id = $2 AND client_msg_id = 'old-writer'",
    )
    .bind(chat_id)
    .bind(ada)
    .fetch_optional(&pool)
    .await?;
    assert_eq!(derived, Some(121));
    Ok(())
}

/// The committer keeps its connection between commits. When PostgreSQL closes it (a restart, an
/// idle timeout, an operator's `pg_terminate_backend`), the next commit still goes through, once,
/// on a fresh connection.
#[tokio::test]
async fn a_commit_after_the_database_closed_the_committers_connection_goes_through() -> anyhow::Result<()> {
    let chat = GroupChat::create("held", "Held").await?;

    // Every other session of this database: the committer's among them.
    let mut admin = sqlx::PgConnection::connect(&chat.url).await?;
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await?;
    assert!(!terminated.is_empty(), "the committer's connection was not found");
    // The terminated sessions have closed their sockets once they are gone from the view.
    for _ in 0..100 {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut admin)
        .await?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let sent = chat.send(chat.ada, "after-terminate".into(), 9).await?;
    assert_eq!(sent.version, 2);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(&chat.id)
        .fetch_one(&mut admin)
        .await?;
    assert_eq!(stored, 2, "the message is stored once");
    Ok(())
}

/// The sessions whose last statement was a commit of the committer's (by its beginning: the view
/// keeps the first kilobyte of a statement).
async fn committers(admin: &mut sqlx::PgConnection) -> sqlx::Result<Vec<i32>> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE 'WITH keys AS (%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(admin)
    .await
}

/// The committer keeps its connection no longer than the pool's `max_lifetime`, as the pool
/// would: a session PostgreSQL should no longer serve (a revoked role) is not used past it.
#[tokio::test]
async fn the_committer_gives_its_connection_back_after_the_pools_max_lifetime() -> anyhow::Result<()> {
    let lifetime = std::time::Duration::from_secs(1);
    let chat = GroupChat::create_with("lifetime", "Lifetime", PgPoolOptions::new().max_lifetime(lifetime)).await?;
    let mut admin = sqlx::PgConnection::connect(&chat.url).await?;
    chat.send(chat.ada, "first".into(), 1).await?;
    let first = committers(&mut admin).await?;
    assert_eq!(first.len(), 1, "one session ran the commits: {first:?}");
    tokio::time::sleep(lifetime * 2).await;
    chat.send(chat.bob, "second".into(), 2).await?;
    // The pool closes the connection it got back (past its lifetime) in a task of its own.
    let mut now = committers(&mut admin).await?;
    for _ in 0..100 {
        if !now.contains(&first[0]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        now = committers(&mut admin).await?;
    }
    assert!(!now.contains(&first[0]), "the first session still serves: {now:?}");
    assert_eq!(now.len(), 1, "a new session ran the second commit: {now:?}");
    Ok(())
}
