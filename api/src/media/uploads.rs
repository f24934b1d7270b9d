//! Resumable uploads for large videos on flaky networks: a session, chunks appended at an
//! offset, and completion. A chunk cut off mid-way keeps the bytes that arrived, so the client
//! continues from the last byte the server has (`GET` tells it), as WhatsApp-grade clients do.
//!
//! Sessions live in object storage next to the media (`uploads/<id>/session.json` and
//! `uploads/<id>/<offset>` chunks): any api replica can take the next chunk, and completion
//! streams the chunks into the final object, then removes them.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use futures::{StreamExt, TryStreamExt};
use poem::web::Data;
use poem::Body;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::queries::MediaView;
use super::routes::{record_stored, storage_error};
use crate::auth::AccessToken;
use crate::error::ApiError;
use crate::state::AppState;
use crate::text::Text;
use crate::ApiTags;

#[derive(Debug, Object)]
pub struct StartUploadRequest {
    /// The content type to record for the finished media.
    pub content_type: Text,
}

/// An upload in progress: send the bytes from `offset` on.
#[derive(Debug, Object)]
pub struct UploadSession {
    pub upload_id: Uuid,
    /// Bytes the server has.
    pub offset: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SessionRecord {
    pub owner_id: Uuid,
    pub content_type: String,
    pub created_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum SessionResponse {
    #[oai(status = 201)]
    Created(Json<UploadSession>),
    #[oai(status = 200)]
    Ok(Json<UploadSession>),
}

#[derive(ApiResponse)]
pub enum CompletedResponse {
    #[oai(status = 201)]
    Created(Json<MediaView>),
}

pub struct UploadsApi;

fn session_key(id: Uuid) -> String {
    format!("uploads/{id}/session.json")
}

fn chunks_prefix(id: Uuid) -> String {
    format!("uploads/{id}/chunks")
}

/// The session if it exists and belongs to `owner` (else 404).
async fn session(state: &AppState, id: Uuid, owner: Uuid) -> Result<SessionRecord, ApiError> {
    let bytes = state.storage.get_small(&session_key(id)).await.map_err(storage_error)?.ok_or(ApiError::NotFound)?;
    let record: SessionRecord = serde_json::from_slice(&bytes).map_err(|_| ApiError::NotFound)?;
    if record.owner_id != owner {
        return Err(ApiError::NotFound);
    }
    Ok(record)
}

#[OpenApi(prefix_path = "/media/uploads", tag = "ApiTags::Media")]
impl UploadsApi {
    /// Start a resumable upload
    #[oai(path = "/", method = "post", operation_id = "start_upload")]
    async fn start(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        body: Json<StartUploadRequest>,
    ) -> Result<SessionResponse, ApiError> {
        let record = SessionRecord {
            owner_id: auth.0.user_id,
            content_type: body.0.content_type.into_inner(),
            created_at: Utc::now().trunc_subsecs(6),
        };
        let upload_id = Uuid::now_v7();
        let json = serde_json::to_vec(&record).map_err(ApiError::internal)?;
        state.storage.put_small(&session_key(upload_id), json).await.map_err(storage_error)?;
        Ok(SessionResponse::Created(Json(UploadSession { upload_id, offset: 0 })))
    }

    /// How far an upload got
    #[oai(path = "/:id", method = "get", operation_id = "get_upload")]
    async fn status(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<SessionResponse, ApiError> {
        session(&state, id.0, auth.0.user_id).await?;
        let offset = state.storage.chunks_size(&chunks_prefix(id.0)).await.map_err(storage_error)?;
        Ok(SessionResponse::Ok(Json(UploadSession { upload_id: id.0, offset })))
    }

    /// Append bytes at `Upload-Offset`
    ///
    /// `Upload-Offset` must be the session's current offset (else 409 with the right one in the
    /// message). If the request breaks off, the bytes that arrived are kept.
    #[oai(path = "/:id", method = "patch", operation_id = "append_upload")]
    async fn append(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        #[oai(name = "Upload-Offset")] offset: Header<u64>,
        body: Binary<Body>,
    ) -> Result<SessionResponse, ApiError> {
        // All of it in a task of its own, started before anything is awaited: if the client goes
        // away mid-chunk, the connection's handler is dropped, but what arrived is still kept.
        let (state, upload_id, owner, offset) = (Arc::clone(&state), id.0, auth.0.user_id, offset.0);
        let metrics = Arc::clone(&state);
        let stream =
            body.0.into_bytes_stream().inspect_ok(move |chunk| metrics.metrics.media_bytes(true, chunk.len())).boxed();
        let appended = tokio::spawn(async move {
            session(&state, upload_id, owner).await?;
            let current = state.storage.chunks_size(&chunks_prefix(upload_id)).await.map_err(storage_error)?;
            if offset != current {
                return Err(ApiError::Conflict {
                    code: "offset_mismatch",
                    message: format!("the upload is at offset {current}"),
                });
            }
            let room = state.config.media_max_bytes.saturating_sub(current);
            let key = format!("{}/{current:020}", chunks_prefix(upload_id));
            let stored = state.storage.put_received(&key, stream, room).await.map_err(storage_error)?;
            Ok(current + stored)
        });
        let offset = appended.await.map_err(ApiError::internal)??;
        Ok(SessionResponse::Ok(Json(UploadSession { upload_id: id.0, offset })))
    }

    /// Finish an upload: the media is recorded and the session removed
    #[oai(path = "/:id/complete", method = "post", operation_id = "complete_upload")]
    async fn complete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<CompletedResponse, ApiError> {
        let caller = auth.0;
        let record = session(&state, id.0, caller.user_id).await?;
        let media_id = Uuid::now_v7();
        let key = format!("media/{media_id}");
        let stored = state
            .storage
            .concatenate(&chunks_prefix(id.0), &key, state.config.media_max_bytes)
            .await
            .map_err(storage_error)?;
        let view = record_stored(&state, caller, media_id, key, stored, record.content_type).await?;
        state.storage.delete_prefix(&format!("uploads/{}", id.0)).await.map_err(storage_error)?;
        Ok(CompletedResponse::Created(Json(view)))
    }
}
