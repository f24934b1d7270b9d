//! `/calls`: thin handlers over the `Call` aggregate; reads come from the `calls` projection.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use parley_domain::call::{Call, CallCommand, CallKind, SfuNode};
use parley_domain::chat::{Chat, ChatKind};
use parley_domain::EventMetadata;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::call_error;
use super::placement;
use super::queries::{self, CallView};
use crate::auth::tokens::SfuRoom;
use crate::auth::{AccessToken, Caller};
use crate::chats::chat_error;
use crate::commands::{CommandError, Committed, Conflict};
use crate::error::{command_error, ApiError};
use crate::state::AppState;
use crate::ApiTags;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CallKindParam {
    Audio,
    Video,
}

#[derive(Debug, Object)]
pub struct StartCallRequest {
    pub chat_id: Uuid,
    pub kind: CallKindParam,
}

/// Where and how to connect to the call's media: the SFU's signaling WebSocket and a
/// short-lived join token to pass as `?token=`.
#[derive(Debug, Clone, Object)]
pub struct SfuAccess {
    pub url: String,
    pub token: String,
}

/// A call together with your way into its media.
#[derive(Debug, Clone, Object)]
pub struct JoinedCall {
    pub call: CallView,
    pub sfu: SfuAccess,
}

/// The call you started (or joined, when the chat already had one), with your way into its media.
#[derive(Debug, Clone, Object)]
pub struct StartedCall {
    #[oai(flatten)]
    pub call: CallView,
    pub sfu: SfuAccess,
}

#[derive(ApiResponse)]
pub enum StartCallResponse {
    /// The call rings the chat's other members.
    #[oai(status = 201)]
    Started(Json<StartedCall>),
    /// The chat already had a live call: you joined it.
    #[oai(status = 200)]
    Joined(Json<StartedCall>),
}

#[derive(ApiResponse)]
pub enum JoinedCallResponse {
    #[oai(status = 200)]
    Ok(Json<JoinedCall>),
}

/// The call under way in a chat, if any.
#[derive(Debug, Clone, Object)]
pub struct LiveCall {
    /// `null` when the chat has no call ringing or active.
    #[oai(nullable)]
    pub call: Option<CallView>,
}

#[derive(ApiResponse)]
pub enum LiveCallResponse {
    #[oai(status = 200)]
    Ok(Json<LiveCall>),
}

#[derive(ApiResponse)]
pub enum CallResponse {
    #[oai(status = 200)]
    Ok(Json<CallView>),
}

pub struct CallsApi;

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn metadata(caller: Caller) -> EventMetadata {
    EventMetadata::new(Some(caller.user_id), Utc::now(), crate::ops::request_id::current())
}

/// The chat as the write side knows it, if `user_id` is in it (else 404).
async fn chat_of_member(state: &AppState, chat_id: Uuid, user_id: Uuid) -> Result<Chat, ApiError> {
    let chat = state.chats.load(&chat_id.to_string()).await.map_err(|e| command_error(e, chat_error))?;
    if chat.members.contains_key(&user_id) {
        Ok(chat)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The call, if `user_id` is a member of its chat (else 404, whether or not it exists).
async fn call_of_member(state: &AppState, call_id: Uuid, user_id: Uuid) -> Result<Call, ApiError> {
    let call = state.calls.load(&call_id.to_string()).await.map_err(|e| command_error(e, call_error))?;
    let chat_id = call.chat_id.ok_or(ApiError::NotFound)?;
    chat_of_member(state, chat_id, user_id).await?;
    Ok(call)
}

async fn run(
    state: &AppState,
    call_id: Uuid,
    command: CallCommand,
    caller: Caller,
) -> Result<Committed<Call>, ApiError> {
    state
        .calls
        .execute_retrying(&call_id.to_string(), command, &metadata(caller))
        .await
        .map_err(|e| command_error(e, call_error))
}

/// A member's command on a call of their chat (404 for anyone else), then the call as it is now.
async fn act_on_call(
    state: &AppState,
    call_id: Uuid,
    caller: Caller,
    command: CallCommand,
) -> Result<CallView, ApiError> {
    call_of_member(state, call_id, caller.user_id).await?;
    run(state, call_id, command, caller).await?;
    visible_call(state, call_id, caller.user_id).await
}

/// The call from the read model once it has applied everything committed for it.
async fn visible_call(state: &AppState, call_id: Uuid, viewer: Uuid) -> Result<CallView, ApiError> {
    if !state
        .progress
        .wait_until(state.config.read_your_writes_timeout, || queries::call_caught_up(&state.pool, call_id))
        .await?
    {
        tracing::warn!(%call_id, "calls read model did not catch up in time");
    }
    queries::call_for(&state.pool, call_id, viewer).await?.ok_or(ApiError::NotFound)
}

/// A join token for `caller`. Membership is checked once more, from the event store, right before
/// it is issued: a removal that committed after the command's own check (and so maybe before or
/// after the call recorded it) must not leave the removed member holding a token issued after it.
async fn sfu_access(state: &AppState, call: &CallView, caller: Caller) -> Result<SfuAccess, ApiError> {
    match chat_of_member(state, call.chat_id, caller.user_id).await {
        Ok(_) => {}
        Err(ApiError::NotFound) => {
            super::removal::remove_from_live_call(state, call.chat_id, caller.user_id, caller).await?;
            return Err(ApiError::NotFound);
        }
        Err(error) => return Err(error),
    }
    let node = call_node(state, call.id).await?;
    let room = SfuRoom { call_id: call.id, kind: &call.kind, node: node.as_ref().map(|n| n.node_id.as_str()) };
    let token = state
        .tokens
        .issue_sfu_join(caller.user_id, caller.session_id, room, state.config.sfu_token_ttl, Utc::now())
        .map_err(ApiError::internal)?;
    let url = node.map_or_else(|| state.config.sfu_url.clone(), |node| node.url);
    Ok(SfuAccess { url, token })
}

/// The live SFU node the call is on; a call on a node that is gone moves to a live one first.
/// `None` when no node is live (the configured `PARLEY_SFU_URL` is all there is).
async fn call_node(state: &AppState, call_id: Uuid) -> Result<Option<SfuNode>, ApiError> {
    let pinned = state.calls.load(&call_id.to_string()).await.map_err(|e| command_error(e, call_error))?.sfu_node;
    if let Some(node) = pinned.as_deref().and_then(|node| state.sfu_nodes.live(node)) {
        return Ok(Some(node));
    }
    placement::move_media(state, call_id, pinned).await.map_err(|e| command_error(e, call_error))
}

/// Joins the chat's live call `call_id` (answering it if it rings for you).
async fn join_live_call(state: &AppState, call_id: Uuid, caller: Caller) -> Result<StartCallResponse, ApiError> {
    run(state, call_id, CallCommand::Accept { user_id: caller.user_id, at: now() }, caller).await?;
    let call = visible_call(state, call_id, caller.user_id).await?;
    let sfu = sfu_access(state, &call, caller).await?;
    Ok(StartCallResponse::Joined(Json(StartedCall { call, sfu })))
}

#[OpenApi(prefix_path = "/calls", tag = "ApiTags::Calls")]
impl CallsApi {
    /// Call a direct chat or a group
    ///
    /// Rings every other member (`call.ringing` on their WebSockets). A chat has one live call at
    /// a time: if it already has one, you join it (200). The answer carries your SFU join token.
    #[oai(path = "/", method = "post", operation_id = "start_call")]
    async fn start(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        body: Json<StartCallRequest>,
    ) -> Result<StartCallResponse, ApiError> {
        let caller = auth.0;
        let StartCallRequest { chat_id, kind } = body.0;
        let chat = chat_of_member(&state, chat_id, caller.user_id).await?;
        if let Some(live) = queries::active_call_in(&state.pool, chat_id).await? {
            return join_live_call(&state, live, caller).await;
        }
        let call_id = Uuid::now_v7();
        let command = CallCommand::Start {
            call_id,
            chat_id,
            kind: match kind {
                CallKindParam::Audio => CallKind::Audio,
                CallKindParam::Video => CallKind::Video,
            },
            initiator_id: caller.user_id,
            invitee_ids: chat.members.keys().copied().collect(),
            direct: chat.kind == Some(ChatKind::Direct),
            sfu_node: state.sfu_nodes.place().map(|node| node.node_id),
            at: now(),
        };
        match state.calls.execute(&call_id.to_string(), command, &metadata(caller)).await {
            Ok(_) => {}
            // Someone else in the chat started a call at the same moment: the one-live-call
            // lookup refused ours, so join theirs.
            Err(CommandError::Conflict(Conflict::ChatHasLiveCall)) => {
                let live = queries::active_call_in(&state.pool, chat_id).await?.ok_or_else(|| ApiError::Conflict {
                    code: "concurrent_update",
                    message: "the chat's call changed meanwhile; retry".into(),
                })?;
                return join_live_call(&state, live, caller).await;
            }
            Err(e) => return Err(command_error(e, call_error)),
        }
        let call = visible_call(&state, call_id, caller.user_id).await?;
        let sfu = sfu_access(&state, &call, caller).await?;
        Ok(StartCallResponse::Started(Json(StartedCall { call, sfu })))
    }

    /// The call under way in one of your chats
    ///
    /// So a chat's screen can offer to join a group call that started before it opened. `call`
    /// is `null` when nothing rings or runs there; 404 for chats you are not in.
    #[oai(path = "/", method = "get", operation_id = "live_call")]
    async fn live(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        chat_id: Query<Uuid>,
    ) -> Result<LiveCallResponse, ApiError> {
        let viewer = auth.0.user_id;
        chat_of_member(&state, chat_id.0, viewer).await?;
        let call = match queries::active_call_in(&state.pool, chat_id.0).await? {
            Some(call_id) => queries::call_for(&state.pool, call_id, viewer).await?,
            None => None,
        };
        Ok(LiveCallResponse::Ok(Json(LiveCall { call })))
    }

    /// A call of one of your chats
    #[oai(path = "/:id", method = "get", operation_id = "get_call")]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<CallResponse, ApiError> {
        Ok(CallResponse::Ok(Json(visible_call(&state, id.0, auth.0.user_id).await?)))
    }

    /// Answer a call, or join a group call under way
    #[oai(path = "/:id/accept", method = "post", operation_id = "accept_call")]
    async fn accept(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<JoinedCallResponse, ApiError> {
        let caller = auth.0;
        let command = CallCommand::Accept { user_id: caller.user_id, at: now() };
        let call = act_on_call(&state, id.0, caller, command).await?;
        let sfu = sfu_access(&state, &call, caller).await?;
        Ok(JoinedCallResponse::Ok(Json(JoinedCall { call, sfu })))
    }

    /// Decline a call ringing for you
    #[oai(path = "/:id/reject", method = "post", operation_id = "reject_call")]
    async fn reject(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<CallResponse, ApiError> {
        let caller = auth.0;
        let command = CallCommand::Reject { user_id: caller.user_id, at: now() };
        Ok(CallResponse::Ok(Json(act_on_call(&state, id.0, caller, command).await?)))
    }

    /// Hang up
    ///
    /// A 1:1 call ends for both; a group call ends when its last participant leaves. A caller who
    /// hangs up before anyone answered leaves a missed call.
    #[oai(path = "/:id/end", method = "post", operation_id = "end_call")]
    async fn end(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<CallResponse, ApiError> {
        let caller = auth.0;
        let command = CallCommand::Leave { user_id: caller.user_id, at: now() };
        Ok(CallResponse::Ok(Json(act_on_call(&state, id.0, caller, command).await?)))
    }
}
