//! `parley-sfu`: the selective forwarding unit for Parley's voice and video calls.
//!
//! Clients connect with the join token the api gave them (`POST /calls`, `accept`), exchange SDP
//! over a WebSocket (`/rtc`) and send their media to one UDP port (ICE-lite, DTLS-SRTP via
//! str0m). Every participant's audio and video goes to every other participant of the room.
//! Joins and leaves go back to the api over JetStream; the ends of participants' rights (call
//! ended, hung up, removed from the chat, logged out) come from the events stream and drop their
//! peers at once.

// Public where the fuzz targets (fuzz/) reach the parsers of what clients send: signaling frames
// and their SDP (`signaling`, `shard`), join tokens (`token`) and STUN datagrams (`stun`); the
// rest of those modules' types are public because the shard's inputs and settings name them.
mod config;
mod faults;
pub mod metrics;
pub mod registry;
mod reports;
pub mod rights;
pub mod router;
pub mod shard;
pub mod signaling;
pub mod stun;
pub mod token;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::TcpListener;
use poem::web::Data;
use poem::{handler, EndpointExt, Route, Server};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::config::SfuConfig;
use crate::metrics::SfuMetrics;
use crate::rights::Rights;
use crate::shard::{Shard, ShardSettings};
use crate::signaling::Signaling;
use crate::token::TokenVerifier;

/// Datagrams queued per shard before the router drops them.
const SHARD_QUEUE: usize = 8192;

#[handler]
fn metrics_endpoint(Data(metrics): Data<&Arc<SfuMetrics>>) -> String {
    metrics.render()
}

/// Ready once the SFU knows whose rights ended in the last join-token lifetime (so a fresh one
/// admits nobody it should refuse); until then 503, and joins are refused with 4503.
#[handler]
fn healthz(Data(signaling): Data<&Arc<Signaling>>) -> poem::Response {
    if signaling.rights.is_caught_up() {
        poem::Response::builder().body("ok")
    } else {
        poem::Response::builder().status(poem::http::StatusCode::SERVICE_UNAVAILABLE).body("starting")
    }
}

/// The SFU's process: serves until a shutdown signal (the binary, `main.rs`, only calls this).
pub fn run() -> anyhow::Result<()> {
    let env = parley_runtime::Env::from_process();
    // Signaling, NATS and the UDP router share a small runtime; each shard gets a thread and a
    // runtime of its own, so rooms on different shards never wait on each other.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async {
        let traces = parley_runtime::traces::init_from_env("parley-sfu", &env)?;
        let served = match SfuConfig::from_env(&env) {
            Ok(config) => serve(config).await,
            Err(error) => Err(error.into()),
        };
        traces.shutdown().await;
        served
    })
}

async fn serve(config: SfuConfig) -> anyhow::Result<()> {
    let metrics = Arc::new(SfuMetrics::new()?);
    let socket = Arc::new(UdpSocket::bind(config.udp_addr).await?);
    let advertised = config.advertised_addr();
    tracing::info!(udp = %socket.local_addr()?, %advertised, shards = config.shards, "parley-sfu media socket ready");

    let nats = config.nats.connect("parley-sfu").await?;
    let (report_tx, report_rx) = mpsc::unbounded_channel();
    tokio::spawn(reports::run(nats.clone(), config.stream.clone(), report_rx));

    let (route_tx, route_rx) = mpsc::unbounded_channel();
    let mut shard_senders = Vec::with_capacity(config.shards);
    for index in 0..config.shards {
        let (sender, receiver) = mpsc::channel(SHARD_QUEUE);
        shard_senders.push(sender);
        let shard = Shard::new(ShardSettings {
            drop_every_nth_rtp: config.drop_every_nth_rtp,
            socket: Arc::clone(&socket),
            advertised,
            peer_timeout: config.peer_timeout,
            rejoin_grace: config.rejoin_grace,
            index,
            routes: route_tx.clone(),
            reports: report_tx.clone(),
            metrics: Arc::clone(&metrics),
        });
        let shard_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new()
            .name(format!("sfu-shard-{index}"))
            .spawn(move || shard_runtime.block_on(shard.run(receiver)))?;
    }
    tokio::spawn(router::run(Arc::clone(&socket), shard_senders.clone(), route_rx, Arc::clone(&metrics)));
    let rights = Arc::new(Rights::default());
    tokio::spawn(rights::run(nats.clone(), config.stream.clone(), Arc::clone(&rights), shard_senders.clone()));

    let identity = config.identity.clone();
    tracing::info!(node = identity.node_id, url = identity.url, "reporting to the SFU directory");
    let stakes = registry::Stakes {
        rights: Arc::clone(&rights),
        shards: shard_senders.clone(),
        deadline: config.node_deadline,
        api_health_url: config.api_health_url.clone(),
    };
    tokio::spawn(registry::run(nats.clone(), identity.clone(), Arc::clone(&metrics), stakes));
    let tokens = TokenVerifier::new(config.jwks_url.clone(), &config.jwt_issuer).for_node(&identity.node_id);
    // The api may start after us: keep trying in the background; tokens are refused meanwhile.
    let signaling = Arc::new(Signaling { tokens, rights, shards: shard_senders, next_participant: AtomicU64::new(1) });
    let fetcher = Arc::clone(&signaling);
    tokio::spawn(async move {
        loop {
            match fetcher.tokens.refresh().await {
                Ok(keys) => {
                    tracing::info!(keys, "fetched the api's token keys");
                    return;
                }
                Err(error) => tracing::info!(%error, "api's JWKS not reachable yet; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    let faults = Arc::new(faults::Faults { shards: signaling.shards.clone() });
    let mut app = Route::new()
        .at("/rtc", poem::get(signaling::rtc))
        .at("/metrics", poem::get(metrics_endpoint))
        .at("/healthz", poem::get(healthz));
    if config.test_faults {
        tracing::warn!("PARLEY_SFU_TEST_FAULTS=1: POST /test/blackhole can cut any user off; tests only");
        app = app.at("/test/blackhole", poem::post(faults::blackhole));
    }
    let app = app.data(signaling).data(metrics).data(faults);
    tracing::info!(addr = %config.http_addr, "parley-sfu signaling listening");
    Server::new(TcpListener::bind(config.http_addr))
        .run_with_graceful_shutdown(app, parley_runtime::shutdown::signal(), Some(Duration::from_secs(5)))
        .await?;
    registry::withdraw(&nats, &identity).await;
    Ok(())
}
