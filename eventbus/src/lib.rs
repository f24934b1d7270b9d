//! The path of a committed event to the bus, shared by `parley-api` (which runs the relay) and
//! `parley-projections` (which consumes the stream and rebuilds from the event store). The SFU
//! uses the stream alone, without the `store` feature.

pub mod error;
#[cfg(feature = "store")]
pub mod event_store;
#[cfg(feature = "store")]
pub mod held;
#[cfg(feature = "store")]
pub mod relay;
pub mod stream;

pub use error::BusError;
pub use stream::StreamSettings;

/// The Postgres channel on which projectors announce progress after each commit (the api waits
/// on it for read-your-writes).
pub const PROGRESS_CHANNEL: &str = "parley_projected";

#[cfg(feature = "store")]
/// The migrations under `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[cfg(feature = "store")]
/// Applies pending migrations. Safe to run from several processes at once (sqlx takes an advisory lock).
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), BusError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
