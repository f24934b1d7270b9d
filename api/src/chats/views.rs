use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ChatType {
    Direct,
    Group,
}

#[derive(Debug, Clone, Object)]
pub struct MemberView {
    pub user_id: Uuid,
    /// `admin` or `member`.
    pub role: String,
    pub joined_at: DateTime<Utc>,
    /// The member's read mark: every message up to this `seq` is read (receipts).
    pub read_up_to_seq: i64,
}

/// A message. `ciphertext` is the client's opaque base64 string; after a delete for everyone it
/// is `null`, `media_ids` is empty and `deleted` is true.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct MessageView {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    /// The device (login session) that sent it, as the server knows it: pick the sender's keys
    /// by it. `null` for messages sent before devices existed.
    #[oai(nullable)]
    pub sender_device_id: Option<Uuid>,
    pub seq: i64,
    pub client_msg_id: String,
    #[oai(nullable)]
    pub ciphertext: Option<String>,
    pub algorithm: String,
    pub media_ids: Vec<Uuid>,
    #[oai(nullable)]
    pub reply_to: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub deleted: bool,
}

#[derive(Debug, Clone, Object)]
pub struct ChatView {
    pub id: Uuid,
    #[oai(rename = "type")]
    pub chat_type: ChatType,
    #[oai(nullable)]
    pub name: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub members: Vec<MemberView>,
    /// `seq` of the newest message (0 when there is none).
    pub last_seq: i64,
    pub last_activity_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Object)]
pub struct ChatSummary {
    pub id: Uuid,
    #[oai(rename = "type")]
    pub chat_type: ChatType,
    #[oai(nullable)]
    pub name: Option<String>,
    pub member_count: i64,
    pub last_seq: i64,
    pub last_activity_at: DateTime<Utc>,
    #[oai(nullable)]
    pub last_message: Option<MessageView>,
    pub unread_count: i64,
}

#[derive(Debug, Object)]
pub struct ChatPage {
    pub items: Vec<ChatSummary>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct MessagePage {
    pub items: Vec<MessageView>,
    /// For older messages pass this as `before_seq`; `null` when there are none.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct InviteView {
    pub invite_code: String,
    /// After this the code no longer lets anyone join.
    pub expires_at: DateTime<Utc>,
}

pub fn chat_type(kind: &str) -> ChatType {
    if kind == "direct" {
        ChatType::Direct
    } else {
        ChatType::Group
    }
}
