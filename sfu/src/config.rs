//! Configuration from environment variables; the defaults run beside a local `scripts/dev` stack.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use parley_eventbus::stream::NatsConnection;
use parley_eventbus::StreamSettings;
use parley_runtime::{ConfigError, Env};

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
    pub nats: NatsConnection,
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

impl SfuConfig {
    pub(crate) fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        let udp_addr: SocketAddr = env.parse("PARLEY_SFU_UDP_ADDR", SocketAddr::from(([127, 0, 0, 1], 50000)))?;
        let advertised_ip = match env.optional("PARLEY_SFU_ADVERTISED_IP")? {
            Some(_) => env.parse("PARLEY_SFU_ADVERTISED_IP", udp_addr.ip())?,
            None if udp_addr.ip().is_unspecified() => {
                return Err(ConfigError::Missing {
                    name: "PARLEY_SFU_ADVERTISED_IP",
                    when: "when PARLEY_SFU_UDP_ADDR binds every interface",
                })
            }
            None => udp_addr.ip(),
        };
        Ok(Self {
            http_addr: env.parse("PARLEY_SFU_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8081)))?,
            udp_addr,
            advertised_ip,
            jwks_url: env.string("PARLEY_SFU_JWKS_URL", "http://127.0.0.1:8080/.well-known/jwks.json")?,
            jwt_issuer: env.string("PARLEY_JWT_ISSUER", "parley")?,
            nats: NatsConnection::from_env(env)?,
            stream: StreamSettings::from_env(env)?,
            shards: env.parse_within("PARLEY_SFU_SHARDS", cores, 1..=256)?,
            peer_timeout: Duration::from_millis(env.parse_within(
                "PARLEY_SFU_PEER_TIMEOUT_MS",
                10_000,
                500..=600_000,
            )?),
            rejoin_grace: Duration::from_millis(env.parse_within("PARLEY_SFU_REJOIN_GRACE_MS", 10_000, 0..=600_000)?),
            test_faults: env.parse_within::<u8>("PARLEY_SFU_TEST_FAULTS", 0, 0..=1)? == 1,
            drop_every_nth_rtp: env.parse("PARLEY_SFU_TEST_DROP_EVERY_NTH_RTP", 0)?,
        })
    }

    /// The UDP address clients are told to use.
    pub(crate) fn advertised_addr(&self) -> SocketAddr {
        SocketAddr::new(self.advertised_ip, self.udp_addr.port())
    }
}

#[cfg(test)]
mod tests {
    use parley_runtime::Env;

    use super::SfuConfig;

    #[test]
    fn defaults_run_beside_a_local_stack() {
        let config = SfuConfig::from_env(&Env::default()).unwrap();
        assert_eq!(config.advertised_addr().to_string(), "127.0.0.1:50000");
        assert!(config.shards >= 1);
    }

    #[test]
    fn settings_out_of_range_or_missing_are_refused_naming_the_variable() {
        for (name, value, refused) in [
            ("PARLEY_SFU_SHARDS", "0", "PARLEY_SFU_SHARDS"),
            ("PARLEY_SFU_PEER_TIMEOUT_MS", "100", "PARLEY_SFU_PEER_TIMEOUT_MS"),
            ("PARLEY_SFU_TEST_FAULTS", "2", "PARLEY_SFU_TEST_FAULTS"),
            ("PARLEY_SFU_ADVERTISED_IP", "not-an-ip", "PARLEY_SFU_ADVERTISED_IP"),
            ("PARLEY_SFU_UDP_ADDR", "0.0.0.0:50000", "PARLEY_SFU_ADVERTISED_IP"),
        ] {
            let error = SfuConfig::from_env(&Env::from_pairs([(name, value)])).unwrap_err().to_string();
            assert!(error.starts_with(refused), "{name}={value}: {error}");
        }
    }
}
