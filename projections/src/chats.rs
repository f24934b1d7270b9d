//! `chats`: chats, their members and read marks, and message history (bodies opened from their
//! crypto-shredding keys; a deleted message is a tombstone without body or media).
//!
//! Each membership row records the first `seq` its member may see (`visible_from_seq`, from the
//! membership event); its read mark starts just before it, so nothing earlier counts as unread.

use std::collections::HashMap;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use parley_domain::chat::{ChatEvent, ChatKind, MemberEntry, Role};
use parley_domain::sealed;
use parley_domain::EventEnvelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::chat_events::{sent_message, steps, SentMessage, Step};
use crate::{Projection, ProjectionError};

pub struct ChatsProjection;

/// Message bodies as clients get them (base64), opened with their crypto-shredding keys, in the
/// order of `messages`. `None` for one deleted for everyone since: its key is gone, only a
/// tombstone remains.
pub async fn open_bodies(
    conn: &mut PgConnection,
    messages: &[SentMessage],
) -> Result<Vec<Option<String>>, ProjectionError> {
    let ids: Vec<Uuid> = messages.iter().map(|m| m.message_id).collect();
    let keys: HashMap<Uuid, Vec<u8>> =
        sqlx::query!("SELECT message_id, key FROM message_keys WHERE message_id = ANY($1)", &ids)
            .fetch_all(conn)
            .await?
            .into_iter()
            .map(|row| (row.message_id, row.key))
            .collect();
    Ok(messages
        .iter()
        .map(|m| keys.get(&m.message_id).and_then(|key| sealed::open(key, &m.body).ok()).map(|b| STANDARD.encode(b)))
        .collect())
}

/// Adds sent messages to history and moves their chats' `last_seq` and their senders' read marks,
/// all in one statement whatever the number of messages and chats.
async fn insert_messages(conn: &mut PgConnection, messages: &[SentMessage]) -> Result<(), ProjectionError> {
    let bodies = open_bodies(conn, messages).await?;
    let media: Vec<String> = messages
        .iter()
        .zip(&bodies)
        .map(|(m, body)| match body {
            // A tombstone keeps no media either.
            None => "{}".to_owned(),
            Some(_) => format!("{{{}}}", m.media_ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",")),
        })
        .collect();
    sqlx::query!(
        "WITH sent AS ( \
           SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], \
                                $7::text[], $8::text[], $9::uuid[], $10::timestamptz[], $11::uuid[]) \
             AS u(chat_id, seq, id, sender_id, client_msg_id, ciphertext, algorithm, media_ids, reply_to, created_at, \
                  sender_device_id)), \
         inserted AS ( \
           INSERT INTO messages (chat_id, seq, id, sender_id, client_msg_id, ciphertext, algorithm, media_ids, \
                                 reply_to, created_at, deleted, sender_device_id) \
           SELECT chat_id, seq, id, sender_id, client_msg_id, ciphertext, algorithm, media_ids::uuid[], reply_to, \
                  created_at, ciphertext IS NULL, sender_device_id FROM sent), \
         media_links AS ( \
           INSERT INTO message_media (media_id, chat_id, message_id) \
           SELECT DISTINCT unnest(media_ids::uuid[]), chat_id, id FROM sent WHERE media_ids <> '{}' \
           ON CONFLICT DO NOTHING), \
         moved AS ( \
           UPDATE chats c SET last_seq = GREATEST(c.last_seq, s.seq), \
                              last_activity_at = GREATEST(c.last_activity_at, s.at) \
           FROM (SELECT chat_id, max(seq) AS seq, max(created_at) AS at FROM sent GROUP BY chat_id) s \
           WHERE c.id = s.chat_id) \
         UPDATE chat_members m SET read_up_to = GREATEST(m.read_up_to, s.seq) \
         FROM (SELECT chat_id, sender_id, max(seq) AS seq FROM sent GROUP BY chat_id, sender_id) s \
         WHERE m.chat_id = s.chat_id AND m.user_id = s.sender_id",
        // Arrays of borrowed text and of optional values bind as their SQL arrays; `as _` only
        // tells the macro so (it checks owned, non-null element types).
        &messages.iter().map(|m| m.chat_id).collect::<Vec<_>>(),
        &messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        &messages.iter().map(|m| m.message_id).collect::<Vec<_>>(),
        &messages.iter().map(|m| m.sender_id).collect::<Vec<_>>(),
        &messages.iter().map(|m| m.client_msg_id.as_str()).collect::<Vec<_>>() as _,
        &bodies as _,
        &messages.iter().map(|m| m.algorithm.as_str()).collect::<Vec<_>>() as _,
        &media,
        &messages.iter().map(|m| m.reply_to).collect::<Vec<_>>() as _,
        &messages.iter().map(|m| m.sent_at).collect::<Vec<_>>(),
        &messages.iter().map(|m| m.sender_device_id).collect::<Vec<_>>() as _
    )
    .execute(conn)
    .await?;
    Ok(())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

/// Starts memberships. `visible_from_seq` is `None` for events recorded before memberships had a
/// starting point: the member then sees from the chat's next message, as the aggregate decided.
async fn add_members(
    conn: &mut PgConnection,
    chat_id: Uuid,
    members: &[MemberEntry],
    at: chrono::DateTime<chrono::Utc>,
    visible_from_seq: Option<i64>,
) -> Result<(), ProjectionError> {
    let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
    let roles: Vec<&str> = members.iter().map(|m| role_name(m.role)).collect();
    sqlx::query!(
        "INSERT INTO chat_members (chat_id, user_id, role, joined_at, visible_from_seq, read_up_to) \
         SELECT $1, u, r, $4, f.seq, f.seq - 1 FROM unnest($2::uuid[], $3::text[]) AS t(u, r), \
           (SELECT COALESCE($5::bigint, (SELECT last_seq + 1 FROM chats WHERE id = $1), 1) AS seq) f \
         ON CONFLICT DO NOTHING",
        chat_id,
        &ids,
        &roles as _,
        at,
        visible_from_seq
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("UPDATE chats SET last_activity_at = GREATEST(last_activity_at, $2) WHERE id = $1", chat_id, at)
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
        sqlx::query!("TRUNCATE chats, chat_members, messages, hidden_messages, message_media").execute(conn).await?;
        Ok(())
    }

    async fn apply_all(&self, conn: &mut PgConnection, events: &[EventEnvelope]) -> Result<(), ProjectionError> {
        for step in steps(events)? {
            match step {
                Step::Sent(run) => insert_messages(conn, &run).await?,
                Step::Other(event) => self.apply(conn, event).await?,
            }
        }
        Ok(())
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        let decode_error = |source| ProjectionError::Decode { event_id: event.event_id.clone(), source };
        let chat_id = Uuid::parse_str(&event.aggregate_id)
            .map_err(|_| decode_error(serde::de::Error::custom("aggregate id is not a UUID")))?;
        let decoded: ChatEvent = event.decode().map_err(decode_error)?;
        match decoded {
            ChatEvent::ChatCreated { kind, name, created_by, members, created_at, .. } => {
                let kind = match kind {
                    ChatKind::Direct => "direct",
                    ChatKind::Group => "group",
                };
                sqlx::query!(
                    "INSERT INTO chats (id, kind, name, created_by, created_at, last_activity_at) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                    chat_id,
                    kind,
                    name,
                    created_by,
                    created_at
                )
                .execute(&mut *conn)
                .await?;
                add_members(conn, chat_id, &members, created_at, Some(1)).await?;
            }
            ChatEvent::MembersAdded { members, at, visible_from_seq, .. } => {
                add_members(conn, chat_id, &members, at, visible_from_seq).await?
            }
            ChatEvent::MemberJoined { user_id, at, visible_from_seq, .. } => {
                let member = MemberEntry { user_id, role: Role::Member };
                add_members(conn, chat_id, &[member], at, visible_from_seq).await?
            }
            ChatEvent::MemberRemoved { user_id, .. } => {
                sqlx::query!("DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2", chat_id, user_id)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query!("DELETE FROM hidden_messages WHERE chat_id = $1 AND user_id = $2", chat_id, user_id)
                    .execute(conn)
                    .await?;
            }
            ChatEvent::MemberRoleChanged { user_id, role, .. } => {
                sqlx::query!(
                    "UPDATE chat_members SET role = $3 WHERE chat_id = $1 AND user_id = $2",
                    chat_id,
                    user_id,
                    role_name(role)
                )
                .execute(conn)
                .await?;
            }
            ChatEvent::InviteCreated { .. } | ChatEvent::InvitesRevoked { .. } => {}
            ChatEvent::MessageSent { .. } => insert_messages(conn, &[sent_message(event)?]).await?,
            ChatEvent::MarkedRead { user_id, seq, .. } => {
                sqlx::query!(
                    "UPDATE chat_members SET read_up_to = GREATEST(read_up_to, $3) WHERE chat_id = $1 AND user_id = $2",
                    chat_id,
                    user_id,
                    seq
                )
                .execute(conn)
                .await?;
            }
            ChatEvent::MessageDeleted { seq, message_id, .. } => {
                sqlx::query!("UPDATE messages SET ciphertext = NULL, media_ids = '{}', deleted = true WHERE chat_id = $1 AND seq = $2", chat_id, seq)
                .execute(&mut *conn)
                .await?;
                // Its media are erased for all: no longer readable, and the reaper removes them.
                sqlx::query!("UPDATE message_media SET deleted = true WHERE message_id = $1", message_id)
                    .execute(conn)
                    .await?;
            }
            ChatEvent::MessageHidden { seq, user_id, .. } => {
                sqlx::query!(
                    "INSERT INTO hidden_messages (user_id, chat_id, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    user_id,
                    chat_id,
                    seq
                )
                .execute(conn)
                .await?;
            }
        }
        Ok(())
    }
}
