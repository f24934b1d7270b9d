//! `media`: each upload's metadata and state, for `GET /media/{id}`, attachment checks and the
//! api's reaper.

use async_trait::async_trait;
use parley_domain::media::MediaEvent;
use parley_domain::EventEnvelope;
use sqlx::PgConnection;

use crate::chat_events::aggregate_uuid;
use crate::{Projection, ProjectionError};

pub struct MediaProjection;

#[async_trait]
impl Projection for MediaProjection {
    fn name(&self) -> &'static str {
        "media"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Media"]
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query!("TRUNCATE media").execute(conn).await?;
        Ok(())
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        let media_id = aggregate_uuid(event)?;
        let decoded: MediaEvent =
            event.decode().map_err(|source| ProjectionError::Decode { event_id: event.event_id.clone(), source })?;
        match decoded {
            MediaEvent::MediaUploaded { owner_id, size, sha256, content_type, storage_key, uploaded_at, .. } => {
                sqlx::query!(
                    "INSERT INTO media (id, owner_id, size, sha256, content_type, storage_key, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    media_id,
                    owner_id,
                    size,
                    sha256,
                    content_type,
                    storage_key,
                    uploaded_at
                )
                .execute(conn)
                .await?;
            }
            MediaEvent::MediaDeleted { at, .. } => {
                sqlx::query!("UPDATE media SET deleted_at = $2 WHERE id = $1", media_id, at).execute(conn).await?;
            }
            MediaEvent::MediaObjectRemoved { at } => {
                sqlx::query!("UPDATE media SET object_removed_at = $2 WHERE id = $1", media_id, at)
                    .execute(conn)
                    .await?;
            }
        }
        Ok(())
    }
}
