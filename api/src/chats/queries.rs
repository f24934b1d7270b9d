//! Reads of the chat read models (and the write side's small lookup tables).
//!
//! Every read of messages applies the reader's membership: a member sees the messages from their
//! membership's `visible_from_seq` on (the first `seq` after they joined or were re-added).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::views::{chat_type, ChatSummary, ChatView, MemberView, MessageView};

const MESSAGE_COLUMNS: &str =
    "m.id, m.chat_id, m.sender_id, m.sender_device_id, m.seq, m.client_msg_id, m.ciphertext, m.algorithm, m.media_ids, m.reply_to, m.created_at, m.deleted";

/// Whether `viewer` sees the message: a member whose membership started at or before it.
const VISIBLE_TO_VIEWER: &str = "EXISTS (SELECT 1 FROM chat_members cm \
     WHERE cm.chat_id = m.chat_id AND cm.user_id = $3 AND m.seq >= cm.visible_from_seq)";

/// And `viewer` has not hidden it for themselves.
const NOT_HIDDEN_FOR_VIEWER: &str = "NOT EXISTS (SELECT 1 FROM hidden_messages h \
     WHERE h.user_id = $3 AND h.chat_id = m.chat_id AND h.seq = m.seq)";

pub async fn is_member(pool: &PgPool, chat_id: Uuid, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let found = sqlx::query_scalar!(
        r#"SELECT 1 AS "found!" FROM chat_members WHERE chat_id = $1 AND user_id = $2"#,
        chat_id,
        user_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

struct ChatRow {
    kind: String,
    name: Option<String>,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    last_seq: i64,
    last_activity_at: DateTime<Utc>,
}

/// The chat as `viewer` sees it; `None` if it does not exist or `viewer` is not a member.
pub async fn chat_for(pool: &PgPool, chat_id: Uuid, viewer: Uuid) -> Result<Option<ChatView>, sqlx::Error> {
    if !is_member(pool, chat_id, viewer).await? {
        return Ok(None);
    }
    let row = sqlx::query_as!(
        ChatRow,
        "SELECT kind, name, created_by, created_at, last_seq, last_activity_at FROM chats WHERE id = $1",
        chat_id
    )
    .fetch_optional(pool)
    .await?;
    let Some(ChatRow { kind, name, created_by, created_at, last_seq, last_activity_at }) = row else { return Ok(None) };
    let members = sqlx::query_as!(
        MemberView,
        "SELECT user_id, role, joined_at, read_up_to AS read_up_to_seq FROM chat_members \
         WHERE chat_id = $1 ORDER BY joined_at, user_id",
        chat_id
    )
    .fetch_all(pool)
    .await?;
    Ok(Some(ChatView {
        id: chat_id,
        chat_type: chat_type(&kind),
        name,
        created_by,
        created_at,
        members,
        last_seq,
        last_activity_at,
    }))
}

struct SummaryRow {
    id: Uuid,
    kind: String,
    name: Option<String>,
    member_count: i64,
    last_seq: i64,
    last_activity_at: DateTime<Utc>,
    unread_count: i64,
    visible_from_seq: i64,
}

/// `viewer`'s chats, newest activity first, after `(before_activity, before_id)` when given.
pub async fn chats_of(
    pool: &PgPool,
    viewer: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<ChatSummary>, sqlx::Error> {
    let rows = sqlx::query_as!(
        SummaryRow,
        r#"SELECT c.id, c.kind, c.name, c.last_seq, c.last_activity_at, me.visible_from_seq,
             (SELECT count(*) FROM chat_members x WHERE x.chat_id = c.id) AS "member_count!",
             GREATEST(c.last_seq - GREATEST(me.read_up_to, me.visible_from_seq - 1), 0) AS "unread_count!"
           FROM chat_members me JOIN chats c ON c.id = me.chat_id
           WHERE me.user_id = $1 AND ($2::timestamptz IS NULL OR (c.last_activity_at, c.id) < ($2, $3))
           ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $4"#,
        viewer,
        after.map(|a| a.0),
        after.map(|a| a.1).unwrap_or_default(),
        i64::from(limit)
    )
    .fetch_all(pool)
    .await?;
    // Every chat's newest message in one query, not one per chat; none when it came before the
    // viewer joined.
    let (chat_ids, seqs): (Vec<Uuid>, Vec<i64>) =
        rows.iter().filter(|r| r.last_seq > 0 && r.last_seq >= r.visible_from_seq).map(|r| (r.id, r.last_seq)).unzip();
    let newest: Vec<MessageView> = sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m \
         JOIN unnest($1::uuid[], $2::bigint[]) AS t(chat_id, seq) ON m.chat_id = t.chat_id AND m.seq = t.seq \
         WHERE {VISIBLE_TO_VIEWER} AND {NOT_HIDDEN_FOR_VIEWER}"
    ))
    .bind(&chat_ids)
    .bind(&seqs)
    .bind(viewer)
    .fetch_all(pool)
    .await?;
    let mut newest: HashMap<Uuid, MessageView> = newest.into_iter().map(|m| (m.chat_id, m)).collect();
    let mut summaries = Vec::with_capacity(rows.len());
    for row in rows {
        let last_message = newest.remove(&row.id);
        summaries.push(ChatSummary {
            id: row.id,
            chat_type: chat_type(&row.kind),
            name: row.name,
            member_count: row.member_count,
            last_seq: row.last_seq,
            last_activity_at: row.last_activity_at,
            last_message,
            unread_count: row.unread_count,
        });
    }
    Ok(summaries)
}

/// The message of this chat with this id, if `viewer` sees it (a member since before it; a
/// message they hid for themselves still counts, as for deleting it).
pub async fn visible_message_by_id(
    pool: &PgPool,
    chat_id: Uuid,
    message_id: Uuid,
    viewer: Uuid,
) -> Result<Option<MessageView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.chat_id = $1 AND m.id = $2 AND {VISIBLE_TO_VIEWER}"
    ))
    .bind(chat_id)
    .bind(message_id)
    .bind(viewer)
    .fetch_optional(pool)
    .await
}

/// A page of history for `viewer`: newest first below `before_seq`, or oldest first above
/// `after_seq` (catching up). Hidden messages and those before the viewer joined are left out.
pub async fn messages_page(
    pool: &PgPool,
    chat_id: Uuid,
    viewer: Uuid,
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    limit: u32,
) -> Result<Vec<MessageView>, sqlx::Error> {
    let (condition, order) = match after_seq {
        Some(_) => ("m.seq > $2", "ASC"),
        None => ("m.seq < $2", "DESC"),
    };
    let bound = after_seq.or(before_seq).unwrap_or(i64::MAX);
    sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.chat_id = $1 AND {condition} \
         AND m.seq >= (SELECT cm.visible_from_seq FROM chat_members cm WHERE cm.chat_id = $1 AND cm.user_id = $3) \
         AND {NOT_HIDDEN_FOR_VIEWER} \
         ORDER BY m.seq {order} LIMIT $4"
    ))
    .bind(chat_id)
    .bind(bound)
    .bind(viewer)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// The `seq` of the message with this id in this chat, if there is one.
pub async fn message_seq(pool: &PgPool, chat_id: Uuid, message_id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!("SELECT seq FROM messages WHERE chat_id = $1 AND id = $2", chat_id, message_id)
        .fetch_optional(pool)
        .await
}

pub async fn direct_chat_between(pool: &PgPool, a: Uuid, b: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT chat_id FROM direct_chats WHERE user_low = least($1::uuid, $2::uuid) AND user_high = greatest($1::uuid, $2::uuid)",
        a,
        b
    )
    .fetch_optional(pool)
    .await
}

pub async fn chat_for_invite(pool: &PgPool, code: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("SELECT chat_id FROM chat_invites WHERE code = $1", code).fetch_optional(pool).await
}

/// The message a previous attempt with this `client_msg_id` created, if any.
pub async fn sent_with_client_id(
    pool: &PgPool,
    chat_id: Uuid,
    sender_id: Uuid,
    client_msg_id: &str,
) -> Result<Option<(Uuid, i64)>, sqlx::Error> {
    let sent = sqlx::query!(
        "SELECT message_id, seq FROM chat_client_messages WHERE chat_id = $1 AND sender_id = $2 AND client_msg_id = $3",
        chat_id,
        sender_id,
        client_msg_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(sent.map(|row| (row.message_id, row.seq)))
}

/// How many of `ids` are registered users.
pub async fn existing_users(pool: &PgPool, ids: &[Uuid]) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM users WHERE id = ANY($1)"#, ids).fetch_one(pool).await
}

/// Whether the `chats` read model has applied every event committed for `chat_id`.
pub async fn chat_caught_up(pool: &PgPool, chat_id: Uuid) -> Result<bool, sqlx::Error> {
    crate::commands::aggregate_caught_up(pool, "chats", "Chat", chat_id).await
}

/// Whether the `chats` read model has applied every event committed for the chats `user_id` is in
/// (one primary-key probe per chat: is there an event after the applied version?).
pub async fn chats_of_caught_up(pool: &PgPool, user_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT NOT EXISTS (SELECT 1 FROM chat_members m
             JOIN projection_versions v
               ON v.projection = 'chats' AND v.aggregate_type = 'Chat' AND v.aggregate_id = m.chat_id::text
             WHERE m.user_id = $1 AND EXISTS (SELECT 1 FROM events e
               WHERE e.aggregate_type = 'Chat' AND e.aggregate_id = v.aggregate_id AND e.sequence = v.version + 1))
           AS "caught_up!""#,
        user_id
    )
    .fetch_one(pool)
    .await
}
