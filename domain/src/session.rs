//! The `Session` aggregate: one login, i.e. one family of rotating refresh tokens.
//!
//! The SHA-256 hash of the current refresh token is kept, and a prefix of each rotated one's.
//! Presenting a token of the family that was already rotated means it was copied: the whole
//! session is revoked, as OAuth 2.0 Security BCP §4.14 recommends for refresh-token reuse. A
//! secret that was never issued is only refused: anyone can read a session id (it is in every
//! access token), so a made-up secret must not be able to end someone else's session.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommand {
    Start {
        session_id: Uuid,
        user_id: Uuid,
        refresh_token_hash: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// Exchange the presented refresh token for a new one.
    Rotate {
        presented_token_hash: String,
        new_token_hash: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    Revoke {
        actor_id: Uuid,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    Logout,
    RefreshTokenReused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SessionEvent {
    SessionStarted {
        session_id: Uuid,
        user_id: Uuid,
        refresh_token_hash: String,
        expires_at: DateTime<Utc>,
        started_at: DateTime<Utc>,
    },
    RefreshTokenRotated {
        refresh_token_hash: String,
        expires_at: DateTime<Utc>,
        rotated_at: DateTime<Utc>,
    },
    SessionRevoked {
        reason: RevocationReason,
        revoked_at: DateTime<Utc>,
    },
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> String {
        match self {
            SessionEvent::SessionStarted { .. } => "SessionStarted",
            SessionEvent::RefreshTokenRotated { .. } => "RefreshTokenRotated",
            SessionEvent::SessionRevoked { .. } => "SessionRevoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("session already started")]
    AlreadyStarted,
    #[error("no such session")]
    NotFound,
    #[error("session has been revoked")]
    Revoked,
    #[error("refresh token has expired")]
    Expired,
    #[error("this session belongs to someone else")]
    NotOwner,
    #[error("this refresh token was never issued")]
    UnknownToken,
}

/// How many rotated tokens a session remembers for reuse detection. Older ones (hundreds of
/// rotations back, days of continuous use) are refused without revoking the session.
pub const ROTATED_TOKENS_KEPT: usize = 512;
/// Hex digits of a rotated token's hash that are kept: 64 bits, so a guessed secret matches one
/// of them with a chance of 2^-55 at most.
const ROTATED_HASH_PREFIX: usize = 16;

fn hash_prefix(hash: &str) -> &str {
    hash.get(..ROTATED_HASH_PREFIX).unwrap_or(hash)
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub refresh_token_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: Option<RevocationReason>,
    /// Hash prefixes of the tokens rotated away, oldest first (at most `ROTATED_TOKENS_KEPT`).
    #[serde(default)]
    pub rotated_token_hashes: std::collections::VecDeque<String>,
}

impl Session {
    fn was_rotated(&self, token_hash: &str) -> bool {
        let prefix = hash_prefix(token_hash);
        self.rotated_token_hashes.iter().any(|kept| kept == prefix)
    }
}

impl Aggregate for Session {
    const TYPE: &'static str = "Session";
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            SessionCommand::Start { session_id, user_id, refresh_token_hash, expires_at, at } => {
                if self.id.is_some() {
                    return Err(SessionError::AlreadyStarted);
                }
                let event = SessionEvent::SessionStarted {
                    session_id,
                    user_id,
                    refresh_token_hash,
                    expires_at,
                    started_at: at,
                };
                sink.write(event, self).await;
            }
            SessionCommand::Rotate { presented_token_hash, new_token_hash, expires_at, at } => {
                self.id.ok_or(SessionError::NotFound)?;
                if self.revoked.is_some() {
                    return Err(SessionError::Revoked);
                }
                if presented_token_hash != self.refresh_token_hash {
                    if !self.was_rotated(&presented_token_hash) {
                        return Err(SessionError::UnknownToken);
                    }
                    // An already-rotated token came back: someone holds a copy. Record the revocation
                    // (the caller reports the refusal from the event).
                    let event =
                        SessionEvent::SessionRevoked { reason: RevocationReason::RefreshTokenReused, revoked_at: at };
                    sink.write(event, self).await;
                    return Ok(());
                }
                if self.expires_at.is_some_and(|expiry| expiry <= at) {
                    return Err(SessionError::Expired);
                }
                let event = SessionEvent::RefreshTokenRotated {
                    refresh_token_hash: new_token_hash,
                    expires_at,
                    rotated_at: at,
                };
                sink.write(event, self).await;
            }
            SessionCommand::Revoke { actor_id, at } => {
                self.id.ok_or(SessionError::NotFound)?;
                if self.user_id != Some(actor_id) {
                    return Err(SessionError::NotOwner);
                }
                if self.revoked.is_none() {
                    let event = SessionEvent::SessionRevoked { reason: RevocationReason::Logout, revoked_at: at };
                    sink.write(event, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SessionEvent::SessionStarted { session_id, user_id, refresh_token_hash, expires_at, .. } => {
                self.id = Some(session_id);
                self.user_id = Some(user_id);
                self.refresh_token_hash = refresh_token_hash;
                self.expires_at = Some(expires_at);
            }
            SessionEvent::RefreshTokenRotated { refresh_token_hash, expires_at, .. } => {
                let rotated = std::mem::replace(&mut self.refresh_token_hash, refresh_token_hash);
                self.rotated_token_hashes.push_back(hash_prefix(&rotated).to_owned());
                if self.rotated_token_hashes.len() > ROTATED_TOKENS_KEPT {
                    self.rotated_token_hashes.pop_front();
                }
                self.expires_at = Some(expires_at);
            }
            SessionEvent::SessionRevoked { reason, .. } => {
                self.revoked = Some(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use cqrs_es::test::TestFramework;

    type SessionTest = TestFramework<Session>;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    fn started() -> SessionEvent {
        SessionEvent::SessionStarted {
            session_id: Uuid::from_u128(10),
            user_id: Uuid::from_u128(1),
            refresh_token_hash: "h1".into(),
            expires_at: at() + Duration::days(30),
            started_at: at(),
        }
    }

    fn rotate(presented: &str, at: DateTime<Utc>) -> SessionCommand {
        SessionCommand::Rotate {
            presented_token_hash: presented.into(),
            new_token_hash: "h2".into(),
            expires_at: at + Duration::days(30),
            at,
        }
    }

    #[test]
    fn starting_a_session() {
        SessionTest::with(())
            .given_no_previous_events()
            .when(SessionCommand::Start {
                session_id: Uuid::from_u128(10),
                user_id: Uuid::from_u128(1),
                refresh_token_hash: "h1".into(),
                expires_at: at() + Duration::days(30),
                at: at(),
            })
            .then_expect_events(vec![started()]);
    }

    #[test]
    fn rotating_with_the_current_token_issues_a_new_one() {
        SessionTest::with(()).given(vec![started()]).when(rotate("h1", at())).then_expect_events(vec![
            SessionEvent::RefreshTokenRotated {
                refresh_token_hash: "h2".into(),
                expires_at: at() + Duration::days(30),
                rotated_at: at(),
            },
        ]);
    }

    #[test]
    fn reusing_an_old_token_revokes_the_session() {
        let rotated = SessionEvent::RefreshTokenRotated {
            refresh_token_hash: "h2".into(),
            expires_at: at() + Duration::days(30),
            rotated_at: at(),
        };
        SessionTest::with(()).given(vec![started(), rotated]).when(rotate("h1", at())).then_expect_events(vec![
            SessionEvent::SessionRevoked { reason: RevocationReason::RefreshTokenReused, revoked_at: at() },
        ]);
    }

    #[test]
    fn a_secret_that_was_never_issued_is_refused_without_revoking() {
        SessionTest::with(())
            .given(vec![started()])
            .when(rotate("made-up", at()))
            .then_expect_error(SessionError::UnknownToken);
        let rotated = SessionEvent::RefreshTokenRotated {
            refresh_token_hash: "h2".into(),
            expires_at: at() + Duration::days(30),
            rotated_at: at(),
        };
        SessionTest::with(())
            .given(vec![started(), rotated])
            .when(rotate("made-up", at()))
            .then_expect_error(SessionError::UnknownToken);
    }

    /// A distinct 64-hex-digit hash per `n`.
    fn token_hash(n: usize) -> String {
        format!("{n:016x}{}", "f".repeat(48))
    }

    #[test]
    fn only_the_most_recent_rotated_tokens_are_remembered() {
        let mut session = Session::default();
        session.apply(started());
        for n in 0..=ROTATED_TOKENS_KEPT {
            session.apply(SessionEvent::RefreshTokenRotated {
                refresh_token_hash: token_hash(n),
                expires_at: at() + Duration::days(30),
                rotated_at: at(),
            });
        }
        assert_eq!(session.rotated_token_hashes.len(), ROTATED_TOKENS_KEPT);
        assert!(!session.was_rotated("h1"), "the oldest is forgotten");
        assert!(session.was_rotated(&token_hash(ROTATED_TOKENS_KEPT - 1)));
        assert!(!session.was_rotated(&token_hash(ROTATED_TOKENS_KEPT)), "the current one is not rotated");
    }

    #[test]
    fn a_revoked_session_cannot_be_refreshed() {
        let revoked = SessionEvent::SessionRevoked { reason: RevocationReason::Logout, revoked_at: at() };
        SessionTest::with(())
            .given(vec![started(), revoked])
            .when(rotate("h1", at()))
            .then_expect_error(SessionError::Revoked);
    }

    #[test]
    fn an_expired_session_cannot_be_refreshed() {
        SessionTest::with(())
            .given(vec![started()])
            .when(rotate("h1", at() + Duration::days(31)))
            .then_expect_error(SessionError::Expired);
    }

    #[test]
    fn logout_revokes_once_and_only_for_the_owner() {
        let logout = SessionEvent::SessionRevoked { reason: RevocationReason::Logout, revoked_at: at() };
        SessionTest::with(())
            .given(vec![started()])
            .when(SessionCommand::Revoke { actor_id: Uuid::from_u128(1), at: at() })
            .then_expect_events(vec![logout.clone()]);
        SessionTest::with(())
            .given(vec![started(), logout])
            .when(SessionCommand::Revoke { actor_id: Uuid::from_u128(1), at: at() })
            .then_expect_events(vec![]);
        SessionTest::with(())
            .given(vec![started()])
            .when(SessionCommand::Revoke { actor_id: Uuid::from_u128(2), at: at() })
            .then_expect_error(SessionError::NotOwner);
    }
}
