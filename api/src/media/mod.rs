//! Media: photos, videos and avatars as opaque (client-encrypted) objects, streamed to and from
//! object storage, readable by their uploader, by members of chats where they were sent, and by
//! anyone when they are someone's avatar; erased when deleted, when the message carrying them is
//! deleted for everyone, or when never attached.

pub mod queries;
pub mod reaper;
pub mod routes;
pub mod storage;
pub mod uploads;

use parley_domain::media::MediaError;

use crate::error::ApiError;

pub fn media_error(error: MediaError) -> ApiError {
    let message = error.to_string();
    match error {
        MediaError::NotFound => ApiError::NotFound,
        MediaError::AlreadyExists => ApiError::internal(anyhow::anyhow!("media id collision")),
        MediaError::InvalidContentType => ApiError::invalid("invalid_content_type", message),
    }
}

/// Attachments and profile pictures must be the caller's own live uploads.
pub async fn ensure_own(pool: &sqlx::PgPool, ids: &[uuid::Uuid], owner: uuid::Uuid) -> Result<(), ApiError> {
    let distinct: std::collections::BTreeSet<uuid::Uuid> = ids.iter().copied().collect();
    let distinct: Vec<uuid::Uuid> = distinct.into_iter().collect();
    if queries::owned_count(pool, &distinct, owner).await? != distinct.len() as i64 {
        return Err(ApiError::Forbidden("only your own uploads can be attached".into()));
    }
    Ok(())
}
