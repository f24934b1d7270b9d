//! Chats and messages: direct chats and groups, membership, invites, messages with per-chat `seq`,
//! read marks and deletion.

pub mod queries;
pub mod routes;
pub mod views;

use parley_domain::chat::ChatError;

use crate::error::ApiError;

/// How the `Chat` aggregate's refusals reach clients. A chat you are not in is "not found".
pub fn chat_error(error: ChatError) -> ApiError {
    let message = error.to_string();
    match error {
        ChatError::NotFound => ApiError::NotFound,
        ChatError::NotAdmin | ChatError::NotSender => ApiError::Forbidden(message),
        ChatError::AlreadyExists => ApiError::internal(anyhow::anyhow!("chat id collision")),
        ChatError::InvalidDirectChat => ApiError::invalid("invalid_members", message),
        ChatError::NotAGroup => ApiError::invalid("not_a_group", message),
        ChatError::InvalidName => ApiError::invalid("invalid_name", message),
        ChatError::TooManyMembers => ApiError::invalid("too_many_members", message),
        ChatError::NotAMember => ApiError::NotFound,
        ChatError::InvalidInvite => ApiError::NotFound,
        ChatError::InvalidAlgorithm => ApiError::invalid("invalid_algorithm", message),
        ChatError::InvalidClientMsgId => ApiError::invalid("invalid_client_msg_id", message),
        ChatError::TooManyMedia => ApiError::invalid("too_many_media", message),
        ChatError::InvalidSeq => ApiError::invalid("invalid_seq", message),
        ChatError::InvalidInviteTtl => ApiError::invalid("invalid_expiry", message),
        ChatError::InvalidReplyTo => ApiError::invalid("invalid_reply_to", message),
        ChatError::LastAdmin => ApiError::Conflict { code: "last_admin", message },
    }
}
