//! This node in the SFU directory: every second it writes where clients reach it and its load
//! (`parley_domain::call::SfuNode`) under its node id in a NATS KV bucket, which every api
//! replica follows to place calls. A node that stops writing is dead to the api after a few
//! seconds and its calls move elsewhere; one that shuts down cleanly withdraws at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use chrono::Utc;
use parley_domain::call::SfuNode;

use crate::metrics::SfuMetrics;

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

async fn store(nats: &async_nats::Client, bucket: &str) -> anyhow::Result<kv::Store> {
    let jetstream = async_nats::jetstream::new(nats.clone());
    Ok(parley_eventbus::stream::sfu_nodes_bucket(&jetstream, bucket).await?)
}

/// Reports this node every second, for the life of the process.
pub async fn run(nats: async_nats::Client, identity: NodeIdentity, metrics: Arc<SfuMetrics>) {
    let mut store = None;
    let mut last = (Instant::now(), metrics.packets());
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if store.is_none() {
            match self::store(&nats, &identity.bucket).await {
                Ok(opened) => store = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, bucket = identity.bucket, "cannot open the SFU node bucket yet");
                    continue;
                }
            }
        }
        let Some(kv) = &store else { continue };
        let (now, packets) = (Instant::now(), metrics.packets());
        let seconds = now.duration_since(last.0).as_secs_f64().max(0.001);
        let per_second = (packets.saturating_sub(last.1) as f64 / seconds).round() as u64;
        last = (now, packets);
        let (rooms, participants) = metrics.load();
        let node = SfuNode {
            node_id: identity.node_id.clone(),
            url: identity.url.clone(),
            rooms,
            participants,
            packets_per_second: per_second,
            at: Utc::now(),
        };
        let value = match serde_json::to_vec(&node) {
            Ok(value) => value,
            Err(error) => {
                tracing::error!(%error, "cannot encode this node's report");
                continue;
            }
        };
        if let Err(error) = kv.put(&identity.node_id, value.into()).await {
            tracing::warn!(%error, "could not report this node to the SFU directory");
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
