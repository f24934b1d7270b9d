//! Configuration from environment variables; the defaults run beside a local `scripts/dev` stack.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use parley_eventbus::stream::env_or;
use parley_eventbus::StreamSettings;

#[derive(Debug, Clone)]
pub(crate) struct SfuConfig {
    /// Signaling WebSocket (`/rtc`), `/metrics` and `/healthz`.
    pub http_addr: SocketAddr,
    /// The one UDP socket all media goes through.
    pub udp_addr: SocketAddr,
    /// The address put in ICE candidates: what clients send media to (a public IP behind NAT).
    pub advertised_ip: IpAddr,
    /// Where the api publishes the key that signs join tokens.
    pub jwks_url: String,
    pub jwt_issuer: String,
    pub nats_url: String,
    pub stream: StreamSettings,
    /// Rooms are spread over this many single-threaded shards (default: one per core).
    pub shards: usize,
    /// A participant we have heard nothing from (no STUN, no RTP/RTCP) for this long is removed.
    pub peer_timeout: Duration,
    /// A participant the SFU lost without a `leave` (socket dropped, ICE or liveness timeout)
    /// has this long to join again before the api hears it left: a phone changing networks
    /// must not end a 1:1 call.
    pub rejoin_grace: Duration,
    /// Test-only fault injection: `POST /test/blackhole` cuts one user's UDP for a while.
    pub test_faults: bool,
    /// Fault injection for tests: drop every Nth RTP datagram over 200 bytes (video, in
    /// practice) the SFU sends (0: never), so that
    /// receivers' NACKs and the SFU's retransmissions can be watched working.
    pub drop_every_nth_rtp: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub(crate) struct ConfigError {
    name: &'static str,
    message: String,
}

fn parse<T: std::str::FromStr>(name: &'static str, default: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    env_or(name, default).parse().map_err(|e: T::Err| ConfigError { name, message: e.to_string() })
}

impl SfuConfig {
    pub(crate) fn from_env() -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        let udp_addr: SocketAddr = parse("PARLEY_SFU_UDP_ADDR", "127.0.0.1:50000")?;
        let advertised_ip = match std::env::var("PARLEY_SFU_ADVERTISED_IP").ok().filter(|v| !v.is_empty()) {
            Some(ip) => {
                ip.parse().map_err(|e| ConfigError { name: "PARLEY_SFU_ADVERTISED_IP", message: format!("{e}") })?
            }
            None if udp_addr.ip().is_unspecified() => {
                return Err(ConfigError {
                    name: "PARLEY_SFU_ADVERTISED_IP",
                    message: "required when PARLEY_SFU_UDP_ADDR binds every interface".into(),
                })
            }
            None => udp_addr.ip(),
        };
        Ok(Self {
            http_addr: parse("PARLEY_SFU_HTTP_ADDR", "127.0.0.1:8081")?,
            udp_addr,
            advertised_ip,
            jwks_url: env_or("PARLEY_SFU_JWKS_URL", "http://127.0.0.1:8080/.well-known/jwks.json"),
            jwt_issuer: env_or("PARLEY_JWT_ISSUER", "parley"),
            nats_url: env_or("NATS_URL", "nats://127.0.0.1:54222"),
            stream: StreamSettings::from_env(),
            shards: parse::<usize>("PARLEY_SFU_SHARDS", &cores.to_string())?.max(1),
            peer_timeout: Duration::from_millis(parse::<u64>("PARLEY_SFU_PEER_TIMEOUT_MS", "10000")?.max(500)),
            rejoin_grace: Duration::from_millis(parse::<u64>("PARLEY_SFU_REJOIN_GRACE_MS", "10000")?),
            test_faults: parse::<u8>("PARLEY_SFU_TEST_FAULTS", "0")? == 1,
            drop_every_nth_rtp: parse("PARLEY_SFU_TEST_DROP_EVERY_NTH_RTP", "0")?,
        })
    }

    /// The UDP address clients are told to use.
    pub(crate) fn advertised_addr(&self) -> SocketAddr {
        SocketAddr::new(self.advertised_ip, self.udp_addr.port())
    }
}
