use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Bus(#[from] parley_eventbus::BusError),
    #[error("event {event_id} could not be decoded: {source}")]
    Decode { event_id: String, source: serde_json::Error },
    #[error("nats: {0}")]
    Nats(String),
    #[error("inconsistent read model: {0}")]
    Inconsistent(String),
    #[error("unknown projection {0:?}")]
    UnknownProjection(String),
}
