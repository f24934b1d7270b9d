//! The path of a committed event to the bus, shared by `parley-api` (which runs the relay) and
//! `parley-projections` (which consumes the stream and rebuilds from the event store).

pub mod error;
pub mod event_store;
pub mod process;
pub mod relay;
pub mod stream;

pub use error::BusError;
pub use stream::StreamSettings;

/// The Postgres channel on which projectors announce progress after each commit (the api waits
/// on it for read-your-writes).
pub const PROGRESS_CHANNEL: &str = "parley_projected";

/// The migrations under `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Applies pending migrations. Safe to run from several processes at once (sqlx takes an advisory lock).
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), BusError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
