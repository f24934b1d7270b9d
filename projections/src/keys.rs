//! `keys`: the key directory's read model — devices with their identity keys and one-time key
//! stock (`devices`), and each device's queue of to-device messages (`to_device_messages`) until
//! the device acknowledges them.
//!
//! After each commit it wakes sockets over core NATS: a `to_device` frame to the recipient
//! device's subject, `one_time_keys.low` to a device whose stock a claim took below the
//! threshold, and `device_list.changed` to the user and everyone sharing a chat with them when a
//! device is added, renamed, removed or its session ends. These frames are not part of the
//! user's feed: a device that was offline reads its queue (`GET /to-device`, or the socket sends
//! what is pending when it connects) and re-reads its contacts' devices when it reconnects.
//!
//! A device belongs to its login session, so the session's end (logout, a reused refresh
//! token, the device's removal) removes it here too, even if the `Device` aggregate never heard.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parley_domain::device::{DeviceEvent, LOW_ONE_TIME_KEYS};
use parley_domain::session::SessionEvent;
use parley_domain::to_device::ToDeviceEvent;
use parley_domain::EventEnvelope;
use parley_eventbus::stream::{device_subject, ephemeral_frame_text, realtime_subject, RealtimeMessage};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::chat_events::{aggregate_uuid, decode_error};
use crate::{Projection, ProjectionError};

pub struct KeysProjection {
    realtime_prefix: String,
    /// Frames for the delivery being applied, published once it commits.
    outgoing: Mutex<Vec<(String, String)>>,
}

impl KeysProjection {
    pub fn new(realtime_prefix: String) -> Self {
        Self { realtime_prefix, outgoing: Mutex::new(Vec::new()) }
    }

    fn queue(&self, subject: String, frame: String) {
        self.outgoing.lock().unwrap_or_else(|p| p.into_inner()).push((subject, frame));
    }

    /// `device_list.changed` to `user_id` and every user sharing a chat with them.
    async fn device_list_changed(&self, conn: &mut PgConnection, user_id: Uuid) -> Result<(), ProjectionError> {
        let watchers: Vec<Uuid> = sqlx::query_scalar!(
            r#"SELECT $1::uuid AS "user_id!" UNION SELECT DISTINCT b.user_id FROM chat_members a JOIN chat_members b USING (chat_id)
             WHERE a.user_id = $1"#,
            user_id
        )
        .fetch_all(conn)
        .await?;
        let frame = ephemeral_frame_text("device_list.changed", &json!({ "user_id": user_id }).to_string());
        for watcher in watchers {
            self.queue(realtime_subject(&self.realtime_prefix, watcher), frame.clone());
        }
        Ok(())
    }

    async fn device_ended(
        &self,
        conn: &mut PgConnection,
        device_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        let user: Option<Uuid> = sqlx::query_scalar!(
            "UPDATE devices SET removed_at = $2, one_time_key_count = 0, has_fallback_key = false \
             WHERE device_id = $1 AND removed_at IS NULL RETURNING user_id",
            device_id,
            at
        )
        .fetch_optional(&mut *conn)
        .await?;
        sqlx::query!("DELETE FROM to_device_messages WHERE device_id = $1", device_id).execute(&mut *conn).await?;
        if let Some(user_id) = user {
            self.device_list_changed(conn, user_id).await?;
        }
        Ok(())
    }

    async fn device_event(
        &self,
        conn: &mut PgConnection,
        device_id: Uuid,
        event: DeviceEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            DeviceEvent::DeviceRegistered { user_id, display_name, identity_keys, registered_at, .. } => {
                sqlx::query!("INSERT INTO devices (device_id, user_id, display_name, curve25519, ed25519, signature, created_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)", device_id, user_id, display_name, identity_keys.curve25519, identity_keys.ed25519, identity_keys.signature, registered_at)
                .execute(&mut *conn)
                .await?;
                self.device_list_changed(conn, user_id).await?;
            }
            DeviceEvent::DeviceRenamed { display_name, at } => {
                let user: Option<Uuid> = sqlx::query_scalar!(
                    "UPDATE devices SET display_name = $2, last_seen_at = greatest(last_seen_at, $3) \
                     WHERE device_id = $1 AND removed_at IS NULL RETURNING user_id",
                    device_id,
                    display_name,
                    at
                )
                .fetch_optional(&mut *conn)
                .await?;
                if let Some(user_id) = user {
                    self.device_list_changed(conn, user_id).await?;
                }
            }
            DeviceEvent::OneTimeKeysAdded { keys, at } => {
                sqlx::query!("UPDATE devices SET one_time_key_count = one_time_key_count + $2, last_seen_at = greatest(last_seen_at, $3) \
                     WHERE device_id = $1 AND removed_at IS NULL", device_id, keys.len() as i32, at)
                .execute(conn)
                .await?;
            }
            DeviceEvent::FallbackKeyReplaced { at, .. } => {
                sqlx::query!(
                    "UPDATE devices SET has_fallback_key = true, last_seen_at = greatest(last_seen_at, $2) \
                     WHERE device_id = $1 AND removed_at IS NULL",
                    device_id,
                    at
                )
                .execute(conn)
                .await?;
            }
            DeviceEvent::OneTimeKeyClaimed { remaining, .. } => {
                sqlx::query!(
                    "UPDATE devices SET one_time_key_count = $2 WHERE device_id = $1 AND removed_at IS NULL",
                    device_id,
                    remaining as i32
                )
                .execute(conn)
                .await?;
                if remaining < LOW_ONE_TIME_KEYS {
                    let data = json!({ "device_id": device_id, "remaining": remaining });
                    self.queue(
                        device_subject(&self.realtime_prefix, device_id),
                        ephemeral_frame_text("one_time_keys.low", &data.to_string()),
                    );
                }
            }
            DeviceEvent::ToDeviceAcknowledged { message_ids, .. } => {
                sqlx::query!(
                    "DELETE FROM to_device_messages WHERE device_id = $1 AND id = ANY($2)",
                    device_id,
                    &message_ids
                )
                .execute(conn)
                .await?;
            }
            DeviceEvent::DeviceRemoved { at } => self.device_ended(conn, device_id, at).await?,
        }
        Ok(())
    }

    async fn to_device_sent(&self, conn: &mut PgConnection, event: ToDeviceEvent) -> Result<(), ProjectionError> {
        let ToDeviceEvent::ToDeviceBatchSent { sender_id, sender_device_id, messages, sent_at } = event;
        let mut ids = Vec::with_capacity(messages.len());
        let mut users = Vec::with_capacity(messages.len());
        let mut devices = Vec::with_capacity(messages.len());
        let mut ciphertexts = Vec::with_capacity(messages.len());
        for message in messages {
            ids.push(message.id);
            users.push(message.user_id);
            devices.push(message.device_id);
            ciphertexts.push(message.ciphertext);
        }
        // Only to live devices of the user each message names (the api checked both; the device
        // may have gone since).
        let queued = sqlx::query!(
            "INSERT INTO to_device_messages (id, device_id, sender_id, sender_device_id, ciphertext, created_at) \
             SELECT t.id, t.device_id, $5, $6, t.ciphertext, $7 \
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[]) WITH ORDINALITY AS t(id, user_id, device_id, ciphertext, n) \
             JOIN devices d ON d.device_id = t.device_id AND d.user_id = t.user_id AND d.removed_at IS NULL \
             ORDER BY t.n \
             ON CONFLICT (id) DO NOTHING \
             RETURNING id, device_id, ciphertext",
            &ids,
            &users,
            &devices,
            &ciphertexts,
            sender_id,
            sender_device_id,
            sent_at
        )
        .fetch_all(conn)
        .await?;
        for row in queued {
            let (id, device_id, ciphertext) = (row.id, row.device_id, row.ciphertext);
            let data = json!({
                "id": id,
                "sender_id": sender_id,
                "sender_device_id": sender_device_id,
                "ciphertext": ciphertext,
                "created_at": sent_at,
            });
            self.queue(
                device_subject(&self.realtime_prefix, device_id),
                ephemeral_frame_text("to_device", &data.to_string()),
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Projection for KeysProjection {
    fn name(&self) -> &'static str {
        "keys"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Device", "ToDeviceBatch", "Session"]
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query!("TRUNCATE devices, to_device_messages").execute(conn).await?;
        Ok(())
    }

    fn begin_delivery(&self) {
        self.outgoing.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    async fn after_commit(&self, nats: &async_nats::Client) {
        let outgoing = std::mem::take(&mut *self.outgoing.lock().unwrap_or_else(|p| p.into_inner()));
        for (subject, frame) in outgoing {
            let message = RealtimeMessage::Ephemeral(&frame).encode().into();
            if let Err(error) = parley_eventbus::stream::publish_realtime(nats, subject, message, None).await {
                // The queue keeps the message: the device reads it on its next connect or drain.
                tracing::debug!(%error, "could not publish a key directory frame");
            }
        }
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        let decode = |source| ProjectionError::Decode { event_id: event.event_id.clone(), source };
        match event.aggregate_type.as_str() {
            "Device" => self.device_event(conn, aggregate_uuid(event)?, event.decode().map_err(decode)?).await,
            "ToDeviceBatch" => self.to_device_sent(conn, event.decode().map_err(decode)?).await,
            "Session" => {
                let session_id = aggregate_uuid(event)?;
                match event.decode::<SessionEvent>().map_err(decode)? {
                    SessionEvent::SessionRevoked { revoked_at, .. } => {
                        self.device_ended(conn, session_id, revoked_at).await
                    }
                    SessionEvent::RefreshTokenRotated { rotated_at, .. } => {
                        sqlx::query!(
                            "UPDATE devices SET last_seen_at = greatest(last_seen_at, $2) WHERE device_id = $1",
                            session_id,
                            rotated_at
                        )
                        .execute(conn)
                        .await?;
                        Ok(())
                    }
                    SessionEvent::SessionStarted { .. } => Ok(()),
                }
            }
            _ => Err(decode_error(event, "not an event of the key directory")),
        }
    }
}
