//! `feed`: each user's realtime frames (`user_feed`), in cursor order, for the WebSocket and its
//! replay on reconnect. Frames hold their data in full (a `message.created` frame is the message
//! as its recipients see it, stored once in `feed_messages` for all of them), so sockets need no
//! query per frame. After each commit every new
//! frame is published on core NATS (`<realtime prefix>.user.<id>`) together with the user's
//! previous cursor, which reaches whichever api replica holds the socket.
//!
//! Deleting a message for everyone turns its stored frame into a tombstone; hiding it for one
//! member leaves it out of that member's replays (`feed_hidden`), so a replay shows what a
//! history query shows.
//!
//! A member gets frames about a chat's messages only from their joining on (`feed_members`
//! `visible_from_seq`, from the membership event): no `message.created`, `message.deleted` or
//! `chat.read` about earlier messages. A removed member's `message.created` frames of the chat
//! are dropped with the membership, so a re-added member's replay, like their history, starts at
//! the re-add.
//!
//! Cursors come from one sequence; an advisory lock serialises feed transactions so that cursors
//! commit in order and a reader never skips one that commits late.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parley_domain::call::{CallEvent, CallStatus};
use parley_domain::chat::{ChatEvent, ChatKind};
use parley_domain::inbox::InboxEvent;
use parley_domain::user::UserEvent;
use parley_domain::EventEnvelope;
use parley_eventbus::stream::{feed_frame_text, RealtimeMessage};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::chat_events::{aggregate_uuid, sent_message, steps, SentMessage, Step};
use crate::chats::open_bodies;
use crate::{Projection, ProjectionError};

const FEED_LOCK_KEY: i64 = 0x0070_6172_6c65_7902;

pub struct FeedProjection {
    realtime_prefix: String,
    /// Frames written by the delivery being applied, published once it commits.
    outgoing: Mutex<Vec<Outgoing>>,
    /// Whether this transaction holds the feed lock (taken at its first event).
    locked: AtomicBool,
    /// A delivery failed with frames queued: its commit may have gone through (a connection lost
    /// during COMMIT), and then its redelivery is skipped as applied and publishes nothing, so
    /// every socket must read its feed once.
    resync_owed: AtomicBool,
}

/// A frame as stored, with the recipient's frame before it.
struct Outgoing {
    user_id: Uuid,
    prev_cursor: i64,
    cursor: i64,
    text: String,
    /// The sampled trace the frame belongs to: its delivery joins it.
    traceparent: Option<String>,
}

/// Frames to store in one statement: each payload once, and who receives which.
#[derive(Default)]
struct Frames {
    kinds: Vec<&'static str>,
    data: Vec<Value>,
    message_ids: Vec<Option<Uuid>>,
    /// Per payload, the sampled trace it continues (message frames only).
    traces: Vec<Option<String>>,
    recipients: Vec<Uuid>,
    /// For each recipient, its payload's 1-based index.
    payload_of: Vec<i64>,
}

impl Frames {
    fn add(&mut self, kind: &'static str, data: Value, message_id: Option<Uuid>, users: &[Uuid]) {
        self.add_traced(kind, data, message_id, users, None);
    }

    fn add_traced(
        &mut self,
        kind: &'static str,
        data: Value,
        message_id: Option<Uuid>,
        users: &[Uuid],
        traceparent: Option<String>,
    ) {
        if users.is_empty() {
            return;
        }
        self.kinds.push(kind);
        self.data.push(data);
        self.message_ids.push(message_id);
        self.traces.push(traceparent);
        let payload = self.kinds.len() as i64;
        self.recipients.extend_from_slice(users);
        self.payload_of.extend(users.iter().map(|_| payload));
    }
}

/// One notification to create.
struct Notice {
    user_id: Uuid,
    kind: &'static str,
    data: Value,
    at: DateTime<Utc>,
}

impl FeedProjection {
    pub fn new(realtime_prefix: String) -> Self {
        Self {
            realtime_prefix,
            outgoing: Mutex::new(Vec::new()),
            locked: AtomicBool::new(false),
            resync_owed: AtomicBool::new(false),
        }
    }

    /// Stores `frames` (for any number of users, several per user allowed) in one statement and
    /// queues them for publishing, each with its recipient's previous cursor.
    async fn store(&self, conn: &mut PgConnection, frames: Frames) -> Result<(), ProjectionError> {
        if frames.recipients.is_empty() {
            return Ok(());
        }
        // A message's frame is stored once, in `feed_messages`, and its recipients' rows point at
        // it: ten copies of it (and their index entries) had been most of the database's work
        // per message to a group of ten.
        // Cursors are drawn in recipient order before the insert, so the answer maps each back
        // to its payload without reading the stored data out again. The sequence is named, not
        // looked up with `pg_get_serial_sequence`: that lookup ran once per row (5 µs each).
        // `previous` is materialised so that each recipient's last cursor is looked up once: the
        // planner had pulled the lookup into the final join, once per frame (`EXPLAIN ANALYZE`:
        // 130 index probes for 64 recipients, about 40 % of the statement's time).
        let rows = sqlx::query!(
            "WITH payloads AS ( \
               SELECT * FROM unnest($1::text[], $2::jsonb[], $3::uuid[]) WITH ORDINALITY AS t(kind, data, message_id, p)), \
             numbered AS MATERIALIZED ( \
               SELECT n, user_id, p, nextval('user_feed_cursor_seq') AS cursor \
               FROM unnest($4::uuid[], $5::bigint[]) WITH ORDINALITY AS t(user_id, p, n) ORDER BY n), \
             previous AS MATERIALIZED ( \
               SELECT u AS user_id, (SELECT max(f.cursor) FROM user_feed f WHERE f.user_id = u) AS cursor \
               FROM (SELECT DISTINCT user_id AS u FROM numbered) d), \
             shared AS ( \
               INSERT INTO feed_messages (message_id, chat_id, data) \
               SELECT message_id, (data ->> 'chat_id')::uuid, data FROM payloads WHERE message_id IS NOT NULL \
               ON CONFLICT DO NOTHING), \
             framed AS ( \
               INSERT INTO user_feed (user_id, cursor, kind, data, message_id) \
               SELECT nb.user_id, nb.cursor, p.kind, CASE WHEN p.message_id IS NULL THEN p.data END, p.message_id \
               FROM numbered nb JOIN payloads p USING (p)) \
             SELECT nb.p AS \"payload!\", nb.user_id AS \"user_id!\", nb.cursor AS \"cursor!\", \
               COALESCE(pr.cursor, 0) AS \"stored_before!\" \
             FROM numbered nb JOIN previous pr USING (user_id) ORDER BY nb.cursor",
        &frames.kinds as _,
        &frames.data,
        &frames.message_ids as _,
        &frames.recipients,
        &frames.payload_of
    )
        .fetch_all(conn)
        .await?;
        let data: Vec<String> = frames.data.iter().map(Value::to_string).collect();
        // In cursor order, each user's frame follows the one before it in this statement.
        let mut last_cursor: HashMap<Uuid, i64> = HashMap::new();
        let mut outgoing = Vec::with_capacity(rows.len());
        for row in rows {
            let (payload, user_id, cursor, stored_before) = (row.payload, row.user_id, row.cursor, row.stored_before);
            let index = usize::try_from(payload - 1).ok().filter(|i| *i < data.len());
            let Some(index) = index else {
                return Err(ProjectionError::Inconsistent(format!("feed frame for unknown payload {payload}")));
            };
            let prev_cursor = last_cursor.insert(user_id, cursor).unwrap_or(stored_before);
            let text = feed_frame_text(frames.kinds[index], &data[index], cursor);
            let traceparent = frames.traces.get(index).cloned().flatten();
            outgoing.push(Outgoing { user_id, prev_cursor, cursor, text, traceparent });
        }
        self.outgoing.lock().unwrap_or_else(|p| p.into_inner()).extend(outgoing);
        Ok(())
    }

    /// Creates `notices` and adds a `notification.created` frame for each to `frames`.
    async fn notify(
        &self,
        conn: &mut PgConnection,
        notices: Vec<Notice>,
        frames: &mut Frames,
    ) -> Result<(), ProjectionError> {
        if notices.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = notices.iter().map(|_| Uuid::now_v7()).collect();
        sqlx::query!(
            "INSERT INTO notifications (id, user_id, kind, data, created_at) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::timestamptz[])",
            &ids,
            &notices.iter().map(|n| n.user_id).collect::<Vec<_>>(),
            &notices.iter().map(|n| n.kind).collect::<Vec<_>>() as _,
            &notices.iter().map(|n| n.data.clone()).collect::<Vec<_>>(),
            &notices.iter().map(|n| n.at).collect::<Vec<_>>()
        )
        .execute(conn)
        .await?;
        for (id, notice) in ids.into_iter().zip(notices) {
            let data = json!({
                "id": id,
                "kind": notice.kind,
                "data": notice.data,
                "created_at": notice.at.to_rfc3339(),
                "read": false,
            });
            frames.add("notification.created", data, None, &[notice.user_id]);
        }
        Ok(())
    }

    /// A run of sent messages: a few statements whatever its length (members, presence, keys,
    /// notifications, frames).
    async fn messages_sent(&self, conn: &mut PgConnection, run: &[SentMessage]) -> Result<(), ProjectionError> {
        let chat_ids: Vec<Uuid> = run.iter().map(|m| m.chat_id).collect::<BTreeSet<_>>().into_iter().collect();
        // Members and who of them has no live WebSocket (presence refreshed within 90 s), at once.
        let rows = sqlx::query!(
            r#"SELECT m.chat_id, m.user_id, NOT EXISTS (SELECT 1 FROM presence p
                 LEFT JOIN presence_replicas r ON r.replica_id = p.replica_id
                 WHERE p.user_id = m.user_id AND COALESCE(r.last_seen, p.last_seen) > now() - interval '90 seconds')
                 AS "offline!"
               FROM feed_members m WHERE m.chat_id = ANY($1)"#,
            &chat_ids
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut members: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        let mut offline = HashSet::new();
        for row in rows {
            let (chat_id, user_id, is_offline) = (row.chat_id, row.user_id, row.offline);
            members.entry(chat_id).or_default().push(user_id);
            if is_offline {
                offline.insert(user_id);
            }
        }
        let bodies = open_bodies(conn, run).await?;
        let mut notices = Vec::new();
        let mut frames = Frames::default();
        for (message, ciphertext) in run.iter().zip(bodies) {
            let in_chat = members.get(&message.chat_id).map(Vec::as_slice).unwrap_or_default();
            let about = json!({
                "chat_id": message.chat_id,
                "seq": message.seq,
                "message_id": message.message_id,
                "sender_id": message.sender_id,
            });
            notices.extend(
                in_chat.iter().filter(|u| **u != message.sender_id && offline.contains(u)).map(|u| Notice {
                    user_id: *u,
                    kind: "message",
                    data: about.clone(),
                    at: message.sent_at,
                }),
            );
            let deleted = ciphertext.is_none();
            // The same shape and time format as the history routes give.
            let data = json!({
                "id": message.message_id,
                "chat_id": message.chat_id,
                "sender_id": message.sender_id,
                "sender_device_id": message.sender_device_id,
                "seq": message.seq,
                "client_msg_id": message.client_msg_id,
                "ciphertext": ciphertext,
                "algorithm": message.algorithm,
                "media_ids": if deleted { &[][..] } else { &message.media_ids[..] },
                "reply_to": message.reply_to,
                "created_at": message.sent_at.to_rfc3339(),
                "deleted": deleted,
            });
            frames.add_traced("message.created", data, Some(message.message_id), in_chat, message.traceparent.clone());
        }
        self.notify(conn, notices, &mut frames).await?;
        self.store(conn, frames).await
    }

    /// A profile changed: `user.updated` with what changed (`avatar_media_id: null` = removed) to
    /// the user's other sessions and everyone who shares a chat with them, so names and pictures
    /// update where they show.
    async fn profile_changed(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        event: UserEvent,
    ) -> Result<(), ProjectionError> {
        let UserEvent::ProfileUpdated { name, status, avatar_media_id, .. } = event else {
            return Ok(());
        };
        let mut data = json!({"user_id": user_id});
        if let Some(name) = name {
            data["name"] = json!(name);
        }
        if let Some(status) = status {
            data["status"] = json!(status);
        }
        if let Some(avatar) = avatar_media_id {
            data["avatar_media_id"] = json!(avatar);
        }
        let mut frames = Frames::default();
        frames.add("user.updated", data, None, &contacts_of(conn, user_id).await?);
        self.store(conn, frames).await
    }

    /// A call rings its invitees (`call.ringing`, and a notification for those offline); every
    /// later change reaches the chat's members as `call.updated`; a call nobody answered leaves
    /// a missed-call notification with everyone it rang.
    async fn call_changed(
        &self,
        conn: &mut PgConnection,
        call_id: Uuid,
        event: CallEvent,
    ) -> Result<(), ProjectionError> {
        let mut frames = Frames::default();
        if let CallEvent::CallStarted { chat_id, kind, initiator_id, invitee_ids, started_at, .. } = &event {
            sqlx::query!(
                "INSERT INTO feed_calls (call_id, chat_id, invitee_ids) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                call_id,
                chat_id,
                invitee_ids
            )
            .execute(&mut *conn)
            .await?;
            let about = json!({
                "call_id": call_id,
                "chat_id": chat_id,
                "kind": kind,
                "initiator_id": initiator_id,
                "created_at": started_at.to_rfc3339(),
            });
            let offline: Vec<Uuid> = sqlx::query_scalar!(
                r#"SELECT u AS "u!" FROM unnest($1::uuid[]) AS u WHERE NOT EXISTS (SELECT 1 FROM presence p
                   LEFT JOIN presence_replicas r ON r.replica_id = p.replica_id
                   WHERE p.user_id = u AND COALESCE(r.last_seen, p.last_seen) > now() - interval '90 seconds')"#,
                invitee_ids
            )
            .fetch_all(&mut *conn)
            .await?;
            let notices = offline
                .into_iter()
                .map(|user_id| Notice { user_id, kind: "incoming_call", data: about.clone(), at: *started_at })
                .collect();
            self.notify(conn, notices, &mut frames).await?;
            frames.add("call.ringing", about, None, invitee_ids);
            return self.store(conn, frames).await;
        }
        let known = sqlx::query!("SELECT chat_id, invitee_ids FROM feed_calls WHERE call_id = $1", call_id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some((chat_id, invitee_ids)) = known.map(|row| (row.chat_id, row.invitee_ids)) else {
            return Err(ProjectionError::Inconsistent(format!("call {call_id} changed before it started")));
        };
        let data = match &event {
            CallEvent::CallAccepted { user_id, .. } => json!({"change": "accepted", "user_id": user_id}),
            CallEvent::CallRejected { user_id, .. } => json!({"change": "rejected", "user_id": user_id}),
            // The node the call's media went through is gone: join again (`POST /calls/{id}/accept`).
            CallEvent::CallMediaMoved { .. } => json!({"change": "media_moved"}),
            CallEvent::ParticipantConnected { user_id, .. } => json!({"change": "connected", "user_id": user_id}),
            CallEvent::ParticipantLeft { user_id, reason, .. } => {
                json!({"change": "left", "user_id": user_id, "reason": reason})
            }
            CallEvent::CallEnded { status, at, .. } => {
                if *status == CallStatus::Missed {
                    let about = json!({"call_id": call_id, "chat_id": chat_id});
                    let notices = invitee_ids
                        .iter()
                        .map(|user_id| Notice { user_id: *user_id, kind: "missed_call", data: about.clone(), at: *at })
                        .collect();
                    self.notify(conn, notices, &mut frames).await?;
                }
                json!({"change": "ended", "status": status})
            }
            CallEvent::CallStarted { .. } => return Ok(()),
        };
        let mut data = data;
        data["call_id"] = json!(call_id);
        data["chat_id"] = json!(chat_id);
        frames.add("call.updated", data, None, &members_now(conn, chat_id).await?);
        self.store(conn, frames).await
    }

    async fn lock_feed(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        if !self.locked.swap(true, Ordering::Relaxed) {
            sqlx::query!("SELECT pg_advisory_xact_lock($1)", FEED_LOCK_KEY).execute(conn).await?;
        }
        Ok(())
    }
}

fn added_to_group(users: &[Uuid], about: &Value, at: DateTime<Utc>) -> Vec<Notice> {
    users.iter().map(|u| Notice { user_id: *u, kind: "added_to_group", data: about.clone(), at }).collect()
}

async fn members_now(conn: &mut PgConnection, chat_id: Uuid) -> Result<Vec<Uuid>, ProjectionError> {
    Ok(sqlx::query_scalar!("SELECT user_id FROM feed_members WHERE chat_id = $1", chat_id).fetch_all(conn).await?)
}

/// The members who may see the message at `seq` (they joined at or before it).
async fn members_seeing(conn: &mut PgConnection, chat_id: Uuid, seq: i64) -> Result<Vec<Uuid>, ProjectionError> {
    Ok(sqlx::query_scalar!(
        "SELECT user_id FROM feed_members WHERE chat_id = $1 AND visible_from_seq <= $2",
        chat_id,
        seq
    )
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
        | ChatEvent::InvitesRevoked { at, .. }
        | ChatEvent::MemberJoined { at, .. }
        | ChatEvent::MarkedRead { at, .. }
        | ChatEvent::MessageDeleted { at, .. }
        | ChatEvent::MessageHidden { at, .. } => *at,
    }
}

/// `user_id` and everyone who shares a chat with them: who sees their profile in a chat.
async fn contacts_of(conn: &mut PgConnection, user_id: Uuid) -> Result<Vec<Uuid>, ProjectionError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT $1::uuid AS "user_id!" UNION SELECT other.user_id FROM feed_members mine
         JOIN feed_members other ON other.chat_id = mine.chat_id WHERE mine.user_id = $1"#,
        user_id
    )
    .fetch_all(conn)
    .await?)
}

async fn apply_inbox(conn: &mut PgConnection, user_id: Uuid, event: InboxEvent) -> Result<(), ProjectionError> {
    match event {
        InboxEvent::NotificationsMarkedRead { ids: Some(ids), .. } => {
            sqlx::query!("UPDATE notifications SET read = true WHERE user_id = $1 AND id = ANY($2)", user_id, &ids)
                .execute(conn)
                .await?;
        }
        InboxEvent::NotificationsMarkedRead { ids: None, at } => {
            sqlx::query!("UPDATE notifications SET read = true WHERE user_id = $1 AND created_at <= $2", user_id, at)
                .execute(conn)
                .await?;
        }
        InboxEvent::NotificationDeleted { id, .. } => {
            sqlx::query!("DELETE FROM notifications WHERE user_id = $1 AND id = $2", user_id, id).execute(conn).await?;
        }
    }
    Ok(())
}

/// Starts memberships at `visible_from_seq` (`None` in events recorded before memberships had a
/// starting point: such members see from 1, as they did then).
async fn add_members(
    conn: &mut PgConnection,
    chat_id: Uuid,
    users: &[Uuid],
    visible_from_seq: Option<i64>,
) -> Result<(), ProjectionError> {
    sqlx::query!(
        "INSERT INTO feed_members (chat_id, user_id, visible_from_seq) \
         SELECT $1, u, $3 FROM unnest($2::uuid[]) AS u ON CONFLICT DO NOTHING",
        chat_id,
        users,
        visible_from_seq.unwrap_or(1)
    )
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
        &["Chat", "Inbox", "Call", "User"]
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        // Rebuilt frames get new, higher cursors (the sequence is not reset), so a client that
        // reconnects with an old cursor is replayed the whole rebuilt feed rather than missing any.
        sqlx::query!("TRUNCATE user_feed, feed_messages, feed_hidden, feed_members, feed_calls, notifications")
            .execute(conn)
            .await?;
        Ok(())
    }

    fn begin_delivery(&self) {
        let mut outgoing = self.outgoing.lock().unwrap_or_else(|p| p.into_inner());
        if !outgoing.is_empty() {
            self.resync_owed.store(true, Ordering::Relaxed);
        }
        outgoing.clear();
        self.locked.store(false, Ordering::Relaxed);
    }

    async fn after_commit(&self, nats: &async_nats::Client) {
        let outgoing = std::mem::take(&mut *self.outgoing.lock().unwrap_or_else(|p| p.into_inner()));
        for frame in outgoing {
            let subject = parley_eventbus::stream::realtime_subject(&self.realtime_prefix, frame.user_id);
            let message =
                RealtimeMessage::Frame { prev_cursor: frame.prev_cursor, cursor: frame.cursor, text: &frame.text };
            // A sampled message's frame: the delivery continues this batch's span when the batch
            // continues the message's trace, else the message's own.
            let traceparent = frame
                .traceparent
                .as_deref()
                .map(|own| parley_runtime::traces::traceparent_within(&tracing::Span::current(), own));
            let payload = message.encode().into();
            let published = parley_eventbus::stream::publish_realtime(nats, subject, payload, traceparent.as_deref());
            if let Err(error) = published.await {
                // The socket's periodic poll reads the stored frame anyway.
                tracing::debug!(%error, "could not publish a realtime frame");
            }
        }
        if self.resync_owed.load(Ordering::Relaxed) {
            let subject = parley_eventbus::stream::resync_subject(&self.realtime_prefix);
            match nats.publish(subject, Default::default()).await {
                Ok(()) => self.resync_owed.store(false, Ordering::Relaxed),
                Err(error) => tracing::warn!(%error, "could not ask the api replicas to resync their sockets"),
            }
        }
    }

    async fn apply_all(&self, conn: &mut PgConnection, events: &[EventEnvelope]) -> Result<(), ProjectionError> {
        self.lock_feed(conn).await?;
        for step in steps(events)? {
            match step {
                Step::Sent(run) => self.messages_sent(conn, &run).await?,
                Step::Other(event) => self.apply(conn, event).await?,
            }
        }
        Ok(())
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        let decode_error = |source| ProjectionError::Decode { event_id: event.event_id.clone(), source };
        let aggregate_id = aggregate_uuid(event)?;
        self.lock_feed(conn).await?;
        let mut frames = Frames::default();
        if event.aggregate_type == "Inbox" {
            let decoded: InboxEvent = event.decode().map_err(decode_error)?;
            return apply_inbox(conn, aggregate_id, decoded).await;
        }
        if event.aggregate_type == "Call" {
            let decoded: CallEvent = event.decode().map_err(decode_error)?;
            return self.call_changed(conn, aggregate_id, decoded).await;
        }
        if event.aggregate_type == "User" {
            let decoded: UserEvent = event.decode().map_err(decode_error)?;
            return self.profile_changed(conn, aggregate_id, decoded).await;
        }
        let decoded: ChatEvent = event.decode().map_err(decode_error)?;
        let chat_id = aggregate_id;
        let at = event_time(&decoded);
        let (recipients, kind, data) = match decoded {
            ChatEvent::ChatCreated { members, kind, created_by, .. } => {
                let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
                add_members(conn, chat_id, &ids, Some(1)).await?;
                if kind == ChatKind::Group {
                    let added: Vec<Uuid> = ids.iter().copied().filter(|id| *id != created_by).collect();
                    let about = json!({"chat_id": chat_id, "added_by": created_by});
                    self.notify(conn, added_to_group(&added, &about, at), &mut frames).await?;
                }
                (ids.clone(), "chat.member_added", json!({"chat_id": chat_id, "user_ids": ids}))
            }
            ChatEvent::MembersAdded { members, added_by, visible_from_seq, .. } => {
                let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
                add_members(conn, chat_id, &ids, visible_from_seq).await?;
                let about = json!({"chat_id": chat_id, "added_by": added_by});
                self.notify(conn, added_to_group(&ids, &about, at), &mut frames).await?;
                (
                    members_now(conn, chat_id).await?,
                    "chat.member_added",
                    json!({"chat_id": chat_id, "user_ids": ids, "added_by": added_by}),
                )
            }
            ChatEvent::MemberJoined { user_id, visible_from_seq, .. } => {
                add_members(conn, chat_id, &[user_id], visible_from_seq).await?;
                (
                    members_now(conn, chat_id).await?,
                    "chat.member_added",
                    json!({"chat_id": chat_id, "user_ids": [user_id]}),
                )
            }
            ChatEvent::MemberRemoved { user_id, removed_by, .. } => {
                let everyone = members_now(conn, chat_id).await?;
                sqlx::query!("DELETE FROM feed_members WHERE chat_id = $1 AND user_id = $2", chat_id, user_id)
                    .execute(&mut *conn)
                    .await?;
                // Shared frames name their chat in `feed_messages`; frames stored before, in their copy.
                sqlx::query!(
                    "DELETE FROM user_feed f WHERE f.user_id = $2 AND f.kind = 'message.created' \
                     AND COALESCE((f.data ->> 'chat_id')::uuid, \
                                  (SELECT m.chat_id FROM feed_messages m WHERE m.message_id = f.message_id)) = $1",
                    chat_id,
                    user_id
                )
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
            ChatEvent::InviteCreated { .. } | ChatEvent::InvitesRevoked { .. } => return Ok(()),
            ChatEvent::MessageSent { .. } => return self.messages_sent(conn, &[sent_message(event)?]).await,
            ChatEvent::MarkedRead { user_id, seq, .. } => (
                members_seeing(conn, chat_id, seq).await?,
                "chat.read",
                json!({"chat_id": chat_id, "user_id": user_id, "up_to_seq": seq}),
            ),
            ChatEvent::MessageDeleted { message_id, seq, .. } => {
                sqlx::query!(
                    "UPDATE feed_messages SET data = data || '{\"ciphertext\": null, \"media_ids\": [], \"deleted\": true}' \
                     WHERE message_id = $1",
                    message_id
                )
                .execute(&mut *conn)
                .await?;
                // Frames stored before frames were shared hold a copy each.
                sqlx::query!(
                    "UPDATE user_feed SET data = data || '{\"ciphertext\": null, \"media_ids\": [], \"deleted\": true}' \
                     WHERE message_id = $1 AND data IS NOT NULL AND kind = 'message.created'",
                    message_id
                )
                .execute(&mut *conn)
                .await?;
                (
                    members_seeing(conn, chat_id, seq).await?,
                    "message.deleted",
                    json!({"chat_id": chat_id, "seq": seq, "message_id": message_id, "for": "everyone"}),
                )
            }
            ChatEvent::MessageHidden { message_id, seq, user_id, .. } => {
                // Replays leave it out; its frame stays, shared with the other members.
                sqlx::query!(
                    "INSERT INTO feed_hidden (user_id, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    user_id,
                    message_id
                )
                .execute(&mut *conn)
                .await?;
                (
                    vec![user_id],
                    "message.deleted",
                    json!({"chat_id": chat_id, "seq": seq, "message_id": message_id, "for": "me"}),
                )
            }
        };
        frames.add(kind, data, None, &recipients);
        self.store(conn, frames).await
    }
}
