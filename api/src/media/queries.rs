//! Reads of the `media` read model (and of who may see what).

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use sqlx::PgPool;
use uuid::Uuid;

/// An upload as its uploader sees it.
#[derive(Debug, Clone, Object)]
pub struct MediaView {
    pub id: Uuid,
    pub size: i64,
    /// As the uploader declared it; never interpreted.
    pub content_type: String,
    /// Hex SHA-256 of the stored bytes (also the `ETag`).
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct StoredMedia {
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
    pub storage_key: String,
}

pub async fn own_media(pool: &PgPool, id: Uuid, owner: Uuid) -> Result<Option<MediaView>, sqlx::Error> {
    sqlx::query_as!(
        MediaView,
        "SELECT id, size, content_type, sha256, created_at FROM media \
         WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL",
        id,
        owner
    )
    .fetch_optional(pool)
    .await
}

/// The media if `viewer` may read it: its uploader, a member of a chat where a message (not
/// deleted for everyone) sent since they joined carries it, or anyone when it is a profile
/// picture.
pub async fn readable_media(pool: &PgPool, id: Uuid, viewer: Uuid) -> Result<Option<StoredMedia>, sqlx::Error> {
    sqlx::query_as!(
        StoredMedia,
        "SELECT size, sha256, content_type, storage_key FROM media m \
         WHERE m.id = $1 AND m.deleted_at IS NULL AND ( \
           m.owner_id = $2 \
           OR EXISTS (SELECT 1 FROM message_media mm \
                      JOIN chat_members cm ON cm.chat_id = mm.chat_id AND cm.user_id = $2 \
                      JOIN messages msg ON msg.id = mm.message_id AND msg.seq >= cm.visible_from_seq \
                      WHERE mm.media_id = m.id AND NOT mm.deleted) \
           OR EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = m.id))",
        id,
        viewer
    )
    .fetch_optional(pool)
    .await
}

/// How many of `ids` are live uploads of `owner` (attachments must be one's own).
pub async fn owned_count(pool: &PgPool, ids: &[Uuid], owner: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM media WHERE id = ANY($1) AND owner_id = $2 AND deleted_at IS NULL"#,
        ids,
        owner
    )
    .fetch_one(pool)
    .await
}

/// Deleted media whose bytes are still stored.
pub async fn to_remove(pool: &PgPool, limit: i64) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT id, storage_key FROM media WHERE deleted_at IS NOT NULL AND object_removed_at IS NULL \
         ORDER BY deleted_at LIMIT $1",
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row.storage_key)).collect())
}

/// Live media carried by a message deleted for everyone and by nothing live: no other message
/// (an upload may be sent to several chats) and no profile picture.
pub async fn of_deleted_messages(pool: &PgPool, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT DISTINCT m.id FROM message_media mm JOIN media m ON m.id = mm.media_id \
         WHERE mm.deleted AND m.deleted_at IS NULL \
           AND NOT EXISTS (SELECT 1 FROM message_media live WHERE live.media_id = m.id AND NOT live.deleted) \
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = m.id) \
         LIMIT $1",
        limit
    )
    .fetch_all(pool)
    .await
}

/// Live media older than `cutoff` that no message and no profile uses.
pub async fn unattached_before(pool: &PgPool, cutoff: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT m.id FROM media m WHERE m.deleted_at IS NULL AND m.created_at < $1 \
           AND NOT EXISTS (SELECT 1 FROM message_media mm WHERE mm.media_id = m.id) \
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = m.id) \
         ORDER BY m.created_at LIMIT $2",
        cutoff,
        limit
    )
    .fetch_all(pool)
    .await
}
