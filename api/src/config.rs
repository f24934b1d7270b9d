//! Configuration from environment variables, with defaults that run a local stack unconfigured.
//! Every variable is listed in the README.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use parley_eventbus::stream::env_or;
use parley_eventbus::StreamSettings;

use crate::auth::rate_limit::Quota;

/// A value that must never be printed (logs, `Debug`).
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub register_per_ip: Quota,
    pub login_per_ip: Quota,
    pub login_per_account: Quota,
    pub refresh_per_ip: Quota,
    pub refresh_per_session: Quota,
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
    pub nats_url: String,
    pub stream: StreamSettings,
    pub data_dir: PathBuf,
    /// PKCS#8 PEM of the Ed25519 key that signs access tokens.
    pub jwt_private_key_pem: Option<Secret>,
    pub jwt_issuer: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub rate_limits: RateLimits,
    /// Rate-limit buckets kept at most (see `auth::rate_limit`).
    pub rate_limit_max_keys: usize,
    pub captcha: Option<CaptchaConfig>,
    /// How many proxies in front of the api append to `X-Forwarded-For`: the client address is
    /// the entry that many places from the right (0: the peer address, the header is ignored).
    pub trusted_proxy_hops: usize,
    pub max_json_body_bytes: usize,
    /// How long a command waits for its read model before answering anyway.
    pub read_your_writes_timeout: Duration,
    /// Core-NATS subject prefix for realtime wake-ups and ephemeral frames.
    pub realtime_prefix: String,
    /// A WebSocket that sends nothing (not even a pong) for this long is closed.
    pub ws_idle_timeout: Duration,
    /// A call nobody answered within this long is missed.
    pub call_ring_timeout: Duration,
    /// The SFU's signaling WebSocket, handed to call participants.
    pub sfu_url: String,
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
}

fn parse<T: std::str::FromStr>(name: &'static str, default: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    env_or(name, default).parse().map_err(|e: T::Err| ConfigError::Invalid { name, message: e.to_string() })
}

fn quota(name: &'static str, default: &str) -> Result<Quota, ConfigError> {
    env_or(name, default).parse().map_err(|message| ConfigError::Invalid { name, message })
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// S3-compatible storage when `PARLEY_S3_BUCKET` is set, else a directory under the data directory.
fn media_storage() -> Result<crate::media::storage::StorageConfig, ConfigError> {
    use crate::media::storage::StorageConfig;
    let Some(bucket) = optional("PARLEY_S3_BUCKET") else {
        let root = PathBuf::from(env_or("PARLEY_DATA_DIR", ".parley/data")).join("media");
        return Ok(StorageConfig::Local { root });
    };
    let required = |name: &'static str| {
        optional(name).ok_or(ConfigError::Invalid { name, message: "required with PARLEY_S3_BUCKET".into() })
    };
    Ok(StorageConfig::S3 {
        endpoint: optional("PARLEY_S3_ENDPOINT"),
        bucket,
        region: env_or("PARLEY_S3_REGION", "us-east-1"),
        access_key: required("PARLEY_S3_ACCESS_KEY_ID")?,
        secret_key: Secret(required("PARLEY_S3_SECRET_ACCESS_KEY")?),
        path_style: parse("PARLEY_S3_PATH_STYLE", "true")?,
    })
}

/// `PARLEY_RATE_LIMIT_MAX_KEYS`: 10 to 10,000,000 (each key costs a few hundred bytes at most).
fn rate_limit_max_keys() -> Result<usize, ConfigError> {
    const NAME: &str = "PARLEY_RATE_LIMIT_MAX_KEYS";
    let keys: usize = parse(NAME, &crate::auth::rate_limit::MAX_BUCKETS.to_string())?;
    if !(10..=10_000_000).contains(&keys) {
        return Err(ConfigError::Invalid { name: NAME, message: format!("{keys} is not between 10 and 10000000") });
    }
    Ok(keys)
}

/// `PARLEY_TRUSTED_PROXY_HOPS`, or 1 for the older `PARLEY_TRUST_FORWARDED_FOR=true` (one proxy).
fn trusted_proxy_hops() -> Result<usize, ConfigError> {
    const NAME: &str = "PARLEY_TRUSTED_PROXY_HOPS";
    if optional(NAME).is_some() {
        let hops: usize = parse(NAME, "0")?;
        if hops > 10 {
            return Err(ConfigError::Invalid { name: NAME, message: format!("{hops} proxies is more than 10") });
        }
        return Ok(hops);
    }
    Ok(usize::from(parse::<bool>("PARLEY_TRUST_FORWARDED_FOR", "false")?))
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let jwt_private_key_pem = match (optional("PARLEY_JWT_PRIVATE_KEY"), optional("PARLEY_JWT_PRIVATE_KEY_FILE")) {
            (Some(pem), _) => Some(Secret(pem)),
            (None, Some(path)) => Some(Secret(std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                name: "PARLEY_JWT_PRIVATE_KEY_FILE",
                message: format!("{path}: {e}"),
            })?)),
            (None, None) => None,
        };
        let captcha = optional("PARLEY_CAPTCHA_SECRET").map(|secret| CaptchaConfig {
            secret: Secret(secret),
            verify_url: env_or(
                "PARLEY_CAPTCHA_VERIFY_URL",
                "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            ),
        });
        Ok(Self {
            http_addr: parse("PARLEY_HTTP_ADDR", "127.0.0.1:8080")?,
            database_url: Secret(env_or("DATABASE_URL", "postgres://parley@127.0.0.1:55432/parley")),
            database_max_connections: parse("PARLEY_DATABASE_MAX_CONNECTIONS", "20")?,
            nats_url: env_or("NATS_URL", "nats://127.0.0.1:54222"),
            stream: StreamSettings::from_env(),
            data_dir: PathBuf::from(env_or("PARLEY_DATA_DIR", ".parley/data")),
            jwt_private_key_pem,
            jwt_issuer: env_or("PARLEY_JWT_ISSUER", "parley"),
            access_token_ttl: Duration::from_secs(parse::<u64>("PARLEY_ACCESS_TOKEN_TTL_SECS", "900")?.clamp(1, 900)),
            refresh_token_ttl: Duration::from_secs(parse::<u64>("PARLEY_REFRESH_TOKEN_TTL_DAYS", "30")? * 86_400),
            rate_limits: RateLimits {
                register_per_ip: quota("PARLEY_RATE_REGISTER_PER_IP", "10/3600")?,
                login_per_ip: quota("PARLEY_RATE_LOGIN_PER_IP", "30/60")?,
                login_per_account: quota("PARLEY_RATE_LOGIN_PER_ACCOUNT", "10/300")?,
                refresh_per_ip: quota("PARLEY_RATE_REFRESH_PER_IP", "60/60")?,
                refresh_per_session: quota("PARLEY_RATE_REFRESH_PER_SESSION", "10/60")?,
            },
            rate_limit_max_keys: rate_limit_max_keys()?,
            captcha,
            trusted_proxy_hops: trusted_proxy_hops()?,
            max_json_body_bytes: parse("PARLEY_MAX_JSON_BODY_BYTES", "1048576")?,
            read_your_writes_timeout: Duration::from_millis(parse("PARLEY_READ_YOUR_WRITES_TIMEOUT_MS", "5000")?),
            realtime_prefix: parley_eventbus::stream::realtime_prefix_from_env(),
            ws_idle_timeout: Duration::from_secs(parse::<u64>("PARLEY_WS_IDLE_TIMEOUT_SECS", "60")?.max(3)),
            call_ring_timeout: Duration::from_secs(parse::<u64>("PARLEY_CALL_RING_TIMEOUT_SECS", "45")?.max(1)),
            sfu_url: env_or("PARLEY_SFU_URL", "ws://127.0.0.1:8081/rtc"),
            sfu_token_ttl: Duration::from_secs(parse::<u64>("PARLEY_SFU_TOKEN_TTL_SECS", "60")?.clamp(5, 600)),
            media_storage: media_storage()?,
            media_prefix: optional("PARLEY_MEDIA_PREFIX"),
            media_max_bytes: parse("PARLEY_MEDIA_MAX_BYTES", "104857600")?,
            to_device_ttl: parley_eventbus::stream::to_device_ttl_from_env(),
            to_device_queue_max: parse::<i64>("PARLEY_TO_DEVICE_QUEUE_MAX", "1000")?.max(1),
            media_unattached_ttl: Duration::from_secs(parse("PARLEY_MEDIA_UNATTACHED_TTL_SECS", "86400")?),
            web_dir: PathBuf::from(env_or("PARLEY_WEB_DIR", "web/apps/web/out")),
        })
    }
}
