//! `/users`: queries read the projection; the update is a command on the `User` aggregate.

use std::sync::Arc;

use chrono::Utc;
use parley_domain::user::UserCommand;
use parley_domain::EventMetadata;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::queries::{self, SearchCursor};
use super::user_error;
use super::views::UserView;
use crate::auth::AccessToken;
use crate::error::{command_error, ApiError};
use crate::pagination::page_limit;
use crate::state::AppState;
use crate::text::Text;
use crate::ApiTags;

const MAX_QUERY_CHARS: usize = 100;

#[derive(Debug, Object)]
pub struct UpdateUserRequest {
    pub name: Option<Text>,
    pub status: Option<Text>,
    /// A media id to set the picture; `null` removes it; absent leaves it.
    #[oai(nullable)]
    pub avatar_media_id: MaybeUndefined<Uuid>,
}

#[derive(Debug, Object)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum UserResponse {
    #[oai(status = 200)]
    Ok(Json<UserView>),
}

#[derive(ApiResponse)]
pub enum UserPageResponse {
    #[oai(status = 200)]
    Ok(Json<UserPage>),
}

pub struct UsersApi;

#[OpenApi(prefix_path = "/users", tag = "ApiTags::Users")]
impl UsersApi {
    /// Search users by name or status
    ///
    /// Case-insensitive substring match on name or status, ordered by name.
    #[oai(path = "/", method = "get", operation_id = "search_users")]
    async fn search(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        /// Text to look for (1–100 characters).
        q: Query<String>,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> Result<UserPageResponse, ApiError> {
        let text = q.0.trim();
        if text.is_empty() || text.chars().count() > MAX_QUERY_CHARS {
            return Err(ApiError::invalid("invalid_query", format!("q must be 1 to {MAX_QUERY_CHARS} characters")));
        }
        let limit = page_limit(limit.0)?;
        let after = match cursor.0.as_deref() {
            Some(c) => Some(
                SearchCursor::decode(c).ok_or_else(|| ApiError::invalid("invalid_cursor", "cursor is not valid"))?,
            ),
            None => None,
        };
        let (rows, next) = queries::search(&state.pool, text, after.as_ref(), limit).await?;
        let viewer = auth.0.user_id;
        Ok(UserPageResponse::Ok(Json(UserPage {
            items: rows.into_iter().map(|row| UserView::seen_by(row, viewer)).collect(),
            next_cursor: next.map(|c| c.encode()),
        })))
    }

    /// A user's profile
    #[oai(path = "/:id", method = "get", operation_id = "get_user")]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<UserResponse, ApiError> {
        let row = queries::find(&state.pool, id.0).await?.ok_or(ApiError::NotFound)?;
        Ok(UserResponse::Ok(Json(UserView::seen_by(row, auth.0.user_id))))
    }

    /// Change your profile
    ///
    /// Only your own; fields left out are unchanged.
    #[oai(path = "/:id", method = "put", operation_id = "update_user")]
    async fn update(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        body: Json<UpdateUserRequest>,
    ) -> Result<UserResponse, ApiError> {
        let caller = auth.0.user_id;
        if id.0 != caller {
            return Err(ApiError::Forbidden("you may only change your own profile".into()));
        }
        let UpdateUserRequest { name, status, avatar_media_id } = body.0;
        let avatar = match avatar_media_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(media) => Some(Some(media)),
        };
        if let Some(Some(media)) = avatar {
            crate::media::ensure_own(&state.pool, &[media], caller).await?;
        }
        let now = Utc::now();
        let command = UserCommand::UpdateProfile {
            actor_id: caller,
            name: name.map(Text::into_inner),
            status: status.map(Text::into_inner),
            avatar_media_id: avatar,
            at: now,
        };
        let metadata = EventMetadata::new(Some(caller), now, crate::ops::request_id::current());
        let committed = state
            .users
            .execute(&caller.to_string(), command, &metadata)
            .await
            .map_err(|e| command_error(e, user_error))?;
        state.await_projection("users", "User", caller, committed.version).await;
        Ok(UserResponse::Ok(Json(UserView::own(&committed.state))))
    }
}
