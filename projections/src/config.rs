//! Configuration from the environment (see the README's table).

use parley_eventbus::stream::{realtime_prefix_from_env, to_device_ttl_from_env, NatsConnection};
use parley_eventbus::StreamSettings;
use parley_runtime::{ConfigError, Env, Secret};

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub database_url: Secret,
    pub nats: NatsConnection,
    /// `/metrics` and `/healthz`.
    pub http_addr: std::net::SocketAddr,
    pub stream: StreamSettings,
    /// Prefix of the durable consumer names (`<prefix>-<projection>`).
    pub consumer_prefix: String,
    pub realtime_prefix: String,
    /// Age after which an unacknowledged to-device message is deleted.
    pub to_device_ttl: std::time::Duration,
}

impl ProjectorConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: env.secret("DATABASE_URL", "postgres://parley@127.0.0.1:55432/parley")?,
            nats: NatsConnection::from_env(env)?,
            http_addr: env.parse("PARLEY_PROJECTIONS_HTTP_ADDR", std::net::SocketAddr::from(([127, 0, 0, 1], 8082)))?,
            stream: StreamSettings::from_env(env)?,
            consumer_prefix: env.string("PARLEY_NATS_CONSUMER_PREFIX", "parley")?,
            realtime_prefix: realtime_prefix_from_env(env)?,
            to_device_ttl: to_device_ttl_from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use parley_runtime::Env;

    use super::ProjectorConfig;

    #[test]
    fn the_database_password_never_prints() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://parley:hunter2@db/parley")]);
        let config = ProjectorConfig::from_env(&env).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        for (name, value) in [
            ("PARLEY_TO_DEVICE_TTL_SECS", "59"),
            ("PARLEY_NATS_STREAM_REPLICAS", "0"),
            ("PARLEY_NATS_STREAM_MAX_AGE_HOURS", "x"),
        ] {
            let error = ProjectorConfig::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }
}
