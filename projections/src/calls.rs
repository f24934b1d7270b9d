//! `calls`: each call's status and participants, for `GET /calls/{id}`, the answers of the call
//! commands, and the api's ringing-timeout sweep.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parley_domain::call::{CallEvent, ParticipantState};
use parley_domain::EventEnvelope;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::chat_events::aggregate_uuid;
use crate::{Projection, ProjectionError};

pub struct CallsProjection;

/// The snake_case name serde gives a unit enum variant (as stored in the read model).
pub fn enum_text<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

#[async_trait]
impl Projection for CallsProjection {
    fn name(&self) -> &'static str {
        "calls"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Call"]
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query!("TRUNCATE calls, call_participants").execute(conn).await?;
        Ok(())
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        let call_id = aggregate_uuid(event)?;
        let decoded: CallEvent =
            event.decode().map_err(|source| ProjectionError::Decode { event_id: event.event_id.clone(), source })?;
        let participant = |user_id: Uuid, state: ParticipantState, at: DateTime<Utc>| {
            sqlx::query!("INSERT INTO call_participants (call_id, user_id, state, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (call_id, user_id) DO UPDATE SET state = EXCLUDED.state, \
                   connected = call_participants.connected AND EXCLUDED.state = 'joined', updated_at = EXCLUDED.updated_at", call_id, user_id, enum_text(&state), at)
        };
        match decoded {
            CallEvent::CallStarted {
                chat_id, kind, initiator_id, invitee_ids, direct, started_at, sfu_node, ..
            } => {
                sqlx::query!(
                    "INSERT INTO calls (id, chat_id, kind, initiator_id, direct, status, created_at, sfu_node) \
                     VALUES ($1, $2, $3, $4, $5, 'ringing', $6, $7)",
                    call_id,
                    chat_id,
                    enum_text(&kind),
                    initiator_id,
                    direct,
                    started_at,
                    sfu_node
                )
                .execute(&mut *conn)
                .await?;
                sqlx::query!(
                    "INSERT INTO call_participants (call_id, user_id, state, updated_at) \
                     SELECT $1, u, CASE WHEN u = $3 THEN 'joined' ELSE 'ringing' END, $4 \
                     FROM unnest(array_append($2::uuid[], $3)) AS u",
                    call_id,
                    &invitee_ids,
                    initiator_id,
                    started_at
                )
                .execute(conn)
                .await?;
            }
            CallEvent::CallAccepted { user_id, at } => {
                participant(user_id, ParticipantState::Joined, at).execute(&mut *conn).await?;
                sqlx::query!("UPDATE calls SET status = 'active' WHERE id = $1 AND status = 'ringing'", call_id)
                    .execute(conn)
                    .await?;
            }
            CallEvent::CallMediaMoved { to, at, .. } => {
                sqlx::query!("UPDATE calls SET sfu_node = $2 WHERE id = $1", call_id, to).execute(&mut *conn).await?;
                sqlx::query!(
                    "UPDATE call_participants SET connected = false, updated_at = $2 WHERE call_id = $1 AND connected",
                    call_id,
                    at
                )
                .execute(conn)
                .await?;
            }
            CallEvent::CallRejected { user_id, at } => {
                participant(user_id, ParticipantState::Rejected, at).execute(conn).await?;
            }
            CallEvent::ParticipantLeft { user_id, at, .. } => {
                participant(user_id, ParticipantState::Left, at).execute(conn).await?;
            }
            CallEvent::ParticipantConnected { user_id, at } => {
                sqlx::query!("UPDATE call_participants SET connected = true, updated_at = $3 WHERE call_id = $1 AND user_id = $2", call_id, user_id, at)
                .execute(conn)
                .await?;
            }
            CallEvent::CallEnded { status, at, .. } => {
                sqlx::query!(
                    "UPDATE calls SET status = $2, ended_at = $3 WHERE id = $1",
                    call_id,
                    enum_text(&status),
                    at
                )
                .execute(&mut *conn)
                .await?;
                sqlx::query!(
                    "UPDATE call_participants SET state = 'left', connected = false, updated_at = $2 \
                     WHERE call_id = $1 AND state IN ('ringing', 'joined')",
                    call_id,
                    at
                )
                .execute(conn)
                .await?;
            }
        }
        Ok(())
    }
}
