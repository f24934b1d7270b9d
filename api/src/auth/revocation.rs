//! Revoked sessions, known to every api replica within moments: an access token (valid up to 15
//! minutes) and every WebSocket opened with one stop working as soon as their session is revoked
//! (logout, refresh-token reuse), not when the token expires.
//!
//! The source is the event stream itself: `SessionRevoked` reaches JetStream through the outbox
//! relay (so a revocation is never lost between commit and publish), and each replica follows the
//! `Session` subjects on an ordered consumer that starts one access-token lifetime back, which
//! also rebuilds the set after a restart. The replica that revokes records it at once as well.
//!
//! Memory is bounded by time: an entry is dropped once every access token of its session has
//! expired (one token lifetime after the revocation). Revoking needs a session, i.e. a login
//! (Argon2id, rate-limited), so the set holds at most a token lifetime's worth of logins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use parley_domain::envelope::EventEnvelope;
use parley_eventbus::StreamSettings;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

/// The stored type name of the event that ends a session.
const SESSION_REVOKED: &str = "SessionRevoked";
/// How often expired entries are swept out (on the next revocation).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Inner {
    /// Revoked session → when its last access token has expired.
    revoked: HashMap<Uuid, Instant>,
    /// Live WebSockets per session, woken when it is revoked.
    sockets: HashMap<Uuid, HashMap<u64, Arc<Notify>>>,
    next_socket: u64,
    swept: Option<Instant>,
}

pub struct Revocations {
    inner: Mutex<Inner>,
    /// How long an access token lives: how long a revocation must be remembered.
    token_ttl: Duration,
}

/// A WebSocket's registration: `revoked()` completes when its session is revoked. Dropping it
/// unregisters the socket.
pub struct SocketWatch {
    revocations: Arc<Revocations>,
    session_id: Uuid,
    socket: u64,
    notify: Arc<Notify>,
}

impl Revocations {
    pub fn new(token_ttl: Duration) -> Self {
        Self { inner: Mutex::new(Inner::default()), token_ttl }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that `session_id` is revoked and closes its sockets on this replica.
    pub fn revoke(&self, session_id: Uuid) {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.swept.is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY) {
            inner.revoked.retain(|_, forget_at| *forget_at > now);
            inner.swept = Some(now);
        }
        inner.revoked.insert(session_id, now + self.token_ttl);
        if let Some(sockets) = inner.sockets.get(&session_id) {
            for notify in sockets.values() {
                notify.notify_one();
            }
        }
    }

    pub fn is_revoked(&self, session_id: Uuid) -> bool {
        self.lock().revoked.get(&session_id).is_some_and(|forget_at| *forget_at > Instant::now())
    }

    /// Registers a WebSocket of `session_id`. If the session is already revoked the watch fires
    /// at once.
    pub fn watch(self: &Arc<Self>, session_id: Uuid) -> SocketWatch {
        let notify = Arc::new(Notify::new());
        let revoked = self.is_revoked(session_id);
        let socket = {
            let mut inner = self.lock();
            inner.next_socket += 1;
            let socket = inner.next_socket;
            inner.sockets.entry(session_id).or_default().insert(socket, Arc::clone(&notify));
            socket
        };
        if revoked {
            notify.notify_one();
        }
        SocketWatch { revocations: Arc::clone(self), session_id, socket, notify }
    }

    fn unwatch(&self, session_id: Uuid, socket: u64) {
        let mut inner = self.lock();
        if let Some(sockets) = inner.sockets.get_mut(&session_id) {
            sockets.remove(&socket);
            if sockets.is_empty() {
                inner.sockets.remove(&session_id);
            }
        }
    }
}

impl SocketWatch {
    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    /// Completes when the session is revoked.
    pub async fn revoked(&self) {
        self.notify.notified().await
    }
}

impl Drop for SocketWatch {
    fn drop(&mut self) {
        self.revocations.unwatch(self.session_id, self.socket);
    }
}

/// Follows `SessionRevoked` events on the stream until shutdown, starting one token lifetime
/// back; after an error it starts again from there (re-applying a revocation is harmless).
pub async fn follow(
    jetstream: async_nats::jetstream::Context,
    settings: StreamSettings,
    revocations: Arc<Revocations>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let since = chrono::Utc::now() - chrono::Duration::from_std(revocations.token_ttl).unwrap_or_default();
        match parley_eventbus::stream::recent_events(&jetstream, &settings, &["Session"], since).await {
            Ok(mut messages) => loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(Ok(message)) => apply(&revocations, &message.payload),
                        Some(Err(error)) => {
                            tracing::warn!(%error, "revocation feed interrupted; following it again");
                            break;
                        }
                        None => break,
                    },
                    _ = shutdown.changed() => return,
                }
            },
            Err(error) => tracing::warn!(%error, "cannot follow session revocations yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn apply(revocations: &Revocations, payload: &[u8]) {
    match serde_json::from_slice::<EventEnvelope>(payload) {
        Ok(envelope) if envelope.event_type == SESSION_REVOKED => match envelope.aggregate_id.parse() {
            Ok(session_id) => revocations.revoke(session_id),
            Err(_) => tracing::warn!(id = envelope.aggregate_id, "revoked session with an unreadable id"),
        },
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "undecodable event on the session subjects"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_session_is_remembered_for_one_token_lifetime() {
        let revocations = Revocations::new(Duration::from_millis(50));
        let session = Uuid::from_u128(1);
        assert!(!revocations.is_revoked(session));
        revocations.revoke(session);
        assert!(revocations.is_revoked(session));
        assert!(!revocations.is_revoked(Uuid::from_u128(2)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!revocations.is_revoked(session), "forgotten once its tokens have expired");
    }

    #[tokio::test]
    async fn revoking_wakes_the_sessions_sockets_only() {
        let revocations = Arc::new(Revocations::new(Duration::from_secs(60)));
        let (mine, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let watch = revocations.watch(mine);
        let unrelated = revocations.watch(other);
        revocations.revoke(mine);
        tokio::time::timeout(Duration::from_secs(1), watch.revoked()).await.expect("woken");
        assert!(tokio::time::timeout(Duration::from_millis(50), unrelated.revoked()).await.is_err());
        drop(watch);
        assert!(!revocations.lock().sockets.contains_key(&mine), "a dropped watch unregisters");
        // A socket of an already revoked session is told at once.
        let late = revocations.watch(mine);
        tokio::time::timeout(Duration::from_secs(1), late.revoked()).await.expect("woken at once");
    }
}
