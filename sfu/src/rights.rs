//! Who may no longer be in a call. The api records every end of a right as an event (the call
//! ended; a participant hung up, declined or was removed from the chat; a session was revoked),
//! and the outbox relay puts it on the events stream. This task follows that stream and
//!
//! - tells the shard that owns the room to drop the peers whose right ended (at once), and
//! - remembers the ends, so that join tokens issued before them are refused.
//!
//! It reads from `RIGHTS_WINDOW` ago on every (re)start: a join token lives at most that long
//! (`PARLEY_SFU_TOKEN_TTL_SECS` is capped at 600 s), so a restarted SFU still knows every end that
//! could refuse a token still valid, and entries older than the window are forgotten.
//!
//! The register is behind a mutex that only signaling (once per join) and this task take; the
//! shards, which forward media, never touch it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use parley_domain::call::{CallEvent, LeaveReason};
use parley_domain::envelope::EventEnvelope;
use parley_domain::session::SessionEvent;
use parley_eventbus::StreamSettings;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::shard::ShardInput;
use crate::signaling::shard_for;
use crate::token::{JoinClaims, TokenError};

/// The longest a join token lives: how far back the stream is read, and how long an end is kept.
pub(crate) const RIGHTS_WINDOW: Duration = Duration::from_secs(600);
/// Expired entries are swept at most this often.
const PRUNE_EVERY_MS: i64 = 10_000;
/// Wait before following the stream again after NATS failed us.
const RETRY: Duration = Duration::from_secs(1);
/// The window's backlog arrives in one burst: this long without a message (or a message with
/// nothing pending after it) means the SFU has read every end of a right it must know.
const CAUGHT_UP_QUIET: Duration = Duration::from_millis(500);

/// One right that ended, as the shards apply it to their peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Nobody may be in the call any more.
    CallEnded { call_id: Uuid },
    /// `user_id` left the call (hung up, declined, removed from the chat) at `at_ms`: their join
    /// tokens issued until then are void; a later one (they came back) is not.
    Participant { call_id: Uuid, user_id: Uuid, at_ms: i64, removed: bool },
    /// The session was revoked (logout, refresh token reuse): every join token issued to it.
    Session { session_id: Uuid },
    /// The api moved the call to another node at `at_ms`: the tokens issued until then named
    /// the node it left, whose room must not go on beside the new one.
    MediaMoved { call_id: Uuid, at_ms: i64 },
}

impl Revocation {
    /// Whether a peer admitted with these token facts loses its place.
    pub(crate) fn covers(&self, call_id: Uuid, user_id: Uuid, session_id: Uuid, issued_ms: i64) -> bool {
        match self {
            Revocation::CallEnded { call_id: ended } => *ended == call_id,
            Revocation::Participant { call_id: call, user_id: user, at_ms, .. } => {
                *call == call_id && *user == user_id && issued_ms <= *at_ms
            }
            Revocation::Session { session_id: revoked } => *revoked == session_id,
            Revocation::MediaMoved { call_id: call, at_ms } => *call == call_id && issued_ms <= *at_ms,
        }
    }

    /// What the dropped peer is told.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Revocation::CallEnded { .. } => "the call has ended",
            Revocation::Participant { removed: true, .. } => "you are no longer a member of this chat",
            Revocation::Participant { removed: false, .. } => "you left this call",
            Revocation::Session { .. } => "your session has ended",
            Revocation::MediaMoved { .. } => "the call moved to another SFU node; join again",
        }
    }

    /// The revocation an event of the stream carries, with when it happened.
    pub fn from_envelope(envelope: &EventEnvelope) -> Option<(Revocation, DateTime<Utc>)> {
        let id: Uuid = envelope.aggregate_id.parse().ok()?;
        match envelope.aggregate_type.as_str() {
            "Call" => match envelope.decode::<CallEvent>().ok()? {
                CallEvent::CallEnded { at, .. } => Some((Revocation::CallEnded { call_id: id }, at)),
                CallEvent::ParticipantLeft { user_id, reason, at } => {
                    // `disconnected` is the SFU's own report of a peer already gone.
                    let removed = match reason {
                        LeaveReason::Disconnected => return None,
                        LeaveReason::HungUp => false,
                        LeaveReason::Removed => true,
                    };
                    let at_ms = at.timestamp_millis();
                    Some((Revocation::Participant { call_id: id, user_id, at_ms, removed }, at))
                }
                CallEvent::CallMediaMoved { at, .. } => {
                    Some((Revocation::MediaMoved { call_id: id, at_ms: at.timestamp_millis() }, at))
                }
                CallEvent::CallRejected { user_id, at } => {
                    let at_ms = at.timestamp_millis();
                    Some((Revocation::Participant { call_id: id, user_id, at_ms, removed: false }, at))
                }
                _ => None,
            },
            "Session" => match envelope.decode::<SessionEvent>().ok()? {
                SessionEvent::SessionRevoked { revoked_at, .. } => {
                    Some((Revocation::Session { session_id: id }, revoked_at))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

#[derive(Default)]
struct Register {
    /// Call → when it ended (ms).
    ended_calls: HashMap<Uuid, i64>,
    /// (call, user) → the latest time the user's right to the call ended (ms).
    left: HashMap<(Uuid, Uuid), i64>,
    /// Session → when it was revoked (ms).
    revoked_sessions: HashMap<Uuid, i64>,
    /// Call → the latest time it moved to another node (ms).
    moved_calls: HashMap<Uuid, i64>,
    /// Join tokens already admitted (`jti`) → their expiry (s): each is admitted once.
    used_tokens: HashMap<Uuid, i64>,
    last_pruned_ms: i64,
}

impl Register {
    fn refusal(&self, claims: &JoinClaims) -> Option<TokenError> {
        let revocation = if self.ended_calls.contains_key(&claims.call) {
            Revocation::CallEnded { call_id: claims.call }
        } else if self.revoked_sessions.contains_key(&claims.sid) {
            Revocation::Session { session_id: claims.sid }
        } else if let Some(at_ms) = self.moved_calls.get(&claims.call).filter(|at| claims.iat_ms <= **at) {
            Revocation::MediaMoved { call_id: claims.call, at_ms: *at_ms }
        } else {
            self.left.get(&(claims.call, claims.sub)).filter(|at| claims.iat_ms <= **at)?;
            return Some(TokenError::Revoked("your place in this call ended after this token was issued"));
        };
        Some(TokenError::Revoked(revocation.reason()))
    }

    fn record(&mut self, revocation: &Revocation, at_ms: i64) {
        match revocation {
            Revocation::CallEnded { call_id } => {
                self.ended_calls.insert(*call_id, at_ms);
            }
            Revocation::Participant { call_id, user_id, at_ms, .. } => {
                let latest = self.left.entry((*call_id, *user_id)).or_insert(*at_ms);
                *latest = (*latest).max(*at_ms);
            }
            Revocation::Session { session_id } => {
                self.revoked_sessions.insert(*session_id, at_ms);
            }
            Revocation::MediaMoved { call_id, at_ms } => {
                let latest = self.moved_calls.entry(*call_id).or_insert(*at_ms);
                *latest = (*latest).max(*at_ms);
            }
        }
    }

    /// Forgets what can no longer refuse a valid token: ends older than the window (every token
    /// issued before them has expired), used token ids past their expiry.
    fn prune(&mut self, now_ms: i64) {
        if now_ms - self.last_pruned_ms < PRUNE_EVERY_MS {
            return;
        }
        self.last_pruned_ms = now_ms;
        let horizon = now_ms - RIGHTS_WINDOW.as_millis() as i64;
        self.ended_calls.retain(|_, at| *at >= horizon);
        self.left.retain(|_, at| *at >= horizon);
        self.revoked_sessions.retain(|_, at| *at >= horizon);
        self.moved_calls.retain(|_, at| *at >= horizon);
        self.used_tokens.retain(|_, exp| *exp * 1000 >= now_ms);
    }
}

/// The ends of rights the SFU knows of, and the join tokens it has admitted.
#[derive(Default)]
pub(crate) struct Rights {
    register: Mutex<Register>,
    /// Set once the window's backlog has been read after start: until then nobody is admitted
    /// (a token whose right ended before the start must not slip in) and `/healthz` says 503.
    caught_up: AtomicBool,
    /// Set while this node cannot report to the directory (see `registry`): it admits nobody.
    cut_off: AtomicBool,
}

impl Rights {
    fn register(&self) -> std::sync::MutexGuard<'_, Register> {
        self.register.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the backlog of ended rights has been read since the SFU started.
    pub(crate) fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    fn mark_caught_up(&self) {
        if !self.caught_up.swap(true, Ordering::AcqRel) {
            tracing::info!("read the ended rights of the last join-token lifetime; admitting participants");
        }
    }

    /// Marks this node cut off from the directory (or back); true when that changed.
    pub(crate) fn set_cut_off(&self, cut_off: bool) -> bool {
        self.cut_off.swap(cut_off, Ordering::AcqRel) != cut_off
    }

    /// Admits a verified token once: refused when its right ended or it was admitted before.
    pub(crate) fn admit(&self, claims: &JoinClaims) -> Result<(), TokenError> {
        if !self.is_caught_up() {
            return Err(TokenError::NotReady);
        }
        // Cut off, this node would not hear the end of the right it is asked to admit.
        if self.cut_off.load(Ordering::Acquire) {
            return Err(TokenError::CutOff);
        }
        let mut register = self.register();
        register.prune(Utc::now().timestamp_millis());
        if let Some(refusal) = register.refusal(claims) {
            return Err(refusal);
        }
        if register.used_tokens.insert(claims.jti, claims.exp).is_some() {
            return Err(TokenError::Used);
        }
        Ok(())
    }

    /// Why an admitted token's right has ended since, if it has.
    pub(crate) fn refusal(&self, claims: &JoinClaims) -> Option<TokenError> {
        self.register().refusal(claims)
    }

    fn record(&self, revocation: &Revocation, at: DateTime<Utc>) {
        let mut register = self.register();
        register.prune(Utc::now().timestamp_millis());
        register.record(revocation, at.timestamp_millis());
    }
}

/// Follows the events stream for as long as the SFU runs, starting again (from the window's
/// start) whenever NATS fails; media goes on meanwhile.
pub(crate) async fn run(
    nats: async_nats::Client,
    settings: StreamSettings,
    rights: Arc<Rights>,
    shards: Vec<mpsc::Sender<ShardInput>>,
) {
    let jetstream = jetstream::new(nats);
    loop {
        match follow(&jetstream, &settings, &rights, &shards).await {
            Ok(()) => tracing::warn!("the events stream ended; following it again"),
            Err(error) => tracing::warn!(%error, "cannot follow the events stream; retrying"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn follow(
    jetstream: &jetstream::Context,
    settings: &StreamSettings,
    rights: &Rights,
    shards: &[mpsc::Sender<ShardInput>],
) -> anyhow::Result<()> {
    let since = Utc::now() - RIGHTS_WINDOW;
    let mut messages = parley_eventbus::stream::recent_events(jetstream, settings, &["Call", "Session"], since).await?;
    tracing::info!(stream = %settings.stream_name, "following the events stream for ended rights");
    loop {
        let message = if rights.is_caught_up() {
            messages.next().await
        } else {
            match tokio::time::timeout(CAUGHT_UP_QUIET, messages.next()).await {
                Ok(message) => message,
                Err(_) => {
                    rights.mark_caught_up();
                    continue;
                }
            }
        };
        let Some(message) = message else { break };
        let message = message?;
        if message.info().is_ok_and(|info| info.pending == 0) {
            rights.mark_caught_up();
        }
        let Ok(envelope) = serde_json::from_slice::<EventEnvelope>(&message.payload) else {
            tracing::debug!(subject = %message.subject, "skipping an unreadable event");
            continue;
        };
        let Some((revocation, at)) = Revocation::from_envelope(&envelope) else { continue };
        // Recorded first, then sent: a join checked after this sees it; one checked before has
        // its `Join` queued on the shard ahead of the drop.
        rights.record(&revocation, at);
        match revocation {
            Revocation::CallEnded { call_id }
            | Revocation::Participant { call_id, .. }
            | Revocation::MediaMoved { call_id, .. } => {
                if let Some(shard) = shard_for(shards, call_id) {
                    let _ = shard.send(ShardInput::Revoke(revocation)).await;
                }
            }
            Revocation::Session { .. } => {
                for shard in shards {
                    let _ = shard.send(ShardInput::Revoke(revocation.clone())).await;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(call: u128, user: u128, session: u128, iat_ms: i64, jti: u128) -> JoinClaims {
        JoinClaims::for_tests(Uuid::from_u128(call), Uuid::from_u128(user), Uuid::from_u128(session), iat_ms, jti)
    }

    fn caught_up() -> Rights {
        let rights = Rights::default();
        rights.mark_caught_up();
        rights
    }

    #[test]
    fn nobody_is_admitted_before_the_backlog_is_read() {
        let rights = Rights::default();
        let token = claims(1, 2, 3, 1_000, 9);
        assert_eq!(rights.admit(&token), Err(TokenError::NotReady));
        rights.mark_caught_up();
        assert_eq!(rights.admit(&token), Ok(()), "a token refused while starting is not used up");
    }

    #[test]
    fn a_token_is_admitted_once() {
        let rights = caught_up();
        let token = claims(1, 2, 3, 1_000, 9);
        assert_eq!(rights.admit(&token), Ok(()));
        assert_eq!(rights.admit(&token), Err(TokenError::Used));
        assert_eq!(rights.admit(&claims(1, 2, 3, 1_000, 10)), Ok(()));
    }

    #[test]
    fn tokens_issued_until_a_participant_left_are_refused_later_ones_are_not() {
        let rights = caught_up();
        let left = Revocation::Participant {
            call_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            at_ms: 5_000,
            removed: true,
        };
        rights.record(&left, Utc::now());
        assert!(matches!(rights.admit(&claims(1, 2, 3, 5_000, 1)), Err(TokenError::Revoked(_))));
        assert_eq!(rights.admit(&claims(1, 2, 3, 5_001, 2)), Ok(()));
        assert_eq!(rights.admit(&claims(7, 2, 3, 1_000, 3)), Ok(()), "another call");
        assert_eq!(rights.admit(&claims(1, 4, 3, 1_000, 4)), Ok(()), "another user");
        assert!(left.covers(Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(8), 4_999));
        assert!(!left.covers(Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(8), 5_001));
    }

    #[test]
    fn an_ended_call_and_a_revoked_session_refuse_every_token() {
        let rights = caught_up();
        rights.record(&Revocation::CallEnded { call_id: Uuid::from_u128(1) }, Utc::now());
        rights.record(&Revocation::Session { session_id: Uuid::from_u128(3) }, Utc::now());
        assert!(matches!(rights.admit(&claims(1, 2, 5, i64::MAX, 1)), Err(TokenError::Revoked(_))));
        assert!(matches!(rights.admit(&claims(7, 2, 3, i64::MAX, 2)), Err(TokenError::Revoked(_))));
        assert_eq!(rights.admit(&claims(7, 2, 5, 0, 3)), Ok(()));
    }

    #[test]
    fn tokens_issued_before_a_move_are_refused_and_a_cut_off_node_admits_nobody() {
        let rights = caught_up();
        let moved = Revocation::MediaMoved { call_id: Uuid::from_u128(1), at_ms: 5_000 };
        rights.record(&moved, Utc::now());
        assert!(matches!(rights.admit(&claims(1, 2, 3, 5_000, 1)), Err(TokenError::Revoked(_))));
        assert_eq!(rights.admit(&claims(1, 2, 3, 5_001, 2)), Ok(()), "issued for the new node");
        assert_eq!(rights.admit(&claims(7, 2, 3, 1_000, 3)), Ok(()), "another call");
        assert!(moved.covers(Uuid::from_u128(1), Uuid::from_u128(9), Uuid::from_u128(8), 4_000));

        assert!(rights.set_cut_off(true));
        assert!(!rights.set_cut_off(true), "no change");
        assert_eq!(rights.admit(&claims(7, 2, 3, 9_000, 4)), Err(TokenError::CutOff));
        assert!(rights.set_cut_off(false));
        assert_eq!(rights.admit(&claims(7, 2, 3, 9_000, 4)), Ok(()), "a token refused while cut off is not used up");
    }

    #[test]
    fn ends_older_than_the_window_and_expired_token_ids_are_forgotten() {
        let mut register = Register::default();
        let now_ms = 10_000_000;
        let old = now_ms - RIGHTS_WINDOW.as_millis() as i64 - 1;
        register.record(&Revocation::CallEnded { call_id: Uuid::from_u128(1) }, old);
        register.record(&Revocation::Session { session_id: Uuid::from_u128(2) }, now_ms);
        register.used_tokens.insert(Uuid::from_u128(3), now_ms / 1000 - 1);
        register.used_tokens.insert(Uuid::from_u128(4), now_ms / 1000 + 60);
        register.prune(now_ms);
        assert!(register.ended_calls.is_empty());
        assert_eq!(register.revoked_sessions.len(), 1);
        assert_eq!(register.used_tokens.keys().copied().collect::<Vec<_>>(), vec![Uuid::from_u128(4)]);
    }
}
