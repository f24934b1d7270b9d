//! Every socket of this replica behind two NATS subscriptions, instead of two each: the hub takes
//! every user's and every device's realtime messages (`<prefix>.user.*`, `<prefix>.device.*`) and
//! hands each to the sockets of that user or device here. A socket's channel is small; a socket
//! too slow to take a message is marked behind and reads its feed from the database instead
//! (nothing is lost: the feed holds every frame). When messages may have been lost on the way
//! (this replica's NATS connection dropped, or a projector came back and announced it on
//! `<prefix>.resync`), every socket here catches up from the database; the hub also keeps the
//! sockets present, with one row for the whole replica, and deletes the rows that replicas gone
//! for good left behind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::state::AppState;

/// Messages queued per socket before it is marked behind.
const SOCKET_QUEUE: usize = 32;

/// What wakes a socket.
pub enum Wake {
    /// A realtime message for its user or device (shared by every socket it goes to; small, as
    /// every socket's channel allocates room for 32 of these).
    Published(Arc<async_nats::Message>),
    /// Messages may have been missed: read the feed.
    CatchUp,
}

struct Route {
    id: u64,
    wakes: mpsc::Sender<Wake>,
    behind: Arc<AtomicBool>,
}

impl Route {
    fn wake(&self, wake: Wake) {
        if self.wakes.try_send(wake).is_err() {
            self.behind.store(true, Ordering::Release);
        }
    }
}

#[derive(Default)]
struct Routes {
    users: HashMap<Uuid, Vec<Route>>,
    devices: HashMap<Uuid, Vec<Route>>,
}

pub struct Hub {
    routes: Mutex<Routes>,
    next_id: AtomicU64,
    /// This replica in `presence_replicas`: its sockets are present while its row is fresh.
    pub replica_id: Uuid,
}

impl Default for Hub {
    fn default() -> Self {
        Self { routes: Mutex::default(), next_id: AtomicU64::new(0), replica_id: Uuid::new_v4() }
    }
}

/// A socket's place in the hub, until dropped.
pub struct Registration {
    hub: Arc<Hub>,
    id: u64,
    user_id: Uuid,
    device_id: Uuid,
    /// Set when a message for this socket could not be queued: read the feed.
    pub behind: Arc<AtomicBool>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut guard = self.hub.routes();
        let routes = &mut *guard;
        for (map, key) in [(&mut routes.users, self.user_id), (&mut routes.devices, self.device_id)] {
            if let Some(list) = map.get_mut(&key) {
                list.retain(|route| route.id != self.id);
                if list.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }
}

impl Hub {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Routes `user_id`'s and `device_id`'s messages to the returned receiver.
    pub fn register(self: &Arc<Self>, user_id: Uuid, device_id: Uuid) -> (Registration, mpsc::Receiver<Wake>) {
        let (wakes, receiver) = mpsc::channel(SOCKET_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let behind = Arc::new(AtomicBool::new(false));
        let mut guard = self.routes();
        let routes = &mut *guard;
        for (map, key) in [(&mut routes.users, user_id), (&mut routes.devices, device_id)] {
            let route = Route { id, wakes: wakes.clone(), behind: Arc::clone(&behind) };
            map.entry(key).or_default().push(route);
        }
        drop(guard);
        let registration = Registration { hub: Arc::clone(self), id, user_id, device_id, behind };
        (registration, receiver)
    }

    /// Hands `message` (on `subject`, `<prefix>.user.<id>` or `<prefix>.device.<id>`) to its
    /// sockets here.
    fn route(&self, prefix: &str, message: async_nats::Message) {
        let Some((devices, id)) = addressee(prefix, message.subject.as_str()) else { return };
        let message = Arc::new(message);
        let routes = self.routes();
        let targets = if devices { routes.devices.get(&id) } else { routes.users.get(&id) };
        for route in targets.into_iter().flatten() {
            route.wake(Wake::Published(Arc::clone(&message)));
        }
    }

    /// Every socket here reads its feed.
    fn catch_up_all(&self) {
        let routes = self.routes();
        for route in routes.users.values().flatten() {
            route.behind.store(true, Ordering::Release);
            route.wake(Wake::CatchUp);
        }
    }

    pub fn sockets(&self) -> usize {
        self.routes().users.values().map(Vec::len).sum()
    }
}

/// Whom `subject` (`<prefix>.user.<id>` or `<prefix>.device.<id>`) is for: (a device?, its id).
fn addressee(prefix: &str, subject: &str) -> Option<(bool, Uuid)> {
    let (kind, id) = subject.strip_prefix(prefix)?.strip_prefix('.')?.split_once('.')?;
    let devices = match kind {
        "user" => false,
        "device" => true,
        _ => return None,
    };
    Some((devices, id.parse().ok()?))
}

/// Subscribes for the hub and feeds it until shutdown; refreshes presence meanwhile.
pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let prefix = state.config.realtime_prefix.clone();
    let presence = tokio::spawn(refresh_presence(Arc::clone(&state)));
    let watcher = tokio::spawn(catch_up_after_reconnects(Arc::clone(&state)));
    loop {
        let subscribed = async {
            let users = state.nats.subscribe(format!("{prefix}.user.*")).await?;
            let devices = state.nats.subscribe(format!("{prefix}.device.*")).await?;
            let resync = state.nats.subscribe(parley_eventbus::stream::resync_subject(&prefix)).await?;
            anyhow::Ok((users, devices, resync))
        };
        let (users, devices, resync) = match subscribed.await {
            Ok(subscriptions) => subscriptions,
            Err(error) => {
                tracing::warn!(%error, "realtime hub cannot subscribe yet");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => break,
                }
            }
        };
        // Whatever was published before these subscriptions existed.
        state.realtime_hub.catch_up_all();
        let mut messages = futures::stream::select(users, devices);
        let mut resync = resync;
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => state.realtime_hub.route(&prefix, message),
                    None => break,
                },
                _ = resync.next() => state.realtime_hub.catch_up_all(),
                _ = shutdown.changed() => {
                    presence.abort();
                    watcher.abort();
                    return;
                }
            }
        }
        tracing::warn!("realtime hub subscription ended; subscribing again");
    }
    presence.abort();
    watcher.abort();
}

/// Core NATS drops what is published while a connection is down: after this replica's
/// connection comes back (however briefly it was gone: the client counts its connects), every
/// socket reads its feed, once the server has our subscriptions again (the client sends them
/// first on a reconnect, so a flush's round trip confirms them) so nothing falls between the
/// read and the first message heard.
async fn catch_up_after_reconnects(state: Arc<AppState>) {
    let statistics = state.nats.statistics();
    let mut connects = statistics.connects.load(Ordering::Relaxed);
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    loop {
        ticks.tick().await;
        let now = statistics.connects.load(Ordering::Relaxed);
        if now == connects {
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(5), state.nats.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, "NATS reconnected but not yet flushed; trying again");
                continue;
            }
            Err(_) => continue,
        }
        tracing::info!("NATS connection back: every socket catches up from its feed");
        state.realtime_hub.catch_up_all();
        connects = now;
    }
}

/// Keeps this replica's row in `presence_replicas` fresh, every third of the idle timeout: every
/// socket here is present while it is.
async fn refresh_presence(state: Arc<AppState>) {
    let mut ticks = tokio::time::interval(state.config.ws_idle_timeout / 3);
    loop {
        ticks.tick().await;
        let refreshed = sqlx::query!(
            "INSERT INTO presence_replicas (replica_id) VALUES ($1) \
             ON CONFLICT (replica_id) DO UPDATE SET last_seen = now()",
            state.realtime_hub.replica_id
        )
        .execute(&state.pool)
        .await;
        if let Err(error) = refreshed {
            tracing::warn!(%error, "could not refresh this replica's presence");
        }
        // A replica that was killed (or stopped before its sockets' tasks ended) leaves its
        // sockets' rows, which count as offline but were never deleted: the table grew by a
        // replica's sockets on every crash or deploy. A replica unseen this long has no live
        // socket left: each socket reads the database at least every `PARLEY_WS_POLL_SECS` and
        // closes when it cannot, and its client reconnects (and marks itself) elsewhere.
        let swept = sqlx::query!(
            "WITH gone AS (DELETE FROM presence_replicas WHERE last_seen < now() - make_interval(secs => $1) \
               RETURNING replica_id) \
             DELETE FROM presence p USING gone WHERE p.replica_id = gone.replica_id",
            PRESENCE_SWEEP_AFTER.as_secs_f64().max(state.config.ws_poll.as_secs_f64() * 2.0)
        )
        .execute(&state.pool)
        .await;
        if let Err(error) = swept {
            tracing::warn!(%error, "could not sweep the presence of replicas that are gone");
        }
    }
}

/// How long a replica's row must be stale before its sockets' presence rows are deleted (at
/// least twice the sockets' poll interval).
const PRESENCE_SWEEP_AFTER: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    fn published(subject: &str) -> async_nats::Message {
        async_nats::Message {
            subject: subject.into(),
            reply: None,
            payload: Default::default(),
            headers: None,
            status: None,
            description: None,
            length: 0,
        }
    }

    #[test]
    fn messages_reach_only_their_sockets_and_a_full_queue_marks_a_socket_behind() {
        let hub = Arc::new(Hub::default());
        let (ada, ada_device, bob) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let (ada_socket, mut ada_wakes) = hub.register(ada, ada_device);
        let (bob_socket, mut bob_wakes) = hub.register(bob, Uuid::from_u128(4));
        assert_eq!(hub.sockets(), 2);

        hub.route("rt", published(&format!("rt.user.{ada}")));
        hub.route("rt", published(&format!("rt.device.{ada_device}")));
        for _ in 0..2 {
            assert!(matches!(ada_wakes.try_recv(), Ok(Wake::Published(_))));
        }
        assert!(bob_wakes.try_recv().is_err(), "bob got ada's message");
        // Another prefix, another kind, no id: nobody's.
        for subject in [format!("other.user.{ada}"), format!("rt.chat.{ada}"), "rt.user.someone".into()] {
            hub.route("rt", published(&subject));
        }
        assert!(ada_wakes.try_recv().is_err());

        // A socket that does not keep up is told to read its feed instead.
        for _ in 0..SOCKET_QUEUE + 3 {
            hub.route("rt", published(&format!("rt.user.{ada}")));
        }
        assert!(ada_socket.behind.load(Ordering::Acquire));
        assert!(!bob_socket.behind.load(Ordering::Acquire));

        drop(ada_socket);
        assert_eq!(hub.sockets(), 1);
    }
}
