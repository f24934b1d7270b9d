//! Configuration from environment variables, with defaults that run a local stack unconfigured.
//! Every variable is listed in the README.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use parley_eventbus::stream::{realtime_prefix_from_env, to_device_ttl_from_env, NatsConnection};
use parley_eventbus::StreamSettings;
pub use parley_runtime::{ConfigError, Env, Secret};

use crate::auth::rate_limit::Quota;
use crate::media::storage::StorageConfig;

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub register_per_ip: Quota,
    pub login_per_ip: Quota,
    pub login_per_account: Quota,
    pub refresh_per_ip: Quota,
    pub refresh_per_session: Quota,
}

impl RateLimits {
    /// After this long untouched, every bucket is full again.
    pub fn longest_window(&self) -> Duration {
        [self.register_per_ip, self.login_per_ip, self.login_per_account, self.refresh_per_ip, self.refresh_per_session]
            .iter()
            .map(|quota| quota.window)
            .max()
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct CaptchaConfig {
    pub secret: Secret,
    pub verify_url: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub database_url: Secret,
    pub database_max_connections: u32,
    pub nats: NatsConnection,
    pub stream: StreamSettings,
    pub data_dir: PathBuf,
    /// PKCS#8 PEM of the Ed25519 key that signs access tokens.
    pub jwt_private_key_pem: Option<Secret>,
    /// Public keys (PEM) whose tokens are accepted besides the signing key's: a key rotation.
    pub jwt_accepted_public_keys: Option<String>,
    pub jwt_issuer: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub rate_limits: RateLimits,
    /// Rate-limit buckets kept at most (see `auth::rate_limit`).
    pub rate_limit_max_keys: usize,
    /// The NATS KV bucket every replica keeps its rate-limit buckets in (`auth::shared_limits`).
    pub rate_limit_bucket: String,
    pub captcha: Option<CaptchaConfig>,
    /// When set, `GET /metrics` wants `Authorization: Bearer <this>` (the api's port is public).
    pub metrics_token: Option<Secret>,
    /// How many proxies in front of the api append to `X-Forwarded-For`: the client address is
    /// the entry that many places from the right (0: the peer address, the header is ignored).
    pub trusted_proxy_hops: usize,
    pub max_json_body_bytes: usize,
    /// A request body that sends nothing for this long is refused (400) and its request ended.
    pub body_stall_timeout: Duration,
    /// How long a command waits for its read model before answering anyway.
    pub read_your_writes_timeout: Duration,
    /// Core-NATS subject prefix for realtime wake-ups and ephemeral frames.
    pub realtime_prefix: String,
    /// A WebSocket that sends nothing (not even a pong) for this long is closed.
    pub ws_idle_timeout: Duration,
    /// How often each socket reads its feed whatever it heard (the last resort against a lost
    /// realtime message; the hub catches every socket up after the losses it can see).
    pub ws_poll: Duration,
    /// A call nobody answered within this long is missed.
    pub call_ring_timeout: Duration,
    /// The SFU's signaling WebSocket, handed to call participants.
    /// Where clients reach the SFU when no node is in the directory (a single-node setup).
    pub sfu_url: String,
    /// The NATS KV bucket SFU nodes report themselves to (`calls::placement`).
    pub sfu_nodes_bucket: String,
    /// An SFU node not heard from for this long is dead: its calls move to another node.
    pub sfu_node_deadline: Duration,
    /// How long a join token admits its holder to the SFU.
    pub sfu_token_ttl: Duration,
    pub media_storage: crate::media::storage::StorageConfig,
    /// Put before every media key (optional).
    pub media_prefix: Option<String>,
    /// How long an unacknowledged to-device message is kept.
    pub to_device_ttl: Duration,
    /// Unexpired to-device messages one device's queue may hold.
    pub to_device_queue_max: i64,
    /// Largest upload accepted.
    pub media_max_bytes: u64,
    /// Uploads attached to no message and no profile are removed after this long.
    pub media_unattached_ttl: Duration,
    /// The web app's static export, served under `/app/`.
    pub web_dir: PathBuf,
}

/// S3-compatible storage when `PARLEY_S3_BUCKET` is set, else a directory under the data directory.
fn media_storage(env: &Env, data_dir: &std::path::Path) -> Result<StorageConfig, ConfigError> {
    let Some(bucket) = env.optional("PARLEY_S3_BUCKET")? else {
        return Ok(StorageConfig::Local { root: data_dir.join("media") });
    };
    const WITH_BUCKET: &str = "with PARLEY_S3_BUCKET";
    Ok(StorageConfig::S3 {
        endpoint: env.optional("PARLEY_S3_ENDPOINT")?.map(str::to_owned),
        bucket: bucket.to_owned(),
        region: env.string("PARLEY_S3_REGION", "us-east-1")?,
        access_key: env.required("PARLEY_S3_ACCESS_KEY_ID", WITH_BUCKET)?,
        secret_key: Secret::new(env.required("PARLEY_S3_SECRET_ACCESS_KEY", WITH_BUCKET)?),
        path_style: env.parse("PARLEY_S3_PATH_STYLE", true)?,
    })
}

/// `PARLEY_TRUSTED_PROXY_HOPS` (0 to 10), or 1 for the older `PARLEY_TRUST_FORWARDED_FOR=true`.
fn trusted_proxy_hops(env: &Env) -> Result<usize, ConfigError> {
    const NAME: &str = "PARLEY_TRUSTED_PROXY_HOPS";
    if env.optional(NAME)?.is_some() {
        return env.parse_within(NAME, 0, 0..=10);
    }
    Ok(usize::from(env.parse("PARLEY_TRUST_FORWARDED_FOR", false)?))
}

/// The token-signing key, inline or from a file (a mounted Kubernetes secret).
fn jwt_private_key_pem(env: &Env) -> Result<Option<Secret>, ConfigError> {
    if let Some(pem) = env.optional_secret("PARLEY_JWT_PRIVATE_KEY")? {
        return Ok(Some(pem));
    }
    let Some(path) = env.optional("PARLEY_JWT_PRIVATE_KEY_FILE")? else { return Ok(None) };
    let pem = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Invalid { name: "PARLEY_JWT_PRIVATE_KEY_FILE", message: format!("{path}: {e}") })?;
    Ok(Some(Secret::new(pem)))
}

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn millis(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

impl Config {
    /// Every variable is in the README's table, with the range it must lie in.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let captcha = match env.optional_secret("PARLEY_CAPTCHA_SECRET")? {
            Some(secret) => Some(CaptchaConfig {
                secret,
                verify_url: env
                    .string("PARLEY_CAPTCHA_VERIFY_URL", "https://challenges.cloudflare.com/turnstile/v0/siteverify")?,
            }),
            None => None,
        };
        let data_dir = PathBuf::from(env.string("PARLEY_DATA_DIR", ".parley/data")?);
        const DAY: u64 = 86_400;
        Ok(Self {
            http_addr: env.parse("PARLEY_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            database_url: env.secret("DATABASE_URL", "postgres://parley@127.0.0.1:55432/parley")?,
            database_max_connections: env.parse_within("PARLEY_DATABASE_MAX_CONNECTIONS", 20, 1..=1000)?,
            nats: NatsConnection::from_env(env)?,
            stream: StreamSettings::from_env(env)?,
            media_storage: media_storage(env, &data_dir)?,
            data_dir,
            jwt_private_key_pem: jwt_private_key_pem(env)?,
            jwt_accepted_public_keys: env.optional("PARLEY_JWT_ACCEPTED_PUBLIC_KEYS")?.map(str::to_owned),
            jwt_issuer: env.string("PARLEY_JWT_ISSUER", "parley")?,
            access_token_ttl: secs(env.parse_within("PARLEY_ACCESS_TOKEN_TTL_SECS", 900, 1..=900)?),
            refresh_token_ttl: secs(env.parse_within("PARLEY_REFRESH_TOKEN_TTL_DAYS", 30, 1..=365)? * DAY),
            rate_limits: RateLimits {
                register_per_ip: env.parse("PARLEY_RATE_REGISTER_PER_IP", Quota::new(10, 3600))?,
                login_per_ip: env.parse("PARLEY_RATE_LOGIN_PER_IP", Quota::new(30, 60))?,
                login_per_account: env.parse("PARLEY_RATE_LOGIN_PER_ACCOUNT", Quota::new(10, 300))?,
                refresh_per_ip: env.parse("PARLEY_RATE_REFRESH_PER_IP", Quota::new(60, 60))?,
                refresh_per_session: env.parse("PARLEY_RATE_REFRESH_PER_SESSION", Quota::new(10, 60))?,
            },
            // Each bucket costs a few hundred bytes at most.
            rate_limit_max_keys: env.parse_within(
                "PARLEY_RATE_LIMIT_MAX_KEYS",
                crate::auth::rate_limit::MAX_BUCKETS,
                10..=10_000_000,
            )?,
            rate_limit_bucket: env.string("PARLEY_NATS_RATE_LIMIT_BUCKET", "parley_rate_limits")?,
            captcha,
            metrics_token: env.optional_secret("PARLEY_METRICS_TOKEN")?,
            trusted_proxy_hops: trusted_proxy_hops(env)?,
            max_json_body_bytes: env.parse_within("PARLEY_MAX_JSON_BODY_BYTES", 1 << 20, 1024..=64 << 20)?,
            body_stall_timeout: secs(env.parse_within("PARLEY_BODY_STALL_TIMEOUT_SECS", 30, 1..=600)?),
            read_your_writes_timeout: millis(env.parse_within(
                "PARLEY_READ_YOUR_WRITES_TIMEOUT_MS",
                5000,
                0..=60_000,
            )?),
            realtime_prefix: realtime_prefix_from_env(env)?,
            ws_idle_timeout: secs(env.parse_within("PARLEY_WS_IDLE_TIMEOUT_SECS", 60, 3..=3600)?),
            ws_poll: secs(env.parse_within("PARLEY_WS_POLL_SECS", 120, 1..=3600)?),
            call_ring_timeout: secs(env.parse_within("PARLEY_CALL_RING_TIMEOUT_SECS", 45, 1..=600)?),
            sfu_url: env.string("PARLEY_SFU_URL", "ws://127.0.0.1:8081/rtc")?,
            sfu_nodes_bucket: env.string("PARLEY_NATS_SFU_NODES_BUCKET", "parley_sfu_nodes")?,
            sfu_node_deadline: millis(env.parse_within("PARLEY_SFU_NODE_DEADLINE_MS", 3000, 1500..=60_000)?),
            sfu_token_ttl: secs(env.parse_within("PARLEY_SFU_TOKEN_TTL_SECS", 60, 5..=600)?),
            media_prefix: env.optional("PARLEY_MEDIA_PREFIX")?.map(str::to_owned),
            media_max_bytes: env.parse_within("PARLEY_MEDIA_MAX_BYTES", 100 << 20, 1..=1 << 40)?,
            to_device_ttl: to_device_ttl_from_env(env)?,
            to_device_queue_max: env.parse_within("PARLEY_TO_DEVICE_QUEUE_MAX", 1000, 1..=1_000_000)?,
            media_unattached_ttl: secs(env.parse_within("PARLEY_MEDIA_UNATTACHED_TTL_SECS", DAY, 1..=365 * DAY)?),
            web_dir: PathBuf::from(env.string("PARLEY_WEB_DIR", "web/apps/web/out")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Config, Env};

    #[test]
    fn defaults_run_a_local_stack() {
        let config = Config::from_env(&Env::default()).unwrap();
        assert_eq!(config.access_token_ttl.as_secs(), 900);
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn settings_out_of_range_are_refused_not_clamped() {
        for (name, value) in [
            ("PARLEY_ACCESS_TOKEN_TTL_SECS", "901"),
            ("PARLEY_ACCESS_TOKEN_TTL_SECS", "0"),
            ("PARLEY_WS_IDLE_TIMEOUT_SECS", "2"),
            ("PARLEY_CALL_RING_TIMEOUT_SECS", "0"),
            ("PARLEY_SFU_TOKEN_TTL_SECS", "4"),
            ("PARLEY_SFU_TOKEN_TTL_SECS", "601"),
            ("PARLEY_TO_DEVICE_QUEUE_MAX", "0"),
            ("PARLEY_TRUSTED_PROXY_HOPS", "11"),
            ("PARLEY_RATE_LIMIT_MAX_KEYS", "9"),
            ("PARLEY_DATABASE_MAX_CONNECTIONS", "0"),
            ("PARLEY_RATE_LOGIN_PER_IP", "10"),
            ("PARLEY_HTTP_ADDR", "localhost"),
        ] {
            let error = Config::from_env(&Env::from_pairs([(name, value)])).unwrap_err().to_string();
            assert!(error.starts_with(&format!("{name}: ")), "{name}={value}: {error}");
        }
    }

    #[test]
    fn s3_needs_its_keys_and_never_prints_them() {
        let error = Config::from_env(&Env::from_pairs([("PARLEY_S3_BUCKET", "b")])).unwrap_err().to_string();
        assert!(error.starts_with("PARLEY_S3_ACCESS_KEY_ID: required"), "{error}");
        let env = Env::from_pairs([
            ("PARLEY_S3_BUCKET", "b"),
            ("PARLEY_S3_ACCESS_KEY_ID", "key"),
            ("PARLEY_S3_SECRET_ACCESS_KEY", "s3-hunter2"),
            ("DATABASE_URL", "postgres://parley:db-hunter2@db/parley"),
            ("PARLEY_CAPTCHA_SECRET", "captcha-hunter2"),
            ("PARLEY_JWT_PRIVATE_KEY", "pem-hunter2"),
            ("PARLEY_METRICS_TOKEN", "metrics-hunter2"),
        ]);
        let printed = format!("{:?}", Config::from_env(&env).unwrap());
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
