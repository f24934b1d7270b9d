//! Read-model projectors: each is a durable JetStream consumer that applies events to its Postgres
//! tables, recording its progress in the same transaction. Any projection can also be rebuilt from
//! the event store alone (`parley-projections rebuild <name>`).

pub mod calls;
pub mod chat_events;
pub mod chats;
pub mod config;
pub mod error;
pub mod feed;
pub mod keys;
pub mod media;
pub mod metrics;
pub mod projector;
pub mod users;

use async_trait::async_trait;
use parley_domain::EventEnvelope;
use sqlx::PgConnection;

pub use error::ProjectionError;

/// One read model.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the durable consumer's and the checkpoint's key.
    fn name(&self) -> &'static str;
    /// The aggregate types whose events this projection reads.
    fn aggregate_types(&self) -> &'static [&'static str];
    /// Whether this projection reads `event`.
    fn reads(&self, event: &EventEnvelope) -> bool {
        self.aggregate_types().contains(&event.aggregate_type.as_str())
    }
    /// Empties the read model (before a rebuild).
    async fn reset(&self, conn: &mut PgConnection) -> Result<(), ProjectionError>;
    /// Applies one event. Called exactly once per event and in per-aggregate order; the caller
    /// handles de-duplication and ordering.
    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError>;
    /// Applies events that passed the exactly-once check, in their order. Projections with a
    /// faster way to apply a run of events together override this.
    async fn apply_all(&self, conn: &mut PgConnection, events: &[EventEnvelope]) -> Result<(), ProjectionError> {
        for event in events {
            self.apply(conn, event).await?;
        }
        Ok(())
    }
    /// Called before each live delivery's transaction.
    fn begin_delivery(&self) {}
    /// Called after a live delivery's transaction committed (e.g. to wake realtime listeners).
    async fn after_commit(&self, _nats: &async_nats::Client) {}
}

/// Every projection this binary runs, in the groups that share a JetStream consumer and a
/// transaction; `realtime_prefix` is where the feed wakes WebSockets.
///
/// `chats` and `feed` both read every chat event, the busiest ones by far: together, each event
/// is delivered, decoded and acknowledged once instead of twice, and both read models commit in
/// one transaction (one WAL flush). Each keeps its own versions and checkpoint, and is rebuilt
/// on its own.
pub fn projection_groups(realtime_prefix: &str) -> Vec<Vec<Box<dyn Projection>>> {
    vec![
        vec![Box::new(users::UsersProjection)],
        vec![Box::new(chats::ChatsProjection), Box::new(feed::FeedProjection::new(realtime_prefix.to_owned()))],
        vec![Box::new(calls::CallsProjection)],
        vec![Box::new(media::MediaProjection)],
        vec![Box::new(keys::KeysProjection::new(realtime_prefix.to_owned()))],
    ]
}

/// Every projection this binary runs.
pub fn all_projections(realtime_prefix: &str) -> Vec<Box<dyn Projection>> {
    projection_groups(realtime_prefix).into_iter().flatten().collect()
}
