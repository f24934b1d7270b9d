//! Which SFU node a call's media goes through. Every SFU node publishes itself and its load each
//! second to a NATS KV bucket (`parley_domain::call::SfuNode`); every api replica follows that
//! bucket. A new call goes to the least-loaded live node and stays there for its life (the `Call`
//! aggregate records it). A node whose heartbeat stops is dead: its calls move to a live node
//! (`CallMediaMoved`), whose participants hear it as `call.updated` (`media_moved`) and join again
//! with a new token from `POST /calls/{id}/accept`. The call goes on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv::Operation;
use chrono::Utc;
use futures::StreamExt;
use parley_domain::call::{CallCommand, CallError, SfuNode};
use parley_domain::EventMetadata;
use tokio::sync::watch;
use uuid::Uuid;

use crate::commands::CommandError;
use crate::state::AppState;

/// How often this replica looks for calls on dead nodes.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Known {
    nodes: HashMap<String, SfuNode>,
    /// Calls this replica placed on a node since that node last reported its load, so calls
    /// started within one heartbeat spread instead of all landing on the same node.
    placed_since_report: HashMap<String, u64>,
    /// The bucket's existing entries have all been read.
    caught_up: bool,
}

/// The SFU nodes as this replica last heard of them.
pub struct SfuNodes {
    known: Mutex<Known>,
    /// A node not heard from for this long is dead.
    deadline: Duration,
}

impl SfuNodes {
    pub fn new(deadline: Duration) -> Self {
        Self { known: Mutex::default(), deadline }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_live(&self, node: &SfuNode) -> bool {
        let age = Utc::now().signed_duration_since(node.at);
        age.to_std().map_or(true, |age| age < self.deadline)
    }

    /// `node_id`, if it is live.
    pub fn live(&self, node_id: &str) -> Option<SfuNode> {
        self.known().nodes.get(node_id).filter(|node| self.is_live(node)).cloned()
    }

    /// The live node with the fewest participants (then rooms) counting the calls placed on it
    /// since its last report; it is counted as placed on.
    pub fn place(&self) -> Option<SfuNode> {
        let mut known = self.known();
        let known = &mut *known;
        let chosen = known
            .nodes
            .values()
            .filter(|node| self.is_live(node))
            .min_by_key(|node| {
                let recent = known.placed_since_report.get(&node.node_id).copied().unwrap_or(0);
                (node.participants + 2 * recent, node.rooms + recent, node.node_id.clone())
            })?
            .clone();
        *known.placed_since_report.entry(chosen.node_id.clone()).or_default() += 1;
        Some(chosen)
    }

    fn live_ids(&self) -> Option<Vec<String>> {
        let known = self.known();
        known.caught_up.then(|| known.nodes.values().filter(|n| self.is_live(n)).map(|n| n.node_id.clone()).collect())
    }

    fn heard(&self, node: SfuNode) {
        let mut known = self.known();
        known.placed_since_report.remove(&node.node_id);
        known.nodes.insert(node.node_id.clone(), node);
    }

    fn gone(&self, node_id: &str) {
        let mut known = self.known();
        known.nodes.remove(node_id);
        known.placed_since_report.remove(node_id);
    }
}

/// Follows the node bucket into `state.sfu_nodes`, and moves calls off nodes that died, until
/// shutdown.
pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let jetstream = async_nats::jetstream::new(state.nats.clone());
    let sweeper = tokio::spawn(sweep(Arc::clone(&state), shutdown.clone()));
    loop {
        let followed = tokio::select! {
            followed = follow(&jetstream, &state) => followed,
            _ = shutdown.changed() => break,
        };
        if let Err(error) = followed {
            tracing::warn!(%error, "lost the SFU node bucket; following it again");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => break,
        }
    }
    sweeper.abort();
}

async fn follow(jetstream: &async_nats::jetstream::Context, state: &AppState) -> anyhow::Result<()> {
    let store = parley_eventbus::stream::sfu_nodes_bucket(jetstream, &state.config.sfu_nodes_bucket).await?;
    let mut entries = store.watch_all().await?;
    let mut empty = store.keys().await?.next().await.is_none();
    if empty {
        state.sfu_nodes.known().caught_up = true;
    }
    while let Some(entry) = entries.next().await {
        let entry = entry?;
        match entry.operation {
            Operation::Put => match serde_json::from_slice::<SfuNode>(&entry.value) {
                Ok(node) if node.node_id == entry.key => state.sfu_nodes.heard(node),
                _ => tracing::warn!(key = entry.key, "ignoring an SFU node entry that is not one"),
            },
            Operation::Delete | Operation::Purge => state.sfu_nodes.gone(&entry.key),
        }
        if !empty && entry.delta == 0 {
            empty = true;
            state.sfu_nodes.known().caught_up = true;
        }
    }
    anyhow::bail!("the watch ended")
}

/// Each second: every live call pinned to a node that is not live moves to a live one.
async fn sweep(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    // A node that went quiet while this replica was starting is dead only after the deadline.
    tokio::time::sleep(state.sfu_nodes.deadline).await;
    loop {
        if let Err(error) = move_orphaned_calls(&state).await {
            tracing::warn!(%error, "could not move calls off dead SFU nodes");
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn move_orphaned_calls(state: &AppState) -> anyhow::Result<()> {
    // Until the bucket is read, and while no node is live (NATS down), nothing is known dead.
    let Some(live) = state.sfu_nodes.live_ids().filter(|live| !live.is_empty()) else { return Ok(()) };
    let orphaned = sqlx::query!(
        r#"SELECT id, sfu_node AS "sfu_node!" FROM calls
           WHERE status IN ('ringing', 'active') AND sfu_node IS NOT NULL AND NOT (sfu_node = ANY($1))"#,
        &live
    )
    .fetch_all(&state.pool)
    .await?;
    for call in orphaned {
        if let Err(error) = move_media(state, call.id, Some(call.sfu_node)).await {
            // Ended meanwhile, most likely; the next sweep sees.
            tracing::info!(call_id = %call.id, %error, "did not move a call's media");
        }
    }
    Ok(())
}

/// Moves call `call_id` from `from` to the least-loaded live node; the node it is on afterwards
/// (another replica may have moved it first), if any is live.
pub async fn move_media(
    state: &AppState,
    call_id: Uuid,
    from: Option<String>,
) -> Result<Option<SfuNode>, CommandError<CallError>> {
    let Some(target) = state.sfu_nodes.place() else { return Ok(None) };
    tracing::info!(%call_id, from = from.as_deref().unwrap_or("none"), to = target.node_id, "moving a call's media");
    let command = CallCommand::MoveMedia { from, to: target.node_id.clone(), at: crate::calls::routes::now() };
    let metadata = EventMetadata::new(None, Utc::now(), crate::ops::request_id::current());
    let committed = state.calls.execute_retrying(&call_id.to_string(), command, &metadata).await?;
    Ok(committed.state.sfu_node.as_deref().and_then(|node| state.sfu_nodes.live(node)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, participants: u64, seconds_ago: i64) -> SfuNode {
        SfuNode {
            node_id: id.into(),
            url: format!("ws://{id}/rtc"),
            rooms: participants / 2,
            participants,
            packets_per_second: 0,
            at: Utc::now() - chrono::Duration::seconds(seconds_ago),
        }
    }

    #[test]
    fn calls_go_to_the_least_loaded_live_node_and_spread_between_reports() {
        let nodes = SfuNodes::new(Duration::from_secs(3));
        assert!(nodes.place().is_none(), "no node, no placement");
        nodes.heard(node("a", 10, 0));
        nodes.heard(node("b", 4, 0));
        nodes.heard(node("dead", 0, 10));
        let placed: Vec<String> = (0..6).filter_map(|_| nodes.place()).map(|n| n.node_id).collect();
        // b until its recent placements weigh as much as a's participants, then both.
        assert_eq!(placed, ["b", "b", "b", "a", "b", "a"]);
        assert!(nodes.live("dead").is_none());
        assert!(nodes.live("a").is_some());
        // A report replaces the estimate.
        nodes.heard(node("a", 0, 0));
        assert_eq!(nodes.place().map(|n| n.node_id).as_deref(), Some("a"));
        nodes.gone("a");
        assert!(nodes.live("a").is_none());
    }
}
