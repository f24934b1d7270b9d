//! This node in the SFU directory: every second it writes where clients reach it and its load
//! (`parley_domain::call::SfuNode`) under its node id in a NATS KV bucket, which every api
//! replica follows to place calls. A node that stops writing is dead to the api after a few
//! seconds and its calls move elsewhere; one that shuts down cleanly withdraws at once.
//!
//! A node that cannot write for as long while the api is on NATS (its `/healthz` says so) is cut
//! off alone: the api has moved its calls, and the node no longer hears whose right to be in a
//! call ended, so it drops its participants and admits nobody until it writes again. When the
//! api is off NATS too (an outage of NATS itself), nothing moves and no right can end, so the
//! node keeps its calls going.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use chrono::Utc;
use parley_domain::call::SfuNode;
use tokio::sync::mpsc;

use crate::metrics::SfuMetrics;
use crate::rights::Rights;
use crate::shard::ShardInput;

/// How often the node reports itself (the api's deadline is a few of these).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Who this node is in the directory.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub node_id: String,
    /// The signaling WebSocket clients are sent to.
    pub url: String,
    pub bucket: String,
}

/// What losing the directory means to this node.
pub(crate) struct Stakes {
    pub rights: Arc<Rights>,
    pub shards: Vec<mpsc::Sender<ShardInput>>,
    /// Unreported for this long, the node is dead to the api.
    pub deadline: Duration,
    /// The api's `/healthz`, which says whether the api is on NATS.
    pub api_health_url: String,
}

async fn store(nats: &async_nats::Client, bucket: &str) -> anyhow::Result<kv::Store> {
    let jetstream = async_nats::jetstream::new(nats.clone());
    Ok(parley_eventbus::stream::sfu_nodes_bucket(&jetstream, bucket).await?)
}

/// Reports this node every second, for the life of the process.
pub(crate) async fn run(nats: async_nats::Client, identity: NodeIdentity, metrics: Arc<SfuMetrics>, stakes: Stakes) {
    let mut reporter = Reporter { nats, identity, metrics, store: None, last: (Instant::now(), 0) };
    reporter.last.1 = reporter.metrics.packets();
    let mut last_reported = Instant::now();
    let http = reqwest::Client::builder().timeout(HEARTBEAT).build().unwrap_or_default();
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // A put waits for NATS, which may be gone: never longer than a heartbeat.
        let reported = tokio::time::timeout(HEARTBEAT, reporter.report()).await;
        let node = &reporter.identity.node_id;
        if matches!(reported, Ok(true)) {
            last_reported = Instant::now();
            if stakes.rights.set_cut_off(false) {
                tracing::info!(node, "back in the SFU directory; admitting participants again");
            }
        } else if last_reported.elapsed() >= stakes.deadline
            && api_is_on_nats(&http, &stakes.api_health_url).await
            && stakes.rights.set_cut_off(true)
        {
            tracing::warn!(
                node,
                "cut off from the SFU directory: dropping every participant (the api moves the calls)"
            );
            for shard in &stakes.shards {
                let _ = shard.send(ShardInput::Evacuate).await;
            }
        }
    }
}

/// Whether the api answers that it is on NATS (and so moves this node's calls elsewhere).
async fn api_is_on_nats(http: &reqwest::Client, url: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Health {
        nats: bool,
    }
    let Ok(response) = http.get(url).send().await else { return false };
    response.json::<Health>().await.is_ok_and(|health| health.nats)
}

struct Reporter {
    nats: async_nats::Client,
    identity: NodeIdentity,
    metrics: Arc<SfuMetrics>,
    store: Option<kv::Store>,
    /// When the last report was made, and the packet count then.
    last: (Instant, u64),
}

impl Reporter {
    /// Writes this node's report; whether it is in the directory now.
    async fn report(&mut self) -> bool {
        if self.store.is_none() {
            match store(&self.nats, &self.identity.bucket).await {
                Ok(opened) => self.store = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, bucket = self.identity.bucket, "cannot open the SFU node bucket yet");
                    return false;
                }
            }
        }
        let Some(kv) = &self.store else { return false };
        let (now, packets) = (Instant::now(), self.metrics.packets());
        let seconds = now.duration_since(self.last.0).as_secs_f64().max(0.001);
        let per_second = (packets.saturating_sub(self.last.1) as f64 / seconds).round() as u64;
        self.last = (now, packets);
        let (rooms, participants) = self.metrics.load();
        let node = SfuNode {
            node_id: self.identity.node_id.clone(),
            url: self.identity.url.clone(),
            rooms,
            participants,
            packets_per_second: per_second,
            at: Utc::now(),
        };
        let value = match serde_json::to_vec(&node) {
            Ok(value) => value,
            Err(error) => {
                tracing::error!(%error, "cannot encode this node's report");
                return false;
            }
        };
        match kv.put(&self.identity.node_id, value.into()).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, "could not report this node to the SFU directory");
                false
            }
        }
    }
}

/// Leaves the directory (a clean shutdown): the api stops placing calls here at once.
pub async fn withdraw(nats: &async_nats::Client, identity: &NodeIdentity) {
    let withdrawn = async {
        let kv = store(nats, &identity.bucket).await?;
        kv.delete(&identity.node_id).await?;
        anyhow::Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(2), withdrawn).await {
        Ok(Ok(())) => tracing::info!(node = identity.node_id, "left the SFU directory"),
        Ok(Err(error)) => tracing::warn!(%error, "could not leave the SFU directory"),
        Err(_) => tracing::warn!("leaving the SFU directory timed out"),
    }
}
