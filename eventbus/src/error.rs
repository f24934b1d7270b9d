use thiserror::Error;

#[derive(Debug, Error)]
pub enum BusError {
    #[cfg(feature = "store")]
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[cfg(feature = "store")]
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("nats: {0}")]
    Nats(String),
    #[error("event encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl BusError {
    pub fn nats(error: impl std::fmt::Display) -> Self {
        BusError::Nats(error.to_string())
    }
}
