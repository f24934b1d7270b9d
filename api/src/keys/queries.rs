//! Reads of the `keys` read model and of chat memberships (who may see whose devices).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug)]
pub struct DeviceRow {
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub display_name: String,
    pub curve25519: String,
    pub ed25519: String,
    pub signature: String,
    pub one_time_key_count: i32,
    pub has_fallback_key: bool,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// Live devices of `users`, oldest first per user.
pub async fn devices_of(pool: &PgPool, users: &[Uuid]) -> Result<Vec<DeviceRow>, sqlx::Error> {
    sqlx::query_as!(
        DeviceRow,
        "SELECT device_id, user_id, display_name, curve25519, ed25519, signature, one_time_key_count, \
           has_fallback_key, created_at, last_seen_at \
         FROM devices WHERE user_id = ANY($1) AND removed_at IS NULL ORDER BY user_id, created_at, device_id",
        users
    )
    .fetch_all(pool)
    .await
}

/// Live devices among `device_ids`.
pub async fn live_devices(pool: &PgPool, device_ids: &[Uuid]) -> Result<Vec<DeviceRow>, sqlx::Error> {
    sqlx::query_as!(
        DeviceRow,
        "SELECT device_id, user_id, display_name, curve25519, ed25519, signature, one_time_key_count, \
           has_fallback_key, created_at, last_seen_at \
         FROM devices WHERE device_id = ANY($1) AND removed_at IS NULL",
        device_ids
    )
    .fetch_all(pool)
    .await
}

/// Those of `users` that `viewer` may see the devices of: themself and anyone sharing a chat.
pub async fn visible_users(pool: &PgPool, viewer: Uuid, users: &[Uuid]) -> Result<HashSet<Uuid>, sqlx::Error> {
    let mut visible: HashSet<Uuid> = sqlx::query_scalar!(
        "SELECT DISTINCT b.user_id FROM chat_members a JOIN chat_members b USING (chat_id) \
         WHERE a.user_id = $1 AND b.user_id = ANY($2)",
        viewer,
        users
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    if users.contains(&viewer) {
        visible.insert(viewer);
    }
    Ok(visible)
}

/// Devices among `device_ids` whose queue would hold more than `max` unexpired messages after
/// `incoming` more (per device).
pub async fn full_queues(
    pool: &PgPool,
    device_ids: &[Uuid],
    incoming: &[i64],
    max: i64,
    ttl_secs: f64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT t.device_id AS "device_id!" FROM unnest($1::uuid[], $2::bigint[]) AS t(device_id, incoming)
           WHERE t.incoming + (SELECT count(*) FROM to_device_messages q
                               WHERE q.device_id = t.device_id AND q.created_at >= now() - make_interval(secs => $4)) > $3"#,
        device_ids,
        incoming,
        max,
        ttl_secs
    )
    .fetch_all(pool)
    .await
}

#[derive(Debug)]
pub struct ToDeviceRow {
    pub position: i64,
    pub id: Uuid,
    pub sender_id: Uuid,
    pub sender_device_id: Uuid,
    pub ciphertext: String,
    pub created_at: DateTime<Utc>,
}

/// `device_id`'s unexpired queue after `after` (a position), oldest first.
pub async fn queued(
    pool: &PgPool,
    device_id: Uuid,
    after: i64,
    limit: i64,
    ttl_secs: f64,
) -> Result<Vec<ToDeviceRow>, sqlx::Error> {
    sqlx::query_as!(
        ToDeviceRow,
        "SELECT position, id, sender_id, sender_device_id, ciphertext, created_at FROM to_device_messages \
         WHERE device_id = $1 AND position > $2 AND created_at >= now() - make_interval(secs => $4) \
         ORDER BY position LIMIT $3",
        device_id,
        after,
        limit,
        ttl_secs
    )
    .fetch_all(pool)
    .await
}
