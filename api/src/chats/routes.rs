//! `/chats`: thin handlers over the `Chat` aggregate; reads come from the `chats` projection.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};
use parley_domain::chat::{
    Chat, ChatCommand, ChatError, ChatEvent, ChatKind, DeleteScope, MessageRef, ReplyRef, Role, MAX_MEMBERS_PER_REQUEST,
};
use parley_domain::sealed::{self, KEY_BYTES, NONCE_BYTES};
use parley_domain::EventMetadata;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use rand::RngCore;
use uuid::Uuid;

use super::chat_error;
use super::queries;
use super::views::{ChatPage, ChatType, ChatView, InviteView, MessagePage, MessageView};
use crate::auth::{AccessToken, Caller};
use crate::commands::{retry_concurrent, CommandError, Committed, Conflict, MessageKey};
use crate::error::{command_error, ApiError};
use crate::pagination::{decode_time_cursor, encode_time_cursor, page_limit};
use crate::state::AppState;
use crate::text::Text;
use crate::ApiTags;

/// Decoded size limit of a message's ciphertext.
pub const MAX_CIPHERTEXT_BYTES: usize = 64 * 1024;

#[derive(Debug, Object)]
pub struct CreateChatRequest {
    #[oai(rename = "type")]
    pub chat_type: ChatType,
    /// Groups only.
    pub name: Option<Text>,
    /// Direct: exactly the other user. Group: the first members besides you.
    pub member_ids: Vec<Uuid>,
}

#[derive(Debug, Object)]
pub struct AddMembersRequest {
    pub user_ids: Vec<Uuid>,
}

/// A group member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum MemberRole {
    Admin,
    Member,
}

#[derive(Debug, Object)]
pub struct ChangeRoleRequest {
    pub role: MemberRole,
}

#[derive(Debug, Object)]
pub struct JoinRequest {
    pub invite_code: Text,
}

#[derive(Debug, Object)]
pub struct SendMessageRequest {
    /// Chosen by the client; a retry with the same id returns the same message.
    pub client_msg_id: Text,
    /// Opaque base64 (at most 64 KiB decoded); the server never interprets it.
    pub ciphertext: Text,
    /// The client's encryption scheme, e.g. `m.megolm.v1.aes-sha2`.
    pub algorithm: Text,
    #[oai(default)]
    pub media_ids: Vec<Uuid>,
    /// A message of this chat that you can see (sent since you joined; a message deleted for
    /// everyone counts, and shows as deleted). Anything else is refused with 400 `invalid_reply_to`.
    pub reply_to: Option<Uuid>,
}

#[derive(Debug, Object)]
pub struct MarkReadRequest {
    pub up_to_seq: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum DeleteFor {
    Everyone,
    Me,
}

#[derive(ApiResponse)]
pub enum CreateChatResponse {
    #[oai(status = 201)]
    Created(Json<ChatView>),
    /// The direct chat with this user already existed.
    #[oai(status = 200)]
    Existing(Json<ChatView>),
}

#[derive(ApiResponse)]
pub enum ChatResponse {
    #[oai(status = 200)]
    Ok(Json<ChatView>),
}

#[derive(ApiResponse)]
pub enum ChatPageResponse {
    #[oai(status = 200)]
    Ok(Json<ChatPage>),
}

#[derive(ApiResponse)]
pub enum InviteResponse {
    /// The group's new code; every earlier code stops working.
    #[oai(status = 201)]
    Created(Json<InviteView>),
}

#[derive(ApiResponse)]
pub enum MessageResponse {
    #[oai(status = 201)]
    Created(Json<MessageView>),
}

#[derive(ApiResponse)]
pub enum MessagePageResponse {
    #[oai(status = 200)]
    Ok(Json<MessagePage>),
}

#[derive(ApiResponse)]
pub enum NoContent {
    #[oai(status = 204)]
    Done,
}

pub struct ChatsApi;

/// Postgres keeps microseconds: times recorded in events are cut to that, so a message's time is
/// the same string in the POST answer, its frame and its history.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn metadata(caller: Caller) -> EventMetadata {
    EventMetadata::new(Some(caller.user_id), Utc::now(), crate::ops::request_id::current())
}

/// Runs a command on a chat. It does not wait for the read model: chat queries do (see
/// `caught_up`), so the caller's next query still sees what it just did.
async fn run(
    state: &AppState,
    chat_id: Uuid,
    command: ChatCommand,
    caller: Caller,
) -> Result<Committed<Chat>, ApiError> {
    state
        .chats
        .execute_retrying(&chat_id.to_string(), command, &metadata(caller))
        .await
        .map_err(|e| command_error(e, chat_error))
}

/// Read-your-writes on the query side: waits (bounded) until the `chats` read model has applied
/// every event committed for the chat, whichever replica committed it. On timeout the query
/// answers from the read model as it is.
async fn caught_up(state: &AppState, chat_id: Uuid) -> Result<(), ApiError> {
    wait_for_chats_model(state, || queries::chat_caught_up(&state.pool, chat_id)).await
}

/// Waits (bounded) until `check` says the `chats` read model has caught up.
async fn wait_for_chats_model<F, Fut>(state: &AppState, check: F) -> Result<(), ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, sqlx::Error>>,
{
    if !state.progress.wait_until(state.config.read_your_writes_timeout, check).await? {
        tracing::warn!("chats read model did not catch up in time");
    }
    Ok(())
}

async fn visible_chat(state: &AppState, chat_id: Uuid, viewer: Uuid) -> Result<ChatView, ApiError> {
    caught_up(state, chat_id).await?;
    queries::chat_for(&state.pool, chat_id, viewer).await?.ok_or(ApiError::NotFound)
}

async fn ensure_member(state: &AppState, chat_id: Uuid, user_id: Uuid) -> Result<(), ApiError> {
    if queries::is_member(&state.pool, chat_id, user_id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

async fn ensure_users_exist(state: &AppState, ids: &BTreeSet<Uuid>) -> Result<(), ApiError> {
    if ids.len() > MAX_MEMBERS_PER_REQUEST {
        return Err(ApiError::invalid(
            "too_many_members",
            format!("at most {MAX_MEMBERS_PER_REQUEST} members per request"),
        ));
    }
    let ids: Vec<Uuid> = ids.iter().copied().collect();
    if queries::existing_users(&state.pool, &ids).await? != ids.len() as i64 {
        return Err(ApiError::invalid("unknown_user", "one or more users do not exist"));
    }
    Ok(())
}

/// A message's base64 ciphertext as sent, checked (public for the fuzz targets, fuzz/).
pub fn decode_ciphertext(ciphertext: &str) -> Result<Vec<u8>, ApiError> {
    if ciphertext.len() > MAX_CIPHERTEXT_BYTES / 3 * 4 + 4 {
        return Err(ApiError::invalid(
            "ciphertext_too_large",
            format!("ciphertext is over {MAX_CIPHERTEXT_BYTES} bytes"),
        ));
    }
    let bytes = STANDARD
        .decode(ciphertext)
        .map_err(|_| ApiError::invalid("invalid_ciphertext", "ciphertext must be standard base64"))?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("invalid_ciphertext", "ciphertext must not be empty"));
    }
    if bytes.len() > MAX_CIPHERTEXT_BYTES {
        return Err(ApiError::invalid(
            "ciphertext_too_large",
            format!("ciphertext is over {MAX_CIPHERTEXT_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// The message as `viewer` (its sender) sees it in the read model once that has caught up.
async fn projected_message(
    state: &AppState,
    chat_id: Uuid,
    message_id: Uuid,
    viewer: Uuid,
) -> Result<MessageView, ApiError> {
    caught_up(state, chat_id).await?;
    queries::visible_message_by_id(&state.pool, chat_id, message_id, viewer).await?.ok_or(ApiError::Unavailable)
}

/// The message `reply_to` names in this chat, with its `seq`, for the aggregate to decide whether
/// the sender may see it. An id that is not a message of this chat is refused here (after the
/// read model caught up, so a reply to a message sent a moment ago is not refused), with the same
/// answer as one the sender may not see; a non-member gets 404 either way, so that nobody learns
/// which messages a chat they are not in holds.
async fn reply_target(
    state: &AppState,
    chat_id: Uuid,
    sender: Uuid,
    reply_to: Option<Uuid>,
) -> Result<Option<ReplyRef>, ApiError> {
    let Some(message_id) = reply_to else { return Ok(None) };
    if let Some(seq) = queries::message_seq(&state.pool, chat_id, message_id).await? {
        return Ok(Some(ReplyRef { message_id, seq }));
    }
    caught_up(state, chat_id).await?;
    ensure_member(state, chat_id, sender).await?;
    match queries::message_seq(&state.pool, chat_id, message_id).await? {
        Some(seq) => Ok(Some(ReplyRef { message_id, seq })),
        None => Err(chat_error(ChatError::InvalidReplyTo)),
    }
}

#[OpenApi(prefix_path = "/chats", tag = "ApiTags::Chats")]
impl ChatsApi {
    /// Start a direct chat or create a group
    ///
    /// A direct chat with the same user is returned (200) if it exists. The group's creator is admin.
    #[oai(path = "/", method = "post", operation_id = "create_chat")]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        body: Json<CreateChatRequest>,
    ) -> Result<CreateChatResponse, ApiError> {
        let caller = auth.0;
        let CreateChatRequest { chat_type, name, member_ids } = body.0;
        let others: BTreeSet<Uuid> = member_ids.into_iter().filter(|id| *id != caller.user_id).collect();
        ensure_users_exist(&state, &others).await?;
        let kind = match chat_type {
            ChatType::Direct => ChatKind::Direct,
            ChatType::Group => ChatKind::Group,
        };
        let direct_with = match (kind, others.iter().next()) {
            (ChatKind::Direct, Some(other)) if others.len() == 1 => Some(*other),
            (ChatKind::Direct, _) => {
                return Err(ApiError::invalid("invalid_members", "a direct chat needs exactly one other user"))
            }
            (ChatKind::Group, _) => None,
        };
        if let Some(other) = direct_with {
            if let Some(existing) = queries::direct_chat_between(&state.pool, caller.user_id, other).await? {
                return Ok(CreateChatResponse::Existing(Json(visible_chat(&state, existing, caller.user_id).await?)));
            }
        }
        let chat_id = Uuid::now_v7();
        let command = ChatCommand::Create {
            chat_id,
            kind,
            creator_id: caller.user_id,
            name: name.map(Text::into_inner),
            member_ids: others.into_iter().collect(),
            at: now(),
        };
        match state.chats.execute(&chat_id.to_string(), command, &metadata(caller)).await {
            Ok(_) => {}
            // The pair's direct chat was created concurrently: the unique index refused ours.
            Err(CommandError::Conflict(Conflict::DirectChatExists)) => {
                let other = direct_with
                    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a group chat conflicted as direct")))?;
                let existing = queries::direct_chat_between(&state.pool, caller.user_id, other)
                    .await?
                    .ok_or_else(|| ApiError::Conflict { code: "concurrent_update", message: "retry".into() })?;
                return Ok(CreateChatResponse::Existing(Json(visible_chat(&state, existing, caller.user_id).await?)));
            }
            Err(e) => return Err(command_error(e, chat_error)),
        }
        Ok(CreateChatResponse::Created(Json(visible_chat(&state, chat_id, caller.user_id).await?)))
    }

    /// Your chats, newest activity first
    #[oai(path = "/", method = "get", operation_id = "list_chats")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> Result<ChatPageResponse, ApiError> {
        let limit = page_limit(limit.0)?;
        let after = decode_time_cursor(cursor.0.as_deref())?;
        let user_id = auth.0.user_id;
        wait_for_chats_model(&state, || queries::chats_of_caught_up(&state.pool, user_id)).await?;
        let items = queries::chats_of(&state.pool, auth.0.user_id, after, limit).await?;
        let next_cursor = if items.len() == limit as usize {
            items.last().map(|c| encode_time_cursor(c.last_activity_at, c.id))
        } else {
            None
        };
        Ok(ChatPageResponse::Ok(Json(ChatPage { items, next_cursor })))
    }

    /// A chat with its members and their read marks
    #[oai(path = "/:id", method = "get", operation_id = "get_chat")]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<ChatResponse, ApiError> {
        Ok(ChatResponse::Ok(Json(visible_chat(&state, id.0, auth.0.user_id).await?)))
    }

    /// Add members to a group (admins)
    #[oai(path = "/:id/members", method = "post", operation_id = "add_members")]
    async fn add_members(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        body: Json<AddMembersRequest>,
    ) -> Result<ChatResponse, ApiError> {
        let caller = auth.0;
        ensure_member(&state, id.0, caller.user_id).await?;
        let user_ids: BTreeSet<Uuid> = body.0.user_ids.into_iter().collect();
        ensure_users_exist(&state, &user_ids).await?;
        let command =
            ChatCommand::AddMembers { actor_id: caller.user_id, user_ids: user_ids.into_iter().collect(), at: now() };
        run(&state, id.0, command, caller).await?;
        Ok(ChatResponse::Ok(Json(visible_chat(&state, id.0, caller.user_id).await?)))
    }

    /// Remove a member (admins) or leave (yourself)
    #[oai(path = "/:id/members/:user_id", method = "delete", operation_id = "remove_member")]
    async fn remove_member(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        ensure_member(&state, id.0, caller.user_id).await?;
        run(
            &state,
            id.0,
            ChatCommand::RemoveMember { actor_id: caller.user_id, user_id: user_id.0, at: now() },
            caller,
        )
        .await?;
        crate::calls::removal::remove_from_live_call(&state, id.0, user_id.0, caller).await?;
        Ok(NoContent::Done)
    }

    /// Make a member admin, or an admin a member (admins)
    ///
    /// Every member hears it as `chat.member_updated`. Demoting the group's only admin (yourself)
    /// is refused with 409 `last_admin`: make another member admin first. A user who is not a
    /// member answers 404, as does a chat you are not in.
    #[oai(path = "/:id/members/:user_id/role", method = "put", operation_id = "change_member_role")]
    async fn change_role(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        user_id: Path<Uuid>,
        body: Json<ChangeRoleRequest>,
    ) -> Result<ChatResponse, ApiError> {
        let caller = auth.0;
        ensure_member(&state, id.0, caller.user_id).await?;
        let role = match body.0.role {
            MemberRole::Admin => Role::Admin,
            MemberRole::Member => Role::Member,
        };
        let command = ChatCommand::ChangeRole { actor_id: caller.user_id, user_id: user_id.0, role, at: now() };
        run(&state, id.0, command, caller).await?;
        Ok(ChatResponse::Ok(Json(visible_chat(&state, id.0, caller.user_id).await?)))
    }

    /// Create the group's invite code (admins)
    ///
    /// A group has one live code: creating one revokes the previous ones ("reset link"). The code
    /// expires after `expires_in_secs` (1 to 604800, default 604800 = 7 days). Joining with an
    /// expired or revoked code answers 404, as for a code that never existed.
    #[oai(path = "/:id/invite", method = "post", operation_id = "create_invite")]
    async fn invite(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        /// Seconds until the code expires (1 to 604800; default 604800).
        expires_in_secs: Query<Option<i64>>,
    ) -> Result<InviteResponse, ApiError> {
        let caller = auth.0;
        ensure_member(&state, id.0, caller.user_id).await?;
        let mut secret = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let code = URL_SAFE_NO_PAD.encode(secret);
        let command = ChatCommand::CreateInvite {
            actor_id: caller.user_id,
            code: code.clone(),
            ttl_secs: expires_in_secs.0,
            at: now(),
        };
        let committed = run(&state, id.0, command, caller).await?;
        let expires_at = committed.events.iter().find_map(|e| match &e.payload {
            ChatEvent::InviteCreated { expires_at, .. } => *expires_at,
            _ => None,
        });
        let expires_at =
            expires_at.ok_or_else(|| ApiError::internal(anyhow::anyhow!("invite committed no InviteCreated")))?;
        Ok(InviteResponse::Created(Json(InviteView { invite_code: code, expires_at })))
    }

    /// Revoke the group's invite codes (admins)
    ///
    /// Every code of the group stops working at once; `POST /chats/{id}/invite` makes a new one.
    #[oai(path = "/:id/invite", method = "delete", operation_id = "revoke_invites")]
    async fn revoke_invites(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        ensure_member(&state, id.0, caller.user_id).await?;
        run(&state, id.0, ChatCommand::RevokeInvites { actor_id: caller.user_id, at: now() }, caller).await?;
        Ok(NoContent::Done)
    }

    /// Join a group with an invite code
    ///
    /// 404 for a code that is unknown, expired or revoked, and for someone an admin removed from
    /// the group (until an admin adds them again). A member who left on their own may rejoin. A
    /// member sees the messages sent from their joining on.
    #[oai(path = "/join", method = "post", operation_id = "join_chat")]
    async fn join(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        body: Json<JoinRequest>,
    ) -> Result<ChatResponse, ApiError> {
        let caller = auth.0;
        let code = body.0.invite_code.into_inner();
        let chat_id = queries::chat_for_invite(&state.pool, code.trim()).await?.ok_or(ApiError::NotFound)?;
        run(
            &state,
            chat_id,
            ChatCommand::Join { user_id: caller.user_id, code: code.trim().to_owned(), at: now() },
            caller,
        )
        .await?;
        Ok(ChatResponse::Ok(Json(visible_chat(&state, chat_id, caller.user_id).await?)))
    }

    /// Send a message
    ///
    /// Idempotent by `client_msg_id`: a retry returns the message the first attempt created.
    #[oai(path = "/:id/messages", method = "post", operation_id = "send_message")]
    async fn send(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        body: Json<SendMessageRequest>,
    ) -> Result<MessageResponse, ApiError> {
        let (caller, chat_id) = (auth.0, id.0);
        // Membership is the aggregate's to decide: a non-member's send fails there with 404.
        let SendMessageRequest { client_msg_id, ciphertext, algorithm, media_ids, reply_to } = body.0;
        let client_msg_id = client_msg_id.into_inner();
        let plaintext = decode_ciphertext(&ciphertext)?;
        if !media_ids.is_empty() && media_ids.len() <= parley_domain::chat::MAX_MEDIA_PER_MESSAGE {
            crate::media::ensure_own(&state.pool, &media_ids, caller.user_id).await?;
        }
        let reply_target = reply_target(&state, chat_id, caller.user_id, reply_to).await?;
        let message_id = Uuid::now_v7();
        let mut key = [0u8; KEY_BYTES];
        let mut nonce = [0u8; NONCE_BYTES];
        {
            // The thread's CSPRNG (ChaCha, seeded and reseeded from the OS) rather than a
            // `getrandom` system call for each of the two, on every message.
            let mut rng = rand::thread_rng();
            rng.fill_bytes(&mut key);
            rng.fill_bytes(&mut nonce);
        }
        let body = sealed::seal(&key, &nonce, &plaintext);
        let command = ChatCommand::SendMessage {
            message_id,
            sender_id: caller.user_id,
            sender_device_id: Some(caller.session_id),
            client_msg_id: client_msg_id.clone(),
            body,
            algorithm: algorithm.into_inner(),
            media_ids,
            reply_to: reply_target,
            at: now(),
        };
        let (aggregate_id, metadata) = (chat_id.to_string(), metadata(caller));
        let sent = retry_concurrent(|| {
            let keys = vec![MessageKey { message_id, key: key.to_vec() }];
            state.chats.execute_with_keys(&aggregate_id, command.clone(), &metadata, keys)
        })
        .await;
        match sent {
            // Answered from the committed event: queries wait for the read model, not this.
            Ok(committed) => {
                let sent = committed.events.iter().find_map(|e| match &e.payload {
                    ChatEvent::MessageSent {
                        seq,
                        sender_id,
                        sender_device_id,
                        client_msg_id,
                        algorithm,
                        media_ids,
                        reply_to,
                        sent_at,
                        ..
                    } => Some(MessageView {
                        id: message_id,
                        chat_id,
                        sender_id: *sender_id,
                        sender_device_id: *sender_device_id,
                        seq: *seq,
                        client_msg_id: client_msg_id.clone(),
                        ciphertext: Some(STANDARD.encode(&plaintext)),
                        algorithm: algorithm.clone(),
                        media_ids: media_ids.clone(),
                        reply_to: *reply_to,
                        created_at: *sent_at,
                        deleted: false,
                    }),
                    _ => None,
                });
                let sent = sent.ok_or_else(|| ApiError::internal(anyhow::anyhow!("send committed no MessageSent")))?;
                Ok(MessageResponse::Created(Json(sent)))
            }
            // This client_msg_id was used before (its lookup row refused ours): a retried send is
            // answered with the first attempt's message.
            Err(CommandError::Conflict(Conflict::ClientMessageIdUsed)) => {
                let (existing, _) = queries::sent_with_client_id(&state.pool, chat_id, caller.user_id, &client_msg_id)
                    .await?
                    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("client_msg_id refused but not found")))?;
                let existing = projected_message(&state, chat_id, existing, caller.user_id).await?;
                Ok(MessageResponse::Created(Json(existing)))
            }
            Err(e) => Err(command_error(e, chat_error)),
        }
    }

    /// Message history
    ///
    /// Newest first below `before_seq` (default: from the newest), or oldest first above `after_seq`.
    /// Only messages sent since you joined (or were last added) are served.
    #[oai(path = "/:id/messages", method = "get", operation_id = "list_messages")]
    async fn messages(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        before_seq: Query<Option<i64>>,
        after_seq: Query<Option<i64>>,
        limit: Query<Option<u32>>,
    ) -> Result<MessagePageResponse, ApiError> {
        let (caller, chat_id) = (auth.0, id.0);
        caught_up(&state, chat_id).await?;
        ensure_member(&state, chat_id, caller.user_id).await?;
        if before_seq.0.is_some() && after_seq.0.is_some() {
            return Err(ApiError::invalid("invalid_range", "give before_seq or after_seq, not both"));
        }
        if before_seq.0.is_some_and(|s| s < 1) || after_seq.0.is_some_and(|s| s < 0) {
            return Err(ApiError::invalid("invalid_seq", "seq bounds must be positive"));
        }
        let limit = page_limit(limit.0)?;
        let items =
            queries::messages_page(&state.pool, chat_id, caller.user_id, before_seq.0, after_seq.0, limit).await?;
        let next_cursor = match (items.len() == limit as usize, after_seq.0) {
            (true, None) => items.last().map(|m| m.seq.to_string()),
            _ => None,
        };
        Ok(MessagePageResponse::Ok(Json(MessagePage { items, next_cursor })))
    }

    /// Mark messages read up to `up_to_seq` (read receipt)
    #[oai(path = "/:id/mark-read", method = "post", operation_id = "mark_read")]
    async fn mark_read(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        body: Json<MarkReadRequest>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        let command = ChatCommand::MarkRead { user_id: caller.user_id, up_to_seq: body.0.up_to_seq, at: now() };
        run(&state, id.0, command, caller).await?;
        Ok(NoContent::Done)
    }

    /// Delete a message for everyone (its sender) or hide it for yourself
    ///
    /// For everyone, the ciphertext and media are erased for all members; a tombstone remains.
    #[oai(path = "/:id/messages/:message_id", method = "delete", operation_id = "delete_message")]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        id: Path<Uuid>,
        message_id: Path<Uuid>,
        /// `everyone` or `me` (default).
        #[oai(name = "for")]
        scope: Query<Option<DeleteFor>>,
    ) -> Result<NoContent, ApiError> {
        let (caller, chat_id) = (auth.0, id.0);
        caught_up(&state, chat_id).await?;
        ensure_member(&state, chat_id, caller.user_id).await?;
        let message = queries::visible_message_by_id(&state.pool, chat_id, message_id.0, caller.user_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let scope = match scope.0.unwrap_or(DeleteFor::Me) {
            DeleteFor::Everyone if message.deleted => return Ok(NoContent::Done),
            DeleteFor::Everyone => DeleteScope::Everyone,
            DeleteFor::Me => DeleteScope::Me,
        };
        let reference = MessageRef { message_id: message.id, seq: message.seq, sender_id: message.sender_id };
        let committed = run(
            &state,
            chat_id,
            ChatCommand::DeleteMessage { actor_id: caller.user_id, message: reference, scope, at: now() },
            caller,
        )
        .await?;
        // Erasure is answered only once no read model (history, feed replay) still holds the body.
        for projection in ["chats", "feed"] {
            state.await_projection(projection, "Chat", chat_id, committed.version).await;
        }
        Ok(NoContent::Done)
    }
}
