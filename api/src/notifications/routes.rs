use std::sync::Arc;

use chrono::{DateTime, Utc};
use parley_domain::inbox::{InboxCommand, InboxError};
use parley_domain::EventMetadata;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use crate::auth::{AccessToken, Caller};
use crate::error::{command_error, ApiError};
use crate::pagination::{decode_time_cursor, encode_time_cursor, page_limit};
use crate::state::AppState;
use crate::ApiTags;

#[derive(Debug, Object)]
pub struct NotificationView {
    pub id: Uuid,
    /// `message` (arrived while you were offline) or `added_to_group`.
    pub kind: String,
    /// Ids that say what it is about, e.g. `{chat_id, message_id, seq, sender_id}`.
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

#[derive(Debug, Object)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct MarkNotificationsRequest {
    /// The notifications to mark read; absent marks all.
    pub ids: Option<Vec<Uuid>>,
}

#[derive(ApiResponse)]
pub enum NotificationPageResponse {
    #[oai(status = 200)]
    Ok(Json<NotificationPage>),
}

#[derive(ApiResponse)]
pub enum Done {
    #[oai(status = 204)]
    Done,
}

pub struct NotificationsApi;

fn inbox_error(error: InboxError) -> ApiError {
    ApiError::invalid("too_many_ids", error.to_string())
}

async fn record(state: &AppState, caller: Caller, command: InboxCommand) -> Result<(), ApiError> {
    let metadata = EventMetadata::new(Some(caller.user_id), Utc::now(), crate::ops::request_id::current());
    let committed = state
        .inboxes
        .execute_retrying(&caller.user_id.to_string(), command, &metadata)
        .await
        .map_err(|e| command_error(e, inbox_error))?;
    state.await_projection("feed", "Inbox", caller.user_id, committed.version).await;
    Ok(())
}

#[OpenApi(prefix_path = "/notifications", tag = "ApiTags::Notifications")]
impl NotificationsApi {
    /// Your notifications, newest first
    #[oai(path = "/", method = "get", operation_id = "list_notifications")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> Result<NotificationPageResponse, ApiError> {
        let limit = page_limit(limit.0)?;
        let after = decode_time_cursor(cursor.0.as_deref())?;
        let items = sqlx::query_as!(
            NotificationView,
            "SELECT id, kind, data, created_at, read FROM notifications WHERE user_id = $1 \
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) ORDER BY created_at DESC, id DESC LIMIT $4",
            auth.0.user_id,
            after.map(|a| a.0),
            after.map(|a| a.1).unwrap_or_default(),
            i64::from(limit)
        )
        .fetch_all(&state.pool)
        .await?;
        let next_cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|n| encode_time_cursor(n.created_at, n.id)))
            .flatten();
        Ok(NotificationPageResponse::Ok(Json(NotificationPage { items, next_cursor })))
    }

    /// Mark notifications read (all when `ids` is absent)
    #[oai(path = "/mark-read", method = "post", operation_id = "mark_notifications_read")]
    async fn mark_read(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        body: Json<Option<MarkNotificationsRequest>>,
    ) -> Result<Done, ApiError> {
        let ids = body.0.and_then(|b| b.ids);
        record(&state, auth.0, InboxCommand::MarkRead { ids, at: Utc::now() }).await?;
        Ok(Done::Done)
    }

    /// Delete a notification
    #[oai(path = "/:id", method = "delete", operation_id = "delete_notification")]
    async fn delete(&self, state: Data<&Arc<AppState>>, auth: AccessToken, id: Path<Uuid>) -> Result<Done, ApiError> {
        let found = sqlx::query_scalar!(
            r#"SELECT 1 AS "found!" FROM notifications WHERE id = $1 AND user_id = $2"#,
            id.0,
            auth.0.user_id
        )
        .fetch_optional(&state.pool)
        .await?;
        if found.is_none() {
            return Err(ApiError::NotFound);
        }
        record(&state, auth.0, InboxCommand::Delete { id: id.0, at: Utc::now() }).await?;
        Ok(Done::Done)
    }
}
