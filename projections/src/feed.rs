//! `feed`: each user's realtime frames (`user_feed`), in cursor order, for the WebSocket and its
//! replay on reconnect. Frames hold their data in full (a `message.created` frame is the message
//! as its recipients see it), so sockets need no query per frame. After each commit every new
//! frame is published on core NATS (`<realtime prefix>.user.<id>`) together with the user's
//! previous cursor, which reaches whichever api replica holds the socket.
//!
//! Deleting a message for everyone turns its stored frames into tombstones; hiding it for one
//! member removes that member's frame, so a replay shows what a history query shows.
//!
//! Cursors come from one sequence; an advisory lock serialises feed transactions so that cursors
//! commit in order and a reader never skips one that commits late.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parley_domain::chat::{ChatEvent, ChatKind};
use parley_domain::inbox::InboxEvent;
use parley_domain::EventEnvelope;
use parley_eventbus::stream::{feed_frame_text, RealtimeMessage};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::chats::open_body;
use crate::{Projection, ProjectionError};

const FEED_LOCK_KEY: i64 = 0x0070_6172_6c65_7902;

pub struct FeedProjection {
    realtime_prefix: String,
    /// Frames written by the delivery being applied, published once it commits.
    outgoing: Mutex<Vec<Outgoing>>,
    /// Whether this transaction holds the feed lock (taken at its first event).
    locked: AtomicBool,
}

/// A frame as stored, with the recipient's frame before it.
struct Outgoing {
    user_id: Uuid,
    prev_cursor: i64,
    cursor: i64,
    text: String,
}

impl FeedProjection {
    /// Creates a notification for each of `users` and a `notification.created` frame with it.
    async fn notify(
        &self,
        conn: &mut PgConnection,
        users: &[Uuid],
        kind: &str,
        data: Value,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        if users.is_empty() {
            return Ok(());
        }
        // One statement for all recipients: a group of a thousand offline members is one round trip.
        let ids: Vec<Uuid> = users.iter().map(|_| Uuid::now_v7()).collect();
        let rows: Vec<(Uuid, i64, i64, String)> = sqlx::query_as(
            "WITH created AS ( \
               INSERT INTO notifications (id, user_id, kind, data, created_at) \
               SELECT id, u, $3, $4, $5 FROM unnest($1::uuid[], $2::uuid[]) AS t(id, u) RETURNING id, user_id), \
             previous AS ( \
               SELECT u AS user_id, (SELECT max(f.cursor) FROM user_feed f WHERE f.user_id = u) AS cursor \
               FROM unnest($2::uuid[]) AS u), \
             framed AS ( \
               INSERT INTO user_feed (user_id, kind, data) \
               SELECT user_id, 'notification.created', jsonb_build_object( \
                 'id', id, 'kind', $3::text, 'data', $4::jsonb, 'created_at', $6::jsonb, 'read', false) FROM created \
               RETURNING user_id, cursor, data) \
             SELECT f.user_id, f.cursor, COALESCE(p.cursor, 0), f.data::text FROM framed f JOIN previous p USING (user_id)",
        )
        .bind(&ids)
        .bind(users)
        .bind(kind)
        .bind(&data)
        .bind(at)
        .bind(json!(at))
        .fetch_all(&mut *conn)
        .await?;
        let frames = rows.into_iter().map(|(user_id, cursor, prev_cursor, data)| Outgoing {
            user_id,
            prev_cursor,
            cursor,
            text: feed_frame_text("notification.created", &data, cursor),
        });
        self.outgoing.lock().unwrap_or_else(|p| p.into_inner()).extend(frames);
        Ok(())
    }

    /// Stores one frame for each of `users` (`message_id` ties a message's frames to it).
    async fn push(
        &self,
        conn: &mut PgConnection,
        users: &[Uuid],
        kind: &str,
        data: Value,
        message_id: Option<Uuid>,
    ) -> Result<(), ProjectionError> {
        let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
            "WITH previous AS ( \
               SELECT u AS user_id, (SELECT max(f.cursor) FROM user_feed f WHERE f.user_id = u) AS cursor \
               FROM unnest($1::uuid[]) AS u), \
             framed AS ( \
               INSERT INTO user_feed (user_id, kind, data, message_id) SELECT user_id, $2, $3, $4 FROM previous \
               RETURNING user_id, cursor) \
             SELECT f.user_id, f.cursor, COALESCE(p.cursor, 0) FROM framed f JOIN previous p USING (user_id)",
        )
        .bind(users)
        .bind(kind)
        .bind(&data)
        .bind(message_id)
        .fetch_all(conn)
        .await?;
        let data = data.to_string();
        let frames = rows.into_iter().map(|(user_id, cursor, prev_cursor)| Outgoing {
            user_id,
            prev_cursor,
            cursor,
            text: feed_frame_text(kind, &data, cursor),
        });
        self.outgoing.lock().unwrap_or_else(|p| p.into_inner()).extend(frames);
        Ok(())
    }

    pub fn new(realtime_prefix: String) -> Self {
        Self { realtime_prefix, outgoing: Mutex::new(Vec::new()), locked: AtomicBool::new(false) }
    }
}

async fn members_now(conn: &mut PgConnection, chat_id: Uuid) -> Result<Vec<Uuid>, ProjectionError> {
    Ok(sqlx::query_scalar("SELECT user_id FROM feed_members WHERE chat_id = $1").bind(chat_id).fetch_all(conn).await?)
}

/// Those of `users` without a live WebSocket (presence refreshed within the last 90 s).
async fn offline(conn: &mut PgConnection, users: &[Uuid]) -> Result<Vec<Uuid>, ProjectionError> {
    Ok(sqlx::query_scalar(
        "SELECT u FROM unnest($1::uuid[]) AS u WHERE NOT EXISTS \
         (SELECT 1 FROM presence p WHERE p.user_id = u AND p.last_seen > now() - interval '90 seconds')",
    )
    .bind(users)
    .fetch_all(conn)
    .await?)
}

fn event_time(event: &ChatEvent) -> DateTime<Utc> {
    match event {
        ChatEvent::ChatCreated { created_at: at, .. } | ChatEvent::MessageSent { sent_at: at, .. } => *at,
        ChatEvent::MembersAdded { at, .. }
        | ChatEvent::MemberRemoved { at, .. }
        | ChatEvent::MemberRoleChanged { at, .. }
        | ChatEvent::InviteCreated { at, .. }
        | ChatEvent::MemberJoined { at, .. }
        | ChatEvent::ReadUpTo { at, .. }
        | ChatEvent::MessageDeleted { at, .. }
        | ChatEvent::MessageHidden { at, .. } => *at,
    }
}

async fn apply_inbox(conn: &mut PgConnection, user_id: Uuid, event: InboxEvent) -> Result<(), ProjectionError> {
    match event {
        InboxEvent::NotificationsMarkedRead { ids: Some(ids), .. } => {
            sqlx::query("UPDATE notifications SET read = true WHERE user_id = $1 AND id = ANY($2)")
                .bind(user_id)
                .bind(ids)
                .execute(conn)
                .await?;
        }
        InboxEvent::NotificationsMarkedRead { ids: None, at } => {
            sqlx::query("UPDATE notifications SET read = true WHERE user_id = $1 AND created_at <= $2")
                .bind(user_id)
                .bind(at)
                .execute(conn)
                .await?;
        }
        InboxEvent::NotificationDeleted { id, .. } => {
            sqlx::query("DELETE FROM notifications WHERE user_id = $1 AND id = $2")
                .bind(user_id)
                .bind(id)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

async fn add_members(conn: &mut PgConnection, chat_id: Uuid, users: &[Uuid]) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO feed_members (chat_id, user_id) SELECT $1, u FROM unnest($2::uuid[]) AS u ON CONFLICT DO NOTHING",
    )
    .bind(chat_id)
    .bind(users)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl Projection for FeedProjection {
    fn name(&self) -> &'static str {
        "feed"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Chat", "Inbox"]
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        // Rebuilt frames get new, higher cursors (the sequence is not reset), so a client that
        // reconnects with an old cursor is replayed the whole rebuilt feed rather than missing any.
        sqlx::query("TRUNCATE user_feed, feed_members, notifications").execute(conn).await?;
        Ok(())
    }

    fn begin_delivery(&self) {
        self.outgoing.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.locked.store(false, Ordering::Relaxed);
    }

    async fn after_commit(&self, nats: &async_nats::Client) {
        let outgoing = std::mem::take(&mut *self.outgoing.lock().unwrap_or_else(|p| p.into_inner()));
        for frame in outgoing {
            let subject = parley_eventbus::stream::realtime_subject(&self.realtime_prefix, frame.user_id);
            let message =
                RealtimeMessage::Frame { prev_cursor: frame.prev_cursor, cursor: frame.cursor, text: &frame.text };
            if let Err(error) = nats.publish(subject, message.encode().into()).await {
                // The socket's periodic poll reads the stored frame anyway.
                tracing::debug!(%error, "could not publish a realtime frame");
            }
        }
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        let decode_error = |source| ProjectionError::Decode { event_id: event.event_id.clone(), source };
        let aggregate_id = Uuid::parse_str(&event.aggregate_id)
            .map_err(|_| decode_error(serde::de::Error::custom("aggregate id is not a UUID")))?;
        if !self.locked.swap(true, Ordering::Relaxed) {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(FEED_LOCK_KEY).execute(&mut *conn).await?;
        }
        if event.aggregate_type == "Inbox" {
            let decoded: InboxEvent = serde_json::from_value(event.payload.clone()).map_err(decode_error)?;
            return apply_inbox(conn, aggregate_id, decoded).await;
        }
        let decoded: ChatEvent = serde_json::from_value(event.payload.clone()).map_err(decode_error)?;
        let chat_id = aggregate_id;
        let at = event_time(&decoded);
        let (recipients, kind, data) = match decoded {
            ChatEvent::ChatCreated { members, kind, created_by, .. } => {
                let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
                add_members(conn, chat_id, &ids).await?;
                if kind == ChatKind::Group {
                    let added: Vec<Uuid> = ids.iter().copied().filter(|id| *id != created_by).collect();
                    self.notify(
                        conn,
                        &added,
                        "added_to_group",
                        json!({"chat_id": chat_id, "added_by": created_by}),
                        at,
                    )
                    .await?;
                }
                (ids.clone(), "chat.member_added", json!({"chat_id": chat_id, "user_ids": ids}))
            }
            ChatEvent::MembersAdded { members, added_by, .. } => {
                let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
                add_members(conn, chat_id, &ids).await?;
                self.notify(conn, &ids, "added_to_group", json!({"chat_id": chat_id, "added_by": added_by}), at)
                    .await?;
                (
                    members_now(conn, chat_id).await?,
                    "chat.member_added",
                    json!({"chat_id": chat_id, "user_ids": ids, "added_by": added_by}),
                )
            }
            ChatEvent::MemberJoined { user_id, .. } => {
                add_members(conn, chat_id, &[user_id]).await?;
                (
                    members_now(conn, chat_id).await?,
                    "chat.member_added",
                    json!({"chat_id": chat_id, "user_ids": [user_id]}),
                )
            }
            ChatEvent::MemberRemoved { user_id, removed_by, .. } => {
                let everyone = members_now(conn, chat_id).await?;
                sqlx::query("DELETE FROM feed_members WHERE chat_id = $1 AND user_id = $2")
                    .bind(chat_id)
                    .bind(user_id)
                    .execute(&mut *conn)
                    .await?;
                (
                    everyone,
                    "chat.member_removed",
                    json!({"chat_id": chat_id, "user_id": user_id, "removed_by": removed_by}),
                )
            }
            ChatEvent::MemberRoleChanged { user_id, role, .. } => (
                members_now(conn, chat_id).await?,
                "chat.member_updated",
                json!({"chat_id": chat_id, "user_id": user_id, "role": role}),
            ),
            ChatEvent::InviteCreated { .. } => return Ok(()),
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
                let members = members_now(conn, chat_id).await?;
                let others: Vec<Uuid> = members.iter().copied().filter(|id| *id != sender_id).collect();
                let offline = offline(conn, &others).await?;
                let about = json!({"chat_id": chat_id, "seq": seq, "message_id": message_id, "sender_id": sender_id});
                self.notify(conn, &offline, "message", about, at).await?;
                let ciphertext = open_body(conn, message_id, &body).await?;
                let deleted = ciphertext.is_none();
                // The same shape and time format as the history routes give.
                let message = json!({
                    "id": message_id,
                    "chat_id": chat_id,
                    "sender_id": sender_id,
                    "seq": seq,
                    "client_msg_id": client_msg_id,
                    "ciphertext": ciphertext,
                    "algorithm": algorithm,
                    "media_ids": if deleted { Vec::new() } else { media_ids },
                    "reply_to": reply_to,
                    "created_at": sent_at.to_rfc3339(),
                    "deleted": deleted,
                });
                self.push(conn, &members, "message.created", message, Some(message_id)).await?;
                return Ok(());
            }
            ChatEvent::ReadUpTo { user_id, seq, .. } => (
                members_now(conn, chat_id).await?,
                "chat.read",
                json!({"chat_id": chat_id, "user_id": user_id, "up_to_seq": seq}),
            ),
            ChatEvent::MessageDeleted { message_id, seq, .. } => {
                sqlx::query(
                    "UPDATE user_feed SET data = data || '{\"ciphertext\": null, \"media_ids\": [], \"deleted\": true}' \
                     WHERE message_id = $1 AND kind = 'message.created'",
                )
                .bind(message_id)
                .execute(&mut *conn)
                .await?;
                (
                    members_now(conn, chat_id).await?,
                    "message.deleted",
                    json!({"chat_id": chat_id, "seq": seq, "message_id": message_id, "for": "everyone"}),
                )
            }
            ChatEvent::MessageHidden { message_id, seq, user_id, .. } => {
                sqlx::query(
                    "DELETE FROM user_feed WHERE user_id = $1 AND message_id = $2 AND kind = 'message.created'",
                )
                .bind(user_id)
                .bind(message_id)
                .execute(&mut *conn)
                .await?;
                (
                    vec![user_id],
                    "message.deleted",
                    json!({"chat_id": chat_id, "seq": seq, "message_id": message_id, "for": "me"}),
                )
            }
        };
        self.push(conn, &recipients, kind, data, None).await
    }
}
