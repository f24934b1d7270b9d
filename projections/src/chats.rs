//! `chats`: chats, their members and read marks, and message history (bodies opened from their
//! crypto-shredding keys; a deleted message is a tombstone without body or media).

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use parley_domain::chat::{ChatEvent, ChatKind, MemberEntry, Role};
use parley_domain::sealed::{self, SealedBody};
use parley_domain::EventEnvelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Projection, ProjectionError};

pub struct ChatsProjection;

/// A message body as clients get it (base64), opened with its crypto-shredding key. `None` once
/// the message was deleted for everyone: the key is gone, only a tombstone remains.
pub async fn open_body(
    conn: &mut PgConnection,
    message_id: Uuid,
    body: &SealedBody,
) -> Result<Option<String>, ProjectionError> {
    let key: Option<Vec<u8>> = sqlx::query_scalar("SELECT key FROM message_keys WHERE message_id = $1")
        .bind(message_id)
        .fetch_optional(conn)
        .await?;
    Ok(key.and_then(|key| sealed::open(&key, body).ok()).map(|bytes| STANDARD.encode(bytes)))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

async fn add_members(
    conn: &mut PgConnection,
    chat_id: Uuid,
    members: &[MemberEntry],
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ProjectionError> {
    let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
    let roles: Vec<&str> = members.iter().map(|m| role_name(m.role)).collect();
    sqlx::query(
        "INSERT INTO chat_members (chat_id, user_id, role, joined_at) \
         SELECT $1, u, r, $4 FROM unnest($2::uuid[], $3::text[]) AS t(u, r) ON CONFLICT DO NOTHING",
    )
    .bind(chat_id)
    .bind(&ids)
    .bind(&roles)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE chats SET last_activity_at = GREATEST(last_activity_at, $2) WHERE id = $1")
        .bind(chat_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

#[async_trait]
impl Projection for ChatsProjection {
    fn name(&self) -> &'static str {
        "chats"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Chat"]
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query("TRUNCATE chats, chat_members, messages, hidden_messages").execute(conn).await?;
        Ok(())
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        let decode_error = |source| ProjectionError::Decode { event_id: event.event_id.clone(), source };
        let chat_id = Uuid::parse_str(&event.aggregate_id)
            .map_err(|_| decode_error(serde::de::Error::custom("aggregate id is not a UUID")))?;
        let decoded: ChatEvent = serde_json::from_value(event.payload.clone()).map_err(decode_error)?;
        match decoded {
            ChatEvent::ChatCreated { kind, name, created_by, members, created_at, .. } => {
                let kind = match kind {
                    ChatKind::Direct => "direct",
                    ChatKind::Group => "group",
                };
                sqlx::query(
                    "INSERT INTO chats (id, kind, name, created_by, created_at, last_activity_at) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(chat_id)
                .bind(kind)
                .bind(name)
                .bind(created_by)
                .bind(created_at)
                .execute(&mut *conn)
                .await?;
                add_members(conn, chat_id, &members, created_at).await?;
            }
            ChatEvent::MembersAdded { members, at, .. } => add_members(conn, chat_id, &members, at).await?,
            ChatEvent::MemberJoined { user_id, at, .. } => {
                add_members(conn, chat_id, &[MemberEntry { user_id, role: Role::Member }], at).await?
            }
            ChatEvent::MemberRemoved { user_id, .. } => {
                sqlx::query("DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2")
                    .bind(chat_id)
                    .bind(user_id)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM hidden_messages WHERE chat_id = $1 AND user_id = $2")
                    .bind(chat_id)
                    .bind(user_id)
                    .execute(conn)
                    .await?;
            }
            ChatEvent::MemberRoleChanged { user_id, role, .. } => {
                sqlx::query("UPDATE chat_members SET role = $3 WHERE chat_id = $1 AND user_id = $2")
                    .bind(chat_id)
                    .bind(user_id)
                    .bind(role_name(role))
                    .execute(conn)
                    .await?;
            }
            ChatEvent::InviteCreated { .. } => {}
            ChatEvent::MessageSent {
                message_id,
                sender_id,
                seq,
                client_msg_id,
                body,
                algorithm,
                media_ids,
                reply_to,
                sent_at,
            } => {
                let ciphertext = open_body(conn, message_id, &body).await?;
                let deleted = ciphertext.is_none();
                sqlx::query(
                    "INSERT INTO messages (chat_id, seq, id, sender_id, client_msg_id, ciphertext, algorithm, \
                     media_ids, reply_to, created_at, deleted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(chat_id)
                .bind(seq)
                .bind(message_id)
                .bind(sender_id)
                .bind(client_msg_id)
                .bind(ciphertext)
                .bind(algorithm)
                .bind(if deleted { Vec::new() } else { media_ids })
                .bind(reply_to)
                .bind(sent_at)
                .bind(deleted)
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE chats SET last_seq = $2, last_activity_at = $3 WHERE id = $1")
                    .bind(chat_id)
                    .bind(seq)
                    .bind(sent_at)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "UPDATE chat_members SET read_up_to = GREATEST(read_up_to, $3) WHERE chat_id = $1 AND user_id = $2",
                )
                .bind(chat_id)
                .bind(sender_id)
                .bind(seq)
                .execute(conn)
                .await?;
            }
            ChatEvent::ReadUpTo { user_id, seq, .. } => {
                sqlx::query(
                    "UPDATE chat_members SET read_up_to = GREATEST(read_up_to, $3) WHERE chat_id = $1 AND user_id = $2",
                )
                .bind(chat_id)
                .bind(user_id)
                .bind(seq)
                .execute(conn)
                .await?;
            }
            ChatEvent::MessageDeleted { seq, .. } => {
                sqlx::query(
                    "UPDATE messages SET ciphertext = NULL, media_ids = '{}', deleted = true WHERE chat_id = $1 AND seq = $2",
                )
                .bind(chat_id)
                .bind(seq)
                .execute(conn)
                .await?;
            }
            ChatEvent::MessageHidden { seq, user_id, .. } => {
                sqlx::query(
                    "INSERT INTO hidden_messages (user_id, chat_id, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(chat_id)
                .bind(seq)
                .execute(conn)
                .await?;
            }
        }
        Ok(())
    }
}
