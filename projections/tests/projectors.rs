//! Every projector, given events, leaves the rows its queries read: on a database of its own per
//! test (the test PostgreSQL server `scripts/test` starts, `PARLEY_TEST_DATABASE_URL`). Events are
//! built from the domain's types and applied as a live delivery applies them (`apply_all` in one
//! transaction); the last test rebuilds from the event store.

use std::collections::HashMap;

use anyhow::Result;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use cqrs_es::DomainEvent;
use parley_domain::call::{CallEvent, CallKind, CallStatus};
use parley_domain::chat::{ChatEvent, ChatKind, MemberEntry, Role};
use parley_domain::device::{DeviceEvent, IdentityKeys, OneTimeKey};
use parley_domain::media::{DeleteReason, MediaEvent};
use parley_domain::sealed;
use parley_domain::session::{RevocationReason, SessionEvent};
use parley_domain::to_device::{ToDeviceEvent, ToDeviceMessage};
use parley_domain::user::UserEvent;
use parley_domain::EventEnvelope;
use parley_projections::calls::CallsProjection;
use parley_projections::chats::ChatsProjection;
use parley_projections::feed::FeedProjection;
use parley_projections::keys::KeysProjection;
use parley_projections::media::MediaProjection;
use parley_projections::users::UsersProjection;
use parley_projections::{projector, Projection};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

/// A migrated database of its own, and the events given so far (numbered per aggregate).
struct Given {
    pool: PgPool,
    sequences: HashMap<(String, String), i64>,
    position: i64,
}

impl Given {
    async fn database() -> Result<Self> {
        let url = parley_tests::fresh_database("projections").await?;
        let pool = PgPoolOptions::new().max_connections(2).connect(&url).await?;
        parley_eventbus::migrate(&pool).await?;
        Ok(Self { pool, sequences: HashMap::new(), position: 0 })
    }

    /// `event`, committed next on aggregate `id` of `aggregate_type`.
    fn event<E: DomainEvent + Serialize>(&mut self, aggregate_type: &str, id: Uuid, event: E) -> Result<EventEnvelope> {
        let sequence = self.sequences.entry((aggregate_type.to_owned(), id.to_string())).or_default();
        *sequence += 1;
        self.position += 1;
        Ok(EventEnvelope {
            event_id: EventEnvelope::id_for(aggregate_type, &id.to_string(), *sequence),
            position: self.position,
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: id.to_string(),
            sequence: *sequence,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::value::to_raw_value(&event)?,
            metadata: serde_json::value::to_raw_value(&serde_json::json!({}))?,
        })
    }

    /// Applies `events` as one live delivery does: in one transaction.
    async fn apply(&self, projection: &dyn Projection, events: &[EventEnvelope]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        projection.apply_all(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `N` message ids with their body key committed, as the api commits it beside each
    /// `MessageSent` event, and that key.
    async fn keyed_messages<const N: usize>(&self) -> Result<([u8; sealed::KEY_BYTES], [Uuid; N])> {
        let key = [7u8; sealed::KEY_BYTES];
        let ids: [Uuid; N] = std::array::from_fn(|_| Uuid::now_v7());
        for message_id in ids {
            sqlx::query("INSERT INTO message_keys (message_id, key) VALUES ($1, $2)")
                .bind(message_id)
                .bind(key.as_slice())
                .execute(&self.pool)
                .await?;
        }
        Ok((key, ids))
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(seconds)
}

fn member(user_id: Uuid, role: Role) -> MemberEntry {
    MemberEntry { user_id, role }
}

fn group_created(chat_id: Uuid, admin: Uuid, others: &[Uuid]) -> ChatEvent {
    let mut members = vec![member(admin, Role::Admin)];
    members.extend(others.iter().map(|id| member(*id, Role::Member)));
    ChatEvent::ChatCreated {
        chat_id,
        kind: ChatKind::Group,
        name: Some("Climbing".into()),
        created_by: admin,
        members,
        created_at: at(0),
    }
}

fn message(message_id: Uuid, sender_id: Uuid, seq: i64, key: &[u8; sealed::KEY_BYTES], text: &str) -> ChatEvent {
    ChatEvent::MessageSent {
        message_id,
        sender_id,
        sender_device_id: None,
        seq,
        client_msg_id: format!("c{seq}"),
        body: sealed::seal(key, &[seq as u8; sealed::NONCE_BYTES], text.as_bytes()),
        algorithm: "m.megolm.v1".into(),
        media_ids: Vec::new(),
        reply_to: None,
        sent_at: at(seq * 10),
    }
}

#[tokio::test]
async fn users_hold_the_registered_profile_and_its_updates() -> Result<()> {
    let mut given = Given::database().await?;
    let (ada, avatar) = (Uuid::now_v7(), Uuid::now_v7());
    let events = vec![
        given.event(
            "User",
            ada,
            UserEvent::UserRegistered {
                user_id: ada,
                name: "Ada".into(),
                email: "ada@example.org".into(),
                password_hash: "$argon2id$...".into(),
                avatar_media_id: Some(avatar),
                registered_at: at(0),
            },
        )?,
        given.event(
            "User",
            ada,
            UserEvent::ProfileUpdated {
                name: None,
                status: Some("climbing".into()),
                avatar_media_id: None,
                updated_at: at(5),
            },
        )?,
    ];
    given.apply(&UsersProjection, &events).await?;
    let row: (String, String, String, Option<Uuid>) =
        sqlx::query_as("SELECT name, email, status, avatar_media_id FROM users WHERE id = $1")
            .bind(ada)
            .fetch_one(&given.pool)
            .await?;
    // No name and no avatar in the update: both stay.
    assert_eq!(row, ("Ada".into(), "ada@example.org".into(), "climbing".into(), Some(avatar)));

    let removed = given.event(
        "User",
        ada,
        UserEvent::ProfileUpdated {
            name: Some("Ada L.".into()),
            status: None,
            avatar_media_id: Some(None),
            updated_at: at(9),
        },
    )?;
    given.apply(&UsersProjection, &[removed]).await?;
    let row: (String, String, Option<Uuid>) =
        sqlx::query_as("SELECT name, status, avatar_media_id FROM users WHERE id = $1")
            .bind(ada)
            .fetch_one(&given.pool)
            .await?;
    assert_eq!(row, ("Ada L.".into(), "climbing".into(), None));
    Ok(())
}

#[tokio::test]
async fn chats_hold_members_history_read_marks_and_tombstones() -> Result<()> {
    let mut given = Given::database().await?;
    let (chat, ada, bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (key, [first, second]) = given.keyed_messages().await?;
    // `third` has no key: deleted for everyone before this projector saw it.
    let third = Uuid::now_v7();
    let events = vec![
        given.event("Chat", chat, group_created(chat, ada, &[bob]))?,
        given.event("Chat", chat, message(first, ada, 1, &key, "hello"))?,
        given.event("Chat", chat, message(second, bob, 2, &key, "hi"))?,
        given.event("Chat", chat, message(third, ada, 3, &key, "oops"))?,
        given.event("Chat", chat, ChatEvent::MarkedRead { user_id: bob, seq: 1, at: at(40) })?,
        given.event("Chat", chat, ChatEvent::MemberRoleChanged { user_id: bob, role: Role::Admin, at: at(41) })?,
        given.event("Chat", chat, ChatEvent::MessageHidden { message_id: first, seq: 1, user_id: bob, at: at(42) })?,
        given.event(
            "Chat",
            chat,
            ChatEvent::MessageDeleted { message_id: second, seq: 2, deleted_by: bob, at: at(43) },
        )?,
    ];
    given.apply(&ChatsProjection, &events).await?;

    let chat_row: (String, Option<String>, i64) =
        sqlx::query_as("SELECT kind, name, last_seq FROM chats WHERE id = $1")
            .bind(chat)
            .fetch_one(&given.pool)
            .await?;
    assert_eq!(chat_row, ("group".into(), Some("Climbing".into()), 3));
    let members: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT user_id, role, read_up_to FROM chat_members WHERE chat_id = $1 ORDER BY joined_at, user_id",
    )
    .bind(chat)
    .fetch_all(&given.pool)
    .await?;
    let mut expected = vec![(ada, "admin".to_owned(), 3), (bob, "admin".to_owned(), 2)];
    expected.sort_by_key(|(id, ..)| *id);
    let mut members = members;
    members.sort_by_key(|(id, ..)| *id);
    // A sender has read what they sent; Bob's own message moved his mark past his read receipt.
    assert_eq!(members, expected);
    let history: Vec<(i64, Option<String>, bool)> =
        sqlx::query_as("SELECT seq, ciphertext, deleted FROM messages WHERE chat_id = $1 ORDER BY seq")
            .bind(chat)
            .fetch_all(&given.pool)
            .await?;
    assert_eq!(
        history,
        vec![(1, Some(STANDARD.encode("hello")), false), (2, None, true), (3, None, true)],
        "opened with its key, deleted for everyone, and keyless"
    );
    let hidden: Vec<(Uuid, i64)> = sqlx::query_as("SELECT user_id, seq FROM hidden_messages WHERE chat_id = $1")
        .bind(chat)
        .fetch_all(&given.pool)
        .await?;
    assert_eq!(hidden, vec![(bob, 1)]);

    // Leaving takes the membership and its hidden marks; history stays.
    let left = given.event("Chat", chat, ChatEvent::MemberRemoved { user_id: bob, removed_by: bob, at: at(50) })?;
    given.apply(&ChatsProjection, &[left]).await?;
    let remaining: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM chat_members WHERE chat_id = $1")
        .bind(chat)
        .fetch_all(&given.pool)
        .await?;
    assert_eq!(remaining, vec![ada]);
    let hidden: i64 = sqlx::query_scalar("SELECT count(*) FROM hidden_messages").fetch_one(&given.pool).await?;
    assert_eq!(hidden, 0);
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages").fetch_one(&given.pool).await?;
    assert_eq!(messages, 3);
    Ok(())
}

/// `(kind, data)` of `user`'s feed frames, oldest first, as the api's replay reads them.
async fn feed_of(pool: &PgPool, user: Uuid) -> Result<Vec<(String, serde_json::Value)>> {
    Ok(sqlx::query_as("SELECT f.kind, COALESCE(f.data, m.data) FROM user_feed f \
         LEFT JOIN feed_messages m ON f.data IS NULL AND m.message_id = f.message_id \
         WHERE f.user_id = $1 AND NOT EXISTS (SELECT 1 FROM feed_hidden h WHERE h.user_id = $1 AND h.message_id = f.message_id) \
         ORDER BY f.cursor")
        .bind(user)
        .fetch_all(pool)
        .await?)
}

#[tokio::test]
async fn the_feed_reaches_members_only_while_they_are_members() -> Result<()> {
    let mut given = Given::database().await?;
    let feed = FeedProjection::new("t.rt".into());
    let (chat, ada, bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (key, [first, second]) = given.keyed_messages().await?;
    let events = vec![
        given.event("Chat", chat, group_created(chat, ada, &[bob]))?,
        given.event("Chat", chat, message(first, ada, 1, &key, "before"))?,
    ];
    given.apply(&feed, &events).await?;
    // Chat and message frames; the notifications' own frames are checked through their table.
    let kinds = |frames: &[(String, serde_json::Value)]| {
        frames.iter().map(|(k, _)| k.clone()).filter(|k| k != "notification.created").collect::<Vec<_>>()
    };
    let bobs = feed_of(&given.pool, bob).await?;
    assert_eq!(kinds(&bobs), ["chat.member_added", "message.created"]);
    let sent = bobs.iter().find(|(kind, _)| kind == "message.created").map(|(_, data)| &data["ciphertext"]);
    assert_eq!(sent, Some(&serde_json::Value::from(STANDARD.encode("before"))));
    let notified = |pool: PgPool| async move {
        sqlx::query_as::<_, (Uuid, String)>("SELECT user_id, kind FROM notifications ORDER BY created_at, kind")
            .fetch_all(&pool)
            .await
    };
    // Bob, added by someone else and offline (no presence), is told of both; Ada of neither.
    let expected = vec![(bob, "added_to_group".to_owned()), (bob, "message".to_owned())];
    assert_eq!(notified(given.pool.clone()).await?, expected);

    let events = vec![
        given.event("Chat", chat, ChatEvent::MemberRemoved { user_id: bob, removed_by: ada, at: at(20) })?,
        given.event("Chat", chat, message(second, ada, 2, &key, "after"))?,
    ];
    given.apply(&feed, &events).await?;
    // A removed member keeps no message frames of the chat and gets none after.
    let bobs = feed_of(&given.pool, bob).await?;
    assert_eq!(kinds(&bobs), ["chat.member_added", "chat.member_removed"]);
    let adas = feed_of(&given.pool, ada).await?;
    assert_eq!(kinds(&adas), ["chat.member_added", "message.created", "chat.member_removed", "message.created"]);
    assert_eq!(adas[3].1["ciphertext"], STANDARD.encode("after"));
    assert_eq!(notified(given.pool.clone()).await?, expected, "no notice of a message sent after the removal");
    Ok(())
}

#[tokio::test]
async fn a_message_frame_is_stored_once_and_deletions_reach_it_and_copies_stored_before() -> Result<()> {
    let mut given = Given::database().await?;
    let feed = FeedProjection::new("t.rt".into());
    let (chat, ada, bob, cy) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (key, [copied, shared, hidden]) = given.keyed_messages().await?;
    let events = vec![
        given.event("Chat", chat, group_created(chat, ada, &[bob, cy]))?,
        given.event("Chat", chat, message(copied, ada, 1, &key, "copied"))?,
        given.event("Chat", chat, message(shared, ada, 2, &key, "shared"))?,
        given.event("Chat", chat, message(hidden, ada, 3, &key, "hidden"))?,
    ];
    given.apply(&feed, &events).await?;
    let count = |sql: &'static str| {
        let pool = given.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await }
    };
    // Three messages to three members: three stored frames, nine rows that point at them.
    assert_eq!(count("SELECT count(*) FROM feed_messages").await?, 3);
    assert_eq!(count("SELECT count(*) FROM user_feed WHERE kind = 'message.created' AND data IS NULL").await?, 9);
    assert_eq!(count("SELECT count(*) FROM user_feed WHERE kind = 'message.created'").await?, 9);
    // `copied` as frames were stored before they were shared: a copy in each member's row.
    sqlx::query(
        "UPDATE user_feed f SET data = m.data FROM feed_messages m WHERE m.message_id = f.message_id AND f.message_id = $1",
    )
    .bind(copied)
    .execute(&given.pool)
    .await?;
    sqlx::query("DELETE FROM feed_messages WHERE message_id = $1").bind(copied).execute(&given.pool).await?;

    let events = vec![
        given.event(
            "Chat",
            chat,
            ChatEvent::MessageDeleted { message_id: copied, seq: 1, deleted_by: ada, at: at(40) },
        )?,
        given.event(
            "Chat",
            chat,
            ChatEvent::MessageDeleted { message_id: shared, seq: 2, deleted_by: ada, at: at(41) },
        )?,
        given.event("Chat", chat, ChatEvent::MessageHidden { message_id: hidden, seq: 3, user_id: bob, at: at(42) })?,
    ];
    given.apply(&feed, &events).await?;
    let messages = |frames: Vec<(String, serde_json::Value)>| -> Vec<(i64, bool, serde_json::Value)> {
        frames
            .into_iter()
            .filter(|(kind, _)| kind == "message.created")
            .map(|(_, data)| (data["seq"].as_i64().unwrap_or(-1), data["deleted"] == true, data["ciphertext"].clone()))
            .collect()
    };
    let tombstone = |seq| (seq, true, serde_json::Value::Null);
    let kept = (3, false, serde_json::Value::from(STANDARD.encode("hidden")));
    // Deleted for everyone: tombstones in the copies and in the shared frame alike.
    assert_eq!(messages(feed_of(&given.pool, ada).await?), [tombstone(1), tombstone(2), kept.clone()]);
    // Hidden by Bob: gone from his replay only, and told to his other sessions.
    let bobs = feed_of(&given.pool, bob).await?;
    assert_eq!(
        bobs.last().map(|(kind, data)| (kind.as_str(), data["for"].clone())),
        Some(("message.deleted", "me".into()))
    );
    assert_eq!(messages(bobs), [tombstone(1), tombstone(2)]);
    assert_eq!(messages(feed_of(&given.pool, cy).await?), [tombstone(1), tombstone(2), kept]);

    // A removed member keeps no message frame of the chat, copied or shared.
    let removed = given.event("Chat", chat, ChatEvent::MemberRemoved { user_id: cy, removed_by: ada, at: at(50) })?;
    given.apply(&feed, &[removed]).await?;
    assert_eq!(messages(feed_of(&given.pool, cy).await?), []);
    assert_eq!(messages(feed_of(&given.pool, ada).await?).len(), 3, "the others keep theirs");
    Ok(())
}

/// The subjects `subscriber` hears until a second passes without one.
async fn heard(subscriber: &mut async_nats::Subscriber) -> Vec<String> {
    use futures::StreamExt;
    let mut subjects = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(std::time::Duration::from_secs(1), subscriber.next()).await {
        subjects.push(message.subject.to_string());
    }
    subjects
}

#[tokio::test]
async fn frames_of_a_delivery_that_failed_after_commit_are_announced_by_a_resync() -> Result<()> {
    let mut given = Given::database().await?;
    let nats = async_nats::connect(parley_tests::nats_url()).await?;
    let prefix = format!("t.rt.{}", Uuid::now_v7().simple());
    let mut subscriber = nats.subscribe(format!("{prefix}.>")).await?;
    nats.flush().await?;
    let feed = FeedProjection::new(prefix.clone());
    let (chat, ada, bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (key, [first, second]) = given.keyed_messages().await?;

    // A delivery that commits and publishes: its frames, no resync.
    feed.begin_delivery();
    let created = given.event("Chat", chat, group_created(chat, ada, &[bob]))?;
    given.apply(&feed, &[created]).await?;
    feed.after_commit(&nats).await;
    let subjects = heard(&mut subscriber).await;
    assert!(!subjects.is_empty() && subjects.iter().all(|s| s.contains(".user.")), "{subjects:?}");

    // Committed, but the projector saw an error (say, the connection died during COMMIT) and
    // never published; the redelivery finds it applied and queues no frame.
    feed.begin_delivery();
    let lost = given.event("Chat", chat, message(first, ada, 1, &key, "lost"))?;
    given.apply(&feed, &[lost]).await?;
    feed.begin_delivery();
    feed.after_commit(&nats).await;
    assert_eq!(heard(&mut subscriber).await, [format!("{prefix}.resync")]);

    // Owed once: the next delivery publishes its frames only.
    feed.begin_delivery();
    let next = given.event("Chat", chat, message(second, ada, 2, &key, "next"))?;
    given.apply(&feed, &[next]).await?;
    feed.after_commit(&nats).await;
    let subjects = heard(&mut subscriber).await;
    assert!(!subjects.is_empty() && subjects.iter().all(|s| s.contains(".user.")), "{subjects:?}");
    Ok(())
}

#[tokio::test]
async fn calls_follow_ringing_answer_connection_and_end() -> Result<()> {
    let mut given = Given::database().await?;
    let (call, chat, ada, bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let started = CallEvent::CallStarted {
        call_id: call,
        chat_id: chat,
        kind: CallKind::Video,
        initiator_id: ada,
        invitee_ids: vec![bob],
        direct: true,
        started_at: at(0),
        sfu_node: Some("node-a".into()),
    };
    let events = vec![given.event("Call", call, started)?];
    given.apply(&CallsProjection, &events).await?;
    let status = |pool: PgPool| async move {
        sqlx::query_as::<_, (String, String, Option<DateTime<Utc>>)>(
            "SELECT status, kind, ended_at FROM calls WHERE id = $1",
        )
        .bind(call)
        .fetch_one(&pool)
        .await
    };
    assert_eq!(status(given.pool.clone()).await?, ("ringing".into(), "video".into(), None));
    let participants = |pool: PgPool| async move {
        sqlx::query_as::<_, (Uuid, String, bool)>(
            "SELECT user_id, state, connected FROM call_participants WHERE call_id = $1 ORDER BY user_id",
        )
        .bind(call)
        .fetch_all(&pool)
        .await
    };
    let mut expected = vec![(ada, "joined".to_owned(), false), (bob, "ringing".to_owned(), false)];
    expected.sort_by_key(|(id, ..)| *id);
    assert_eq!(participants(given.pool.clone()).await?, expected);

    let events = vec![
        given.event("Call", call, CallEvent::CallAccepted { user_id: bob, at: at(3) })?,
        given.event("Call", call, CallEvent::ParticipantConnected { user_id: bob, at: at(4) })?,
    ];
    given.apply(&CallsProjection, &events).await?;
    assert_eq!(status(given.pool.clone()).await?.0, "active");
    let bobs = participants(given.pool.clone()).await?.into_iter().find(|(id, ..)| *id == bob);
    assert_eq!(bobs, Some((bob, "joined".to_owned(), true)));

    // Its node died: the call is on another now, and nobody's media is connected until they
    // join there.
    let node = |pool: PgPool| async move {
        sqlx::query_scalar::<_, Option<String>>("SELECT sfu_node FROM calls WHERE id = $1")
            .bind(call)
            .fetch_one(&pool)
            .await
    };
    assert_eq!(node(given.pool.clone()).await?.as_deref(), Some("node-a"));
    let moved = CallEvent::CallMediaMoved { from: Some("node-a".into()), to: "node-b".into(), at: at(10) };
    let moved = given.event("Call", call, moved)?;
    given.apply(&CallsProjection, &[moved]).await?;
    assert_eq!(node(given.pool.clone()).await?.as_deref(), Some("node-b"));
    assert!(participants(given.pool.clone()).await?.iter().all(|(_, _, connected)| !connected));

    let ended =
        given.event("Call", call, CallEvent::CallEnded { chat_id: chat, status: CallStatus::Ended, at: at(60) })?;
    given.apply(&CallsProjection, &[ended]).await?;
    assert_eq!(status(given.pool.clone()).await?, ("ended".into(), "video".into(), Some(at(60))));
    assert!(participants(given.pool.clone()).await?.iter().all(|(_, state, connected)| state == "left" && !connected));
    Ok(())
}

#[tokio::test]
async fn media_rows_record_upload_deletion_and_removal_of_the_object() -> Result<()> {
    let mut given = Given::database().await?;
    let (media, owner) = (Uuid::now_v7(), Uuid::now_v7());
    let uploaded = MediaEvent::MediaUploaded {
        media_id: media,
        owner_id: owner,
        size: 1234,
        sha256: "ab".repeat(32),
        content_type: "image/png".into(),
        storage_key: format!("media/{media}"),
        uploaded_at: at(0),
    };
    let events = vec![given.event("Media", media, uploaded)?];
    given.apply(&MediaProjection, &events).await?;
    let row = |pool: PgPool| async move {
        sqlx::query_as::<_, (Uuid, i64, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>(
            "SELECT owner_id, size, content_type, deleted_at, object_removed_at FROM media WHERE id = $1",
        )
        .bind(media)
        .fetch_one(&pool)
        .await
    };
    assert_eq!(row(given.pool.clone()).await?, (owner, 1234, "image/png".into(), None, None));
    let events = vec![
        given.event(
            "Media",
            media,
            MediaEvent::MediaDeleted { deleted_by: Some(owner), reason: DeleteReason::ByOwner, at: at(5) },
        )?,
        given.event("Media", media, MediaEvent::MediaObjectRemoved { at: at(6) })?,
    ];
    given.apply(&MediaProjection, &events).await?;
    assert_eq!(row(given.pool.clone()).await?, (owner, 1234, "image/png".into(), Some(at(5)), Some(at(6))));
    Ok(())
}

fn one_time_key(id: &str) -> OneTimeKey {
    OneTimeKey { key_id: id.into(), curve25519: format!("curve-{id}"), signature: format!("sig-{id}") }
}

#[tokio::test]
async fn the_key_directory_counts_keys_queues_to_device_messages_and_forgets_ended_devices() -> Result<()> {
    let mut given = Given::database().await?;
    let keys = KeysProjection::new("t.rt".into());
    let (ada, ada_phone, bob, bob_laptop, batch) =
        (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let registered = |device_id: Uuid, user_id: Uuid| DeviceEvent::DeviceRegistered {
        device_id,
        user_id,
        display_name: "phone".into(),
        identity_keys: IdentityKeys { curve25519: "c".into(), ed25519: "e".into(), signature: "s".into() },
        registered_at: at(0),
    };
    let events = vec![
        given.event("Device", ada_phone, registered(ada_phone, ada))?,
        given.event(
            "Device",
            ada_phone,
            DeviceEvent::OneTimeKeysAdded {
                keys: vec![one_time_key("a"), one_time_key("b"), one_time_key("c")],
                at: at(1),
            },
        )?,
        given.event(
            "Device",
            ada_phone,
            DeviceEvent::OneTimeKeyClaimed {
                key: one_time_key("a"),
                claimed_by: bob,
                claimed_by_device: bob_laptop,
                remaining: 2,
                at: at(2),
            },
        )?,
        given.event("Device", ada_phone, DeviceEvent::FallbackKeyReplaced { key: one_time_key("f"), at: at(3) })?,
        given.event("Device", bob_laptop, registered(bob_laptop, bob))?,
    ];
    given.apply(&keys, &events).await?;
    let device = |pool: PgPool, id: Uuid| async move {
        sqlx::query_as::<_, (i64, bool, Option<DateTime<Utc>>)>(
            "SELECT one_time_key_count::bigint, has_fallback_key, removed_at FROM devices WHERE device_id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
    };
    assert_eq!(device(given.pool.clone(), ada_phone).await?, (2, true, None));

    let (for_ada, misaddressed, for_bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let to = |id: Uuid, user_id: Uuid, device_id: Uuid| ToDeviceMessage {
        id,
        user_id,
        device_id,
        ciphertext: format!("ct-{id}"),
    };
    let sent = ToDeviceEvent::ToDeviceBatchSent {
        sender_id: bob,
        sender_device_id: bob_laptop,
        // The second names Ada's device under Bob's user id: not queued.
        messages: vec![to(for_ada, ada, ada_phone), to(misaddressed, bob, ada_phone), to(for_bob, bob, bob_laptop)],
        sent_at: at(10),
    };
    let events = vec![given.event("ToDeviceBatch", batch, sent)?];
    given.apply(&keys, &events).await?;
    let queued = |pool: PgPool| async move {
        sqlx::query_as::<_, (Uuid, Uuid)>("SELECT id, device_id FROM to_device_messages ORDER BY id")
            .fetch_all(&pool)
            .await
    };
    let mut expected = vec![(for_ada, ada_phone), (for_bob, bob_laptop)];
    expected.sort();
    assert_eq!(queued(given.pool.clone()).await?, expected);

    // Acknowledged messages go; a logged-out session's device ends and its queue with it.
    let events = vec![
        given.event(
            "Device",
            bob_laptop,
            DeviceEvent::ToDeviceAcknowledged { message_ids: vec![for_bob], at: at(11) },
        )?,
        given.event(
            "Session",
            ada_phone,
            SessionEvent::SessionRevoked { reason: RevocationReason::Logout, revoked_at: at(12) },
        )?,
    ];
    given.apply(&keys, &events).await?;
    assert!(queued(given.pool.clone()).await?.is_empty());
    assert_eq!(device(given.pool.clone(), ada_phone).await?, (0, false, Some(at(12))));
    assert_eq!(device(given.pool.clone(), bob_laptop).await?.2, None);
    Ok(())
}

#[tokio::test]
async fn a_rebuild_from_the_event_store_gives_the_rows_live_delivery_gave() -> Result<()> {
    let mut given = Given::database().await?;
    let (chat, ada, bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (key, [first]) = given.keyed_messages().await?;
    let events = vec![
        given.event("Chat", chat, group_created(chat, ada, &[bob]))?,
        given.event("Chat", chat, message(first, bob, 1, &key, "kept"))?,
        given.event("Chat", chat, ChatEvent::MarkedRead { user_id: ada, seq: 1, at: at(30) })?,
    ];
    given.apply(&ChatsProjection, &events).await?;
    let snapshot = |pool: PgPool| async move {
        sqlx::query_as::<_, (Uuid, i64, Option<String>)>(
            "SELECT m.user_id, m.read_up_to, (SELECT ciphertext FROM messages WHERE chat_id = m.chat_id AND seq = 1) \
             FROM chat_members m ORDER BY m.user_id",
        )
        .fetch_all(&pool)
        .await
    };
    let live = snapshot(given.pool.clone()).await?;
    assert_eq!(live.len(), 2);

    for event in &events {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             VALUES ($1, $2, $3, $4, $5, $6::json, '{}'::json)",
        )
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(event.sequence)
        .bind(&event.event_type)
        .bind(&event.event_version)
        .bind(event.payload.get())
        .execute(&given.pool)
        .await?;
    }
    // Twice: a rebuild starts from empty tables, so repeating it changes nothing.
    for _ in 0..2 {
        let applied = projector::rebuild(&given.pool, &ChatsProjection).await?;
        assert_eq!(applied, 3);
        assert_eq!(snapshot(given.pool.clone()).await?, live);
    }
    Ok(())
}
