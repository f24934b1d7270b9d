//! The UDP socket's reader: hands each datagram to the shard that owns its participant, found by
//! source address, or for a new address by the ufrag in its STUN binding request. The routing
//! tables belong to this task alone (shards send it updates), so no packet waits on a lock and
//! no packet is matched against every peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::metrics::SfuMetrics;
use crate::shard::ShardInput;
use crate::stun;

/// Largest datagram we read (WebRTC keeps them under the path MTU).
const MAX_DATAGRAM: usize = 2048;

pub enum RouteUpdate {
    /// Binding requests for this ufrag go to this shard.
    Ufrag(String, usize),
    ForgetUfrag(String),
    ForgetAddr(SocketAddr),
}

pub(crate) async fn run(
    socket: Arc<UdpSocket>,
    shards: Vec<mpsc::Sender<ShardInput>>,
    mut updates: mpsc::UnboundedReceiver<RouteUpdate>,
    metrics: Arc<SfuMetrics>,
) {
    let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
    let mut by_ufrag: HashMap<String, usize> = HashMap::new();
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            // Routes first: a participant's ufrag is known before its answer leaves the SFU.
            biased;
            update = updates.recv() => match update {
                Some(RouteUpdate::Ufrag(ufrag, shard)) => { by_ufrag.insert(ufrag, shard); }
                Some(RouteUpdate::ForgetUfrag(ufrag)) => { by_ufrag.remove(&ufrag); }
                Some(RouteUpdate::ForgetAddr(addr)) => { by_addr.remove(&addr); }
                None => return,
            },
            received = socket.recv_from(&mut buffer) => {
                let (len, source) = match received {
                    Ok(received) => received,
                    Err(error) => {
                        tracing::debug!(%error, "UDP receive failed");
                        continue;
                    }
                };
                let contents = &buffer[..len];
                metrics.udp_in(len);
                let shard = match by_addr.get(&source) {
                    Some(shard) => *shard,
                    None => match stun::local_ufrag(contents).and_then(|u| by_ufrag.get(u)) {
                        Some(shard) => {
                            by_addr.insert(source, *shard);
                            *shard
                        }
                        None => continue,
                    },
                };
                let input = ShardInput::Packet { source, contents: contents.to_vec(), at: Instant::now() };
                // A shard that cannot keep up loses packets, as a congested link would.
                if let Some(sender) = shards.get(shard) {
                    let _ = sender.try_send(input);
                }
            }
        }
    }
}
