//! Typing indicators, rate-limited: a user's "typing" reaches a chat at most once per
//! `PER_CHAT_EVERY` (per api replica), a socket may send at most `SOCKET_BURST` typing frames per
//! `SOCKET_EVERY` over all its chats, and frames beyond either are dropped without an answer
//! (clients repeat the frame while the user types, so nothing is lost but noise). Chat members
//! come from a cache shared by the replica's sockets, at most `MEMBERS_FRESH` old, so a busy group
//! costs one query per that interval, not one per keystroke.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

/// At most one typing frame per user and chat this often.
pub(super) const PER_CHAT_EVERY: Duration = Duration::from_secs(2);
/// A socket's typing frames: a burst of this many, refilled at one per `SOCKET_EVERY`.
pub(super) const SOCKET_BURST: u32 = 5;
pub(super) const SOCKET_EVERY: Duration = Duration::from_millis(500);
/// How stale a cached member list may be.
const MEMBERS_FRESH: Duration = Duration::from_secs(2);
/// Entries older than this are swept out (when the maps are next written).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Gate {
    last_sent: HashMap<(Uuid, Uuid), Instant>,
    members: HashMap<Uuid, (Instant, Arc<Vec<Uuid>>)>,
    swept: Option<Instant>,
}

impl Gate {
    fn sweep(&mut self, now: Instant) {
        if self.swept.is_some_and(|at| now.duration_since(at) < SWEEP_EVERY) {
            return;
        }
        self.last_sent.retain(|_, at| now.duration_since(*at) < PER_CHAT_EVERY);
        self.members.retain(|_, (at, _)| now.duration_since(*at) < MEMBERS_FRESH);
        self.swept = Some(now);
    }
}

/// The replica-wide part: per user and chat, and the member cache.
#[derive(Default)]
pub struct TypingGate {
    gate: Mutex<Gate>,
}

impl TypingGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `user_id`'s typing in `chat_id` may go out now (and if so, counts it).
    pub fn admit(&self, user_id: Uuid, chat_id: Uuid) -> bool {
        self.admit_at(user_id, chat_id, Instant::now())
    }

    fn admit_at(&self, user_id: Uuid, chat_id: Uuid, now: Instant) -> bool {
        let mut gate = self.lock();
        gate.sweep(now);
        match gate.last_sent.get(&(user_id, chat_id)) {
            Some(at) if now.duration_since(*at) < PER_CHAT_EVERY => false,
            _ => {
                gate.last_sent.insert((user_id, chat_id), now);
                true
            }
        }
    }

    /// The chat's members (empty for a chat that does not exist), at most `MEMBERS_FRESH` old.
    pub async fn members(&self, pool: &PgPool, chat_id: Uuid) -> Result<Arc<Vec<Uuid>>, sqlx::Error> {
        let now = Instant::now();
        if let Some((at, members)) = self.lock().members.get(&chat_id) {
            if now.duration_since(*at) < MEMBERS_FRESH {
                return Ok(Arc::clone(members));
            }
        }
        let members =
            sqlx::query_scalar!("SELECT user_id FROM chat_members WHERE chat_id = $1", chat_id).fetch_all(pool).await?;
        let members = Arc::new(members);
        let mut gate = self.lock();
        gate.sweep(now);
        gate.members.insert(chat_id, (now, Arc::clone(&members)));
        Ok(members)
    }
}

/// One socket's typing frames, over all its chats (a token bucket).
#[derive(Debug)]
pub(super) struct SocketAllowance {
    tokens: f64,
    updated: Instant,
}

impl Default for SocketAllowance {
    fn default() -> Self {
        Self { tokens: f64::from(SOCKET_BURST), updated: Instant::now() }
    }
}

impl SocketAllowance {
    pub(super) fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.updated).as_secs_f64() / SOCKET_EVERY.as_secs_f64();
        self.tokens = (self.tokens + refill).min(f64::from(SOCKET_BURST));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_typing_frame_per_user_and_chat_per_interval() {
        let gate = TypingGate::default();
        let (user, chat, other_chat) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let start = Instant::now();
        assert!(gate.admit_at(user, chat, start));
        assert!(!gate.admit_at(user, chat, start + Duration::from_millis(1900)));
        assert!(gate.admit_at(user, other_chat, start), "chats are independent");
        assert!(gate.admit_at(Uuid::from_u128(9), chat, start), "users are independent");
        assert!(gate.admit_at(user, chat, start + PER_CHAT_EVERY));
    }

    #[test]
    fn a_socket_gets_a_burst_then_a_steady_rate() {
        let start = Instant::now();
        let mut allowance = SocketAllowance { tokens: f64::from(SOCKET_BURST), updated: start };
        let sent = (0..100).filter(|_| allowance.take_at(start)).count();
        assert_eq!(sent, SOCKET_BURST as usize);
        assert!(allowance.take_at(start + SOCKET_EVERY));
        assert!(!allowance.take_at(start + SOCKET_EVERY));
    }

    #[test]
    fn stale_entries_are_swept() {
        let gate = TypingGate::default();
        let start = Instant::now();
        for n in 0..100 {
            gate.admit_at(Uuid::from_u128(n), Uuid::from_u128(0), start);
        }
        gate.admit_at(Uuid::from_u128(1000), Uuid::from_u128(0), start + SWEEP_EVERY);
        assert_eq!(gate.lock().last_sent.len(), 1);
    }
}
