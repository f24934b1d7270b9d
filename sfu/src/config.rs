//! Configuration from environment variables; the defaults run beside a local `scripts/dev` stack.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use parley_eventbus::stream::NatsConnection;
use parley_eventbus::StreamSettings;
use parley_runtime::{ConfigError, Env};

use crate::registry::NodeIdentity;

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
    /// This node in the SFU directory the api places calls by.
    pub identity: NodeIdentity,
    /// Rooms are spread over this many single-threaded shards (default: one per core).
    pub shards: usize,
    /// A participant we have heard nothing from (no STUN, no RTP/RTCP) for this long is removed.
    pub peer_timeout: Duration,
    /// A participant the SFU lost without a `leave` (socket dropped, ICE or liveness timeout)
    /// has this long to join again before the api hears it left: a phone changing networks
    /// must not end a 1:1 call.
    pub rejoin_grace: Duration,
    /// A node that could not report to the directory for this long is dead to the api, which
    /// moves its calls elsewhere; the node drops its participants then too, since it no longer
    /// hears whose right to be in a call ended (the api's `PARLEY_SFU_NODE_DEADLINE_MS`).
    pub node_deadline: Duration,
    /// The api's `/healthz` (default: beside `PARLEY_SFU_JWKS_URL`): asked, when this node
    /// cannot report, whether the api is on NATS and so moving this node's calls.
    pub api_health_url: String,
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
        let http_addr = env.parse("PARLEY_SFU_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8081)))?;
        let jwks_url = env.string("PARLEY_SFU_JWKS_URL", "http://127.0.0.1:8080/.well-known/jwks.json")?;
        let beside_jwks = match jwks_url.strip_suffix("/.well-known/jwks.json") {
            Some(origin) => format!("{origin}/healthz"),
            None => "http://127.0.0.1:8080/healthz".to_owned(),
        };
        Ok(Self {
            api_health_url: env.string("PARLEY_SFU_API_HEALTH_URL", &beside_jwks)?,
            identity: identity_from_env(env, http_addr)?,
            http_addr,
            udp_addr,
            advertised_ip,
            jwks_url,
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
            node_deadline: Duration::from_millis(env.parse_within(
                "PARLEY_SFU_NODE_DEADLINE_MS",
                3000,
                1500..=60_000,
            )?),
            test_faults: env.parse_within::<u8>("PARLEY_SFU_TEST_FAULTS", 0, 0..=1)? == 1,
            drop_every_nth_rtp: env.parse("PARLEY_SFU_TEST_DROP_EVERY_NTH_RTP", 0)?,
        })
    }

    /// The UDP address clients are told to use.
    pub(crate) fn advertised_addr(&self) -> SocketAddr {
        SocketAddr::new(self.advertised_ip, self.udp_addr.port())
    }
}

/// The node's id (default: the host name, a pod's name in Kubernetes), the URL clients reach its
/// signaling at, and the directory's KV bucket.
fn identity_from_env(env: &Env, http_addr: SocketAddr) -> Result<NodeIdentity, ConfigError> {
    let default_id = match env.optional("HOSTNAME")? {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => format!("sfu-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    };
    let node_id = env.string("PARLEY_SFU_NODE_ID", &default_id)?;
    // A KV key, and a name operators read in logs.
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if node_id.is_empty() || node_id.len() > 128 || !node_id.chars().all(valid) {
        return Err(ConfigError::Invalid { name: "PARLEY_SFU_NODE_ID", message: "1-128 of [A-Za-z0-9._-]".into() });
    }
    Ok(NodeIdentity {
        node_id,
        url: env.string("PARLEY_SFU_PUBLIC_URL", &format!("ws://{http_addr}/rtc"))?,
        bucket: env.string("PARLEY_NATS_SFU_NODES_BUCKET", "parley_sfu_nodes")?,
    })
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
        assert_eq!(config.api_health_url, "http://127.0.0.1:8080/healthz");
        let beside = Env::from_pairs([("PARLEY_SFU_JWKS_URL", "https://api.example/.well-known/jwks.json")]);
        assert_eq!(SfuConfig::from_env(&beside).unwrap().api_health_url, "https://api.example/healthz");
    }

    #[test]
    fn settings_out_of_range_or_missing_are_refused_naming_the_variable() {
        for (name, value, refused) in [
            ("PARLEY_SFU_SHARDS", "0", "PARLEY_SFU_SHARDS"),
            ("PARLEY_SFU_PEER_TIMEOUT_MS", "100", "PARLEY_SFU_PEER_TIMEOUT_MS"),
            ("PARLEY_SFU_TEST_FAULTS", "2", "PARLEY_SFU_TEST_FAULTS"),
            ("PARLEY_SFU_ADVERTISED_IP", "not-an-ip", "PARLEY_SFU_ADVERTISED_IP"),
            ("PARLEY_SFU_UDP_ADDR", "0.0.0.0:50000", "PARLEY_SFU_ADVERTISED_IP"),
            ("PARLEY_SFU_NODE_ID", "no spaces", "PARLEY_SFU_NODE_ID"),
            ("PARLEY_SFU_NODE_ID", "a>b", "PARLEY_SFU_NODE_ID"),
            ("PARLEY_SFU_NODE_DEADLINE_MS", "100", "PARLEY_SFU_NODE_DEADLINE_MS"),
        ] {
            let error = SfuConfig::from_env(&Env::from_pairs([(name, value)])).unwrap_err().to_string();
            assert!(error.starts_with(refused), "{name}={value}: {error}");
        }
    }
}
