//! Reads of the `calls` read model.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, Object)]
pub struct ParticipantView {
    pub user_id: Uuid,
    /// `ringing`, `joined`, `rejected` or `left`.
    pub state: String,
    /// Whether the SFU has the participant's media connected.
    pub connected: bool,
}

/// A call. `status`: `ringing` → `active` → `ended`, or `rejected` / `missed`.
#[derive(Debug, Clone, Object)]
pub struct CallView {
    pub id: Uuid,
    pub chat_id: Uuid,
    /// `audio` or `video`.
    pub kind: String,
    pub initiator_id: Uuid,
    pub status: String,
    pub participants: Vec<ParticipantView>,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub ended_at: Option<DateTime<Utc>>,
}

struct CallRow {
    id: Uuid,
    chat_id: Uuid,
    kind: String,
    initiator_id: Uuid,
    status: String,
    created_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

/// The call as `viewer` may see it: only members of the call's chat do.
pub async fn call_for(pool: &PgPool, call_id: Uuid, viewer: Uuid) -> Result<Option<CallView>, sqlx::Error> {
    let row = sqlx::query_as!(
        CallRow,
        "SELECT c.id, c.chat_id, c.kind, c.initiator_id, c.status, c.created_at, c.ended_at FROM calls c \
         WHERE c.id = $1 AND EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = c.chat_id AND m.user_id = $2)",
        call_id,
        viewer
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let participants = sqlx::query_as!(
        ParticipantView,
        "SELECT user_id, state, connected FROM call_participants WHERE call_id = $1 ORDER BY user_id",
        call_id
    )
    .fetch_all(pool)
    .await?;
    Ok(Some(CallView {
        id: row.id,
        chat_id: row.chat_id,
        kind: row.kind,
        initiator_id: row.initiator_id,
        status: row.status,
        participants,
        created_at: row.created_at,
        ended_at: row.ended_at,
    }))
}

/// The chat's live call, if any (write-side lookup, current as of the last commit).
pub async fn active_call_in(pool: &PgPool, chat_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("SELECT call_id FROM active_calls WHERE chat_id = $1", chat_id).fetch_optional(pool).await
}

/// Whether the `calls` read model has applied every event committed for `call_id`.
pub async fn call_caught_up(pool: &PgPool, call_id: Uuid) -> Result<bool, sqlx::Error> {
    crate::commands::aggregate_caught_up(pool, "calls", "Call", call_id).await
}

/// Calls still ringing that started at or before `cutoff`.
pub async fn ringing_since(pool: &PgPool, cutoff: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT id FROM calls WHERE status = 'ringing' AND created_at <= $1 ORDER BY created_at LIMIT $2",
        cutoff,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Answered calls in which nobody's media is connected and nothing changed since `cutoff`.
pub async fn abandoned_since(pool: &PgPool, cutoff: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT c.id FROM calls c WHERE c.status = 'active' AND NOT EXISTS ( \
           SELECT 1 FROM call_participants p WHERE p.call_id = c.id AND (p.connected OR p.updated_at > $1)) \
         ORDER BY c.created_at LIMIT $2",
        cutoff,
        limit
    )
    .fetch_all(pool)
    .await
}
