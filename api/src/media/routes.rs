//! `/media`: upload (streamed to object storage), download (with `Range`), delete.

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use futures::{StreamExt, TryStreamExt};
use parley_domain::media::{DeleteReason, MediaCommand};
use parley_domain::EventMetadata;
use poem::http::header;
use poem::web::Data;
use poem::{Body, Request};
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::{Binary, Json, Response};
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::media_error;
use super::queries::{self, MediaView};
use super::storage::{StorageError, Stored};
use crate::auth::{AccessToken, Caller};
use crate::error::{command_error, ApiError};
use crate::state::AppState;
use crate::ApiTags;

#[derive(ApiResponse)]
pub enum UploadResponse {
    #[oai(status = 201)]
    Created(Json<MediaView>),
}

/// The bytes. `Content-Type` is the uploader's declared type when it is one of
/// `INLINE_CONTENT_TYPES` (raster images, audio, video; served `inline`), and
/// `application/octet-stream` otherwise (served as an `attachment`). Either way the browser is
/// told not to sniff (`X-Content-Type-Options: nosniff`) and to run nothing
/// (`Content-Security-Policy: MEDIA_CSP`), so an upload can never act as a page of our origin.
#[derive(ApiResponse)]
pub enum DownloadResponse {
    /// All of it.
    #[oai(status = 200)]
    Full(
        Binary<Body>,
        #[oai(header = "Content-Length")] u64,
        #[oai(header = "ETag")] String,
        #[oai(header = "Accept-Ranges")] String,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "X-Content-Type-Options")] String,
        #[oai(header = "Content-Security-Policy")] String,
    ),
    /// The requested `Range`.
    #[oai(status = 206)]
    Partial(
        Binary<Body>,
        #[oai(header = "Content-Length")] u64,
        #[oai(header = "Content-Range")] String,
        #[oai(header = "ETag")] String,
        #[oai(header = "Accept-Ranges")] String,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "X-Content-Type-Options")] String,
        #[oai(header = "Content-Security-Policy")] String,
    ),
}

/// Declared types served as such (and `inline`): formats a browser only ever renders as media.
/// Not SVG (it is a document that runs script), not HTML, XML, PDF or anything else.
pub const INLINE_CONTENT_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/quicktime",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
    "audio/webm",
];

/// No scripts, no plugins, no requests, a unique origin: what media responses may do as a page.
pub const MEDIA_CSP: &str = "default-src 'none'; media-src 'self'; img-src 'self'; sandbox";

/// The `Content-Type` and `Content-Disposition` a download is served with.
fn served_type(declared: &str) -> (&'static str, &'static str) {
    let essence = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match INLINE_CONTENT_TYPES.iter().find(|allowed| **allowed == essence) {
        Some(allowed) => (allowed, "inline"),
        None => ("application/octet-stream", "attachment"),
    }
}

#[derive(ApiResponse)]
pub enum Deleted {
    #[oai(status = 204)]
    Done,
}

pub struct MediaApi;

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn metadata(caller: Caller) -> EventMetadata {
    EventMetadata::new(Some(caller.user_id), Utc::now(), crate::ops::request_id::current())
}

/// Records bytes already stored at `key` as the caller's new media `media_id` and returns it as
/// its owner sees it, once the read model has it. If the record is refused, the bytes go too.
pub(super) async fn record_stored(
    state: &AppState,
    caller: Caller,
    media_id: Uuid,
    key: String,
    stored: Stored,
    content_type: String,
) -> Result<MediaView, ApiError> {
    let command = MediaCommand::Record {
        media_id,
        owner_id: caller.user_id,
        size: stored.size as i64,
        sha256: stored.sha256,
        content_type,
        storage_key: key.clone(),
        at: now(),
    };
    let committed = match state.media.execute(&media_id.to_string(), command, &metadata(caller)).await {
        Ok(committed) => committed,
        Err(error) => {
            // Nothing recorded: keep no bytes either.
            if let Err(cleanup) = state.storage.delete(&key).await {
                tracing::warn!(%cleanup, key, "could not remove the bytes of a refused upload");
            }
            return Err(command_error(error, media_error));
        }
    };
    state.await_projection("media", "Media", media_id, committed.version).await;
    queries::own_media(&state.pool, media_id, caller.user_id).await?.ok_or(ApiError::Unavailable)
}

/// The byte range a `Range` header asks for within `size` bytes: `None` for the whole object.
/// One range of the `bytes` unit only; anything else, or a range outside the object, is 416.
pub fn requested_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ApiError> {
    let Some(header) = header else { return Ok(None) };
    let unsatisfiable = ApiError::RangeNotSatisfiable { size };
    let spec = header.trim().strip_prefix("bytes=").ok_or(ApiError::RangeNotSatisfiable { size })?;
    if spec.contains(',') {
        return Err(unsatisfiable);
    }
    let (start, end) = spec.split_once('-').ok_or(ApiError::RangeNotSatisfiable { size })?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| ApiError::RangeNotSatisfiable { size });
    let range = match (start.trim().is_empty(), end.trim().is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => {
            let suffix = number(end)?;
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable);
            }
            size.saturating_sub(suffix)..size
        }
        (false, true) => number(start)?..size,
        (false, false) => {
            let (first, last) = (number(start)?, number(end)?);
            if last < first {
                return Err(unsatisfiable);
            }
            first..last.saturating_add(1).min(size)
        }
        (true, true) => return Err(unsatisfiable),
    };
    if range.start >= size || range.is_empty() {
        return Err(unsatisfiable);
    }
    Ok(Some(range))
}

pub fn storage_error(error: StorageError) -> ApiError {
    match error {
        StorageError::TooLarge { limit } => ApiError::PayloadTooLarge { limit: limit as usize },
        StorageError::Interrupted(reason) => ApiError::invalid("upload_interrupted", reason),
        other => {
            tracing::warn!(error = %other, "media storage failed");
            ApiError::Unavailable
        }
    }
}

#[OpenApi(prefix_path = "/media", tag = "ApiTags::Media")]
impl MediaApi {
    /// Upload a photo, video or avatar
    ///
    /// The raw body is the (client-encrypted) content; `Content-Type` is recorded as declared,
    /// never trusted. Streamed to storage: size and SHA-256 are computed on the way. Over the
    /// size limit → 413 and nothing is kept.
    #[oai(path = "/", method = "post", operation_id = "upload_media")]
    async fn upload(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        #[oai(name = "Content-Type")] content_type: Header<Option<String>>,
        body: Binary<Body>,
        req: &Request,
    ) -> Result<UploadResponse, ApiError> {
        let caller = auth.0;
        let limit = state.config.media_max_bytes;
        // Framing, not a parameter of ours: hyper has already refused a malformed one.
        let declared_length = req.header(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        if declared_length.is_some_and(|len| len > limit) {
            return Err(ApiError::PayloadTooLarge { limit: limit as usize });
        }
        let content_type = content_type.0.unwrap_or_else(|| "application/octet-stream".to_owned());
        let media_id = Uuid::now_v7();
        let key = format!("media/{media_id}");
        let metrics = Arc::clone(&state);
        let body = body.0.into_bytes_stream().inspect_ok(move |chunk| metrics.metrics.media_bytes(true, chunk.len()));
        let stored = state.storage.put_stream(&key, body.boxed(), limit).await.map_err(storage_error)?;
        let view = record_stored(&state, caller, media_id, key, stored, content_type).await?;
        Ok(UploadResponse::Created(Json(view)))
    }

    /// Download media (supports `Range`)
    ///
    /// Readable by its uploader, by members of chats where it was sent, and by anyone when it is
    /// a profile picture; everyone else gets 404.
    #[oai(path = "/:id", method = "get", operation_id = "download_media")]
    async fn download(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        #[oai(name = "Range")] range: Header<Option<String>>,
    ) -> Result<Response<DownloadResponse>, ApiError> {
        let media = queries::readable_media(&state.pool, id.0, auth.0.user_id).await?.ok_or(ApiError::NotFound)?;
        let size = media.size as u64;
        let wanted = requested_range(range.0.as_deref(), size)?;
        let etag = format!("\"{}\"", media.sha256);
        let stream = state.storage.get_stream(&media.storage_key, wanted.clone()).await.map_err(storage_error)?;
        let metrics = Arc::clone(&state);
        let stream = stream.inspect_ok(move |chunk| metrics.metrics.media_bytes(false, chunk.len()));
        let body = Binary(Body::from_bytes_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other))));
        let (content_type, disposition) = served_type(&media.content_type);
        let (disposition, nosniff, csp) = (disposition.to_owned(), "nosniff".to_owned(), MEDIA_CSP.to_owned());
        let accept = "bytes".to_owned();
        let response = match wanted {
            None => DownloadResponse::Full(body, size, etag, accept, disposition, nosniff, csp),
            Some(range) => {
                let content_range = format!("bytes {}-{}/{size}", range.start, range.end - 1);
                let length = range.end - range.start;
                DownloadResponse::Partial(body, length, content_range, etag, accept, disposition, nosniff, csp)
            }
        };
        Ok(Response::new(response).header("Content-Type", content_type))
    }

    /// Delete your upload
    ///
    /// It stops being readable at once; its bytes are removed from storage shortly after.
    #[oai(path = "/:id", method = "delete", operation_id = "delete_media")]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let caller = auth.0;
        let command = MediaCommand::Delete { actor_id: Some(caller.user_id), reason: DeleteReason::ByOwner, at: now() };
        let committed = state
            .media
            .execute_retrying(&id.0.to_string(), command, &metadata(caller))
            .await
            .map_err(|e| command_error(e, media_error))?;
        state.await_projection("media", "Media", id.0, committed.version).await;
        Ok(Deleted::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::{requested_range, served_type};

    #[test]
    fn only_media_types_are_served_as_declared() {
        assert_eq!(served_type("image/png"), ("image/png", "inline"));
        assert_eq!(served_type("Video/MP4; codecs=avc1"), ("video/mp4", "inline"));
        for active in ["text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/pdf", "", "x"] {
            assert_eq!(served_type(active), ("application/octet-stream", "attachment"), "{active}");
        }
    }

    #[test]
    fn ranges_are_read_as_http_says_and_refused_outside_the_object() {
        let ok = |h: &str| requested_range(Some(h), 100).ok().flatten();
        assert_eq!(requested_range(None, 100).ok().flatten(), None);
        assert_eq!(ok("bytes=0-9"), Some(0..10));
        assert_eq!(ok("bytes=40-59"), Some(40..60));
        assert_eq!(ok("bytes=90-"), Some(90..100));
        assert_eq!(ok("bytes=-10"), Some(90..100));
        assert_eq!(ok("bytes=-500"), Some(0..100));
        assert_eq!(ok("bytes=95-200"), Some(95..100));
        for bad in [
            "bytes=100-",
            "bytes=100-200",
            "bytes=9-3",
            "bytes=-0",
            "bytes=-",
            "items=0-1",
            "bytes=a-b",
            "bytes=0-1,5-6",
        ] {
            assert!(requested_range(Some(bad), 100).is_err(), "{bad}");
        }
        assert!(requested_range(Some("bytes=-1"), 0).is_err());
    }
}
