//! Configuration from the environment (see the README's table).

use parley_eventbus::stream::env_or as var;
use parley_eventbus::StreamSettings;

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub database_url: String,
    pub nats_url: String,
    pub stream: StreamSettings,
    /// Prefix of the durable consumer names (`<prefix>-<projection>`).
    pub consumer_prefix: String,
    pub realtime_prefix: String,
    /// Age after which an unacknowledged to-device message is deleted.
    pub to_device_ttl: std::time::Duration,
}

impl ProjectorConfig {
    pub fn from_env() -> Self {
        Self {
            database_url: var("DATABASE_URL", "postgres://parley@127.0.0.1:55432/parley"),
            nats_url: var("NATS_URL", "nats://127.0.0.1:54222"),
            stream: StreamSettings::from_env(),
            consumer_prefix: var("PARLEY_NATS_CONSUMER_PREFIX", "parley"),
            realtime_prefix: parley_eventbus::stream::realtime_prefix_from_env(),
            to_device_ttl: parley_eventbus::stream::to_device_ttl_from_env(),
        }
    }
}
