//! A member removed from a chat (or leaving it) loses their place in the chat's live call: the
//! `Remove` command records it on the call, which ends their media on the SFU (it follows the
//! call's events) and refuses their join tokens issued before.

use chrono::Utc;
use parley_domain::call::CallCommand;
use uuid::Uuid;

use super::call_error;
use super::queries;
use crate::auth::Caller;
use crate::error::{command_error, ApiError};
use crate::state::AppState;

/// Runs after the chat's `RemoveMember` committed; a chat without a live call has nothing to do.
pub async fn remove_from_live_call(
    state: &AppState,
    chat_id: Uuid,
    user_id: Uuid,
    caller: Caller,
) -> Result<(), ApiError> {
    let Some(call_id) = queries::active_call_in(&state.pool, chat_id).await? else { return Ok(()) };
    let metadata =
        parley_domain::EventMetadata::new(Some(caller.user_id), Utc::now(), crate::ops::request_id::current());
    let command = CallCommand::Remove { user_id, at: super::routes::now() };
    state
        .calls
        .execute_retrying(&call_id.to_string(), command, &metadata)
        .await
        .map_err(|e| command_error(e, call_error))?;
    Ok(())
}
