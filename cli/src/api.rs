//! The HTTP API, through `parley-sdk` (generated from `openapi/openapi.json`).
//!
//! Every other module talks to the server only through [`Api`], in the client core's wire types where they
//! exist (`DeviceKeysUpload`, `UserDevices`, `ClaimedOneTimeKey`, `OutgoingToDevice`, `IncomingToDevice`) and
//! in the small views below otherwise. The SDK's generated types are converted by their JSON form, which is
//! the wire form both sides were made from.

use futures::Stream;
use parley_client_core::{ClaimedOneTimeKey, DeviceAddress, DeviceKeysUpload, IncomingToDevice};
use parley_client_core::{OutgoingToDevice, UserDevices};
use parley_sdk::{types, Client};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{CliError, Result};

/// A user as the server shows them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct User {
    pub id: Uuid,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub status: String,
}

/// The answer of register and login.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SignedIn {
    pub user: User,
    pub device_id: Uuid,
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// A chat message as the history routes and `message.created` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Message {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    #[serde(default)]
    pub sender_device_id: Option<Uuid>,
    pub seq: i64,
    pub client_msg_id: String,
    #[serde(default)]
    pub ciphertext: Option<String>,
    pub algorithm: String,
    #[serde(default)]
    pub media_ids: Vec<Uuid>,
    pub created_at: String,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Member {
    pub user_id: Uuid,
    pub role: String,
    #[serde(default)]
    pub read_up_to_seq: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Chat {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    pub members: Vec<Member>,
    #[serde(default)]
    pub last_seq: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChatSummary {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    pub member_count: i64,
    #[serde(default)]
    pub last_message: Option<Message>,
    #[serde(default)]
    pub unread_count: i64,
    pub last_activity_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OwnDeviceInfo {
    pub device_id: Uuid,
    #[serde(default)]
    pub display_name: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub last_seen_at: Option<String>,
    #[serde(default)]
    pub current: bool,
    #[serde(default)]
    pub one_time_key_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Invite {
    pub invite_code: String,
    pub expires_at: String,
}

/// `PUT /keys/devices/{id}` answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Published {
    pub one_time_key_count: u64,
    pub has_fallback_key: bool,
}

/// The typed HTTP client of one server, with the access token it sends.
#[derive(Clone)]
pub(crate) struct Api {
    client: Client,
    base: String,
}

/// Converts between two serde types through their JSON form (SDK types ↔ the CLI's and the core's).
fn convert<T: DeserializeOwned>(value: impl Serialize) -> Result<T> {
    let json = serde_json::to_value(value).map_err(|error| CliError::Transport(error.to_string()))?;
    serde_json::from_value(json).map_err(|error| CliError::Transport(format!("unexpected answer: {error}")))
}

fn sdk_error(error: parley_sdk::Error<types::ErrorBody>) -> CliError {
    match error {
        parley_sdk::Error::ErrorResponse(response) => {
            let status = response.status().as_u16();
            let body = response.into_inner();
            CliError::Api { status, code: body.error.code, message: body.error.message }
        }
        parley_sdk::Error::UnexpectedResponse(response) => CliError::Api {
            status: response.status().as_u16(),
            code: "unexpected_status".into(),
            message: format!("{} {}", response.status(), response.url()),
        },
        other => CliError::Transport(other.to_string()),
    }
}

impl Api {
    /// A client without a token (register, log in, refresh).
    pub(crate) fn anonymous(base: &str) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        Self { client: Client::anonymous(&base), base }
    }

    /// A client sending `access_token`.
    pub(crate) fn with_token(base: &str, access_token: &str) -> Result<Self> {
        let api = Self::anonymous(base);
        api.set_token(access_token)?;
        Ok(api)
    }

    pub(crate) fn set_token(&self, access_token: &str) -> Result<()> {
        self.client.set_access_token(access_token).map_err(|error| CliError::Transport(error.to_string()))
    }

    // ----- Auth and users -----

    pub(crate) async fn register(&self, name: &str, email: &str, password: &str) -> Result<SignedIn> {
        let body: types::RegisterRequest = convert(json!({"name": name, "email": email, "password": password}))?;
        let answer = self.client.register().body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> Result<SignedIn> {
        let body: types::LoginRequest = convert(json!({"email": email, "password": password}))?;
        let answer = self.client.login().body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let body: types::RefreshRequest = convert(json!({"refresh_token": refresh_token}))?;
        let answer = self.client.refresh().body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    pub(crate) async fn logout(&self, refresh_token: &str) -> Result<()> {
        let body: types::LogoutRequest = convert(json!({"refresh_token": refresh_token}))?;
        self.client.logout().body(body).send().await.map_err(sdk_error)?;
        Ok(())
    }

    pub(crate) async fn set_avatar(&self, user_id: Uuid, media_id: Uuid) -> Result<User> {
        let body: types::UpdateUserRequest = convert(json!({"avatar_media_id": media_id}))?;
        let answer = self.client.update_user().id(user_id).body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    pub(crate) async fn search_users(&self, text: &str) -> Result<Vec<User>> {
        let page = self.client.search_users().q(text).limit(50u32).send().await.map_err(sdk_error)?;
        convert(page.into_inner().items)
    }

    pub(crate) async fn get_user(&self, id: Uuid) -> Result<User> {
        let answer = self.client.get_user().id(id).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    // ----- Chats and messages -----

    pub(crate) async fn list_chats(&self) -> Result<Vec<ChatSummary>> {
        let page = self.client.list_chats().limit(200u32).send().await.map_err(sdk_error)?;
        convert(page.into_inner().items)
    }

    pub(crate) async fn get_chat(&self, id: Uuid) -> Result<Chat> {
        let answer = self.client.get_chat().id(id).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    pub(crate) async fn create_chat(&self, kind: &str, name: Option<&str>, members: &[Uuid]) -> Result<Chat> {
        let mut body = json!({"type": kind, "member_ids": members});
        if let Some(name) = name {
            body["name"] = Value::from(name);
        }
        let body: types::CreateChatRequest = convert(body)?;
        let answer = self.client.create_chat().body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    pub(crate) async fn add_members(&self, chat: Uuid, users: &[Uuid]) -> Result<()> {
        let body: types::AddMembersRequest = convert(json!({"user_ids": users}))?;
        self.client.add_members().id(chat).body(body).send().await.map_err(sdk_error)?;
        Ok(())
    }

    pub(crate) async fn remove_member(&self, chat: Uuid, user: Uuid) -> Result<()> {
        self.client.remove_member().id(chat).user_id(user).send().await.map_err(sdk_error)?;
        Ok(())
    }

    pub(crate) async fn create_invite(&self, chat: Uuid) -> Result<Invite> {
        let answer = self.client.create_invite().id(chat).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    pub(crate) async fn join_chat(&self, code: &str) -> Result<Chat> {
        let body: types::JoinRequest = convert(json!({"invite_code": code}))?;
        let answer = self.client.join_chat().body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    /// Newest first, below `before_seq` when given.
    pub(crate) async fn list_messages(&self, chat: Uuid, before_seq: Option<i64>, limit: u32) -> Result<Vec<Message>> {
        let mut request = self.client.list_messages().id(chat).limit(limit);
        if let Some(before) = before_seq {
            request = request.before_seq(before);
        }
        let page = request.send().await.map_err(sdk_error)?;
        convert(page.into_inner().items)
    }

    pub(crate) async fn send_message(
        &self,
        chat: Uuid,
        client_msg_id: &str,
        algorithm: &str,
        ciphertext: &str,
        media_ids: &[Uuid],
    ) -> Result<Message> {
        let body: types::SendMessageRequest = convert(json!({
            "client_msg_id": client_msg_id,
            "algorithm": algorithm,
            "ciphertext": ciphertext,
            "media_ids": media_ids,
        }))?;
        let answer = self.client.send_message().id(chat).body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    /// Moves your read mark (others see a `chat.read` receipt).
    pub(crate) async fn mark_read(&self, chat: Uuid, up_to_seq: i64) -> Result<()> {
        let body: types::MarkReadRequest = convert(json!({"up_to_seq": up_to_seq}))?;
        self.client.mark_read().id(chat).body(body).send().await.map_err(sdk_error)?;
        Ok(())
    }

    pub(crate) async fn delete_message(&self, chat: Uuid, message: Uuid, for_everyone: bool) -> Result<()> {
        let scope = if for_everyone { types::DeleteFor::Everyone } else { types::DeleteFor::Me };
        self.client.delete_message().id(chat).message_id(message).for_(scope).send().await.map_err(sdk_error)?;
        Ok(())
    }

    // ----- Media -----

    /// Uploads `body` (a stream of chunks) as `application/octet-stream` or the given type; returns the
    /// media id.
    pub(crate) async fn upload_media<S>(&self, body: S, content_type: &str) -> Result<Uuid>
    where
        S: Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static,
    {
        let body = reqwest::Body::wrap_stream(body);
        let answer =
            self.client.upload_media().content_type(content_type).body(body).send().await.map_err(sdk_error)?;
        Ok(answer.into_inner().id)
    }

    /// The media's bytes, as a stream of chunks.
    pub(crate) async fn download_media(
        &self,
        id: Uuid,
    ) -> Result<impl Stream<Item = std::result::Result<bytes::Bytes, reqwest::Error>> + Unpin> {
        let answer = self.client.download_media().id(id).send().await.map_err(sdk_error)?;
        Ok(answer.into_inner().into_inner())
    }

    // ----- Keys and to-device -----

    pub(crate) async fn publish_keys(&self, device_id: Uuid, upload: &DeviceKeysUpload) -> Result<Published> {
        let body: types::PublishKeysRequest = convert(upload)?;
        let answer =
            self.client.publish_device_keys().device_id(device_id).body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    pub(crate) async fn own_devices(&self) -> Result<Vec<OwnDeviceInfo>> {
        let answer = self.client.list_own_devices().send().await.map_err(sdk_error)?;
        convert(answer.into_inner().items)
    }

    pub(crate) async fn remove_device(&self, device_id: Uuid) -> Result<()> {
        self.client.remove_device().device_id(device_id).send().await.map_err(sdk_error)?;
        Ok(())
    }

    pub(crate) async fn query_keys(&self, users: &[Uuid]) -> Result<Vec<UserDevices>> {
        let body: types::QueryKeysRequest = convert(json!({"user_ids": users}))?;
        let answer = self.client.query_keys().body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner().users)
    }

    /// One user's devices (visible to yourself and to users sharing a chat with them).
    pub(crate) async fn user_devices(&self, user: Uuid) -> Result<UserDevices> {
        let answer = self.client.get_user_devices().user_id(user).send().await.map_err(sdk_error)?;
        convert(answer.into_inner())
    }

    pub(crate) async fn claim_keys(&self, devices: &[DeviceAddress]) -> Result<Vec<ClaimedOneTimeKey>> {
        let body: types::ClaimKeysRequest = convert(json!({"devices": devices}))?;
        let answer = self.client.claim_keys().body(body).send().await.map_err(sdk_error)?;
        convert(answer.into_inner().keys)
    }

    pub(crate) async fn send_to_device(&self, messages: &[OutgoingToDevice]) -> Result<()> {
        // The server takes at most 1,000 messages per request.
        for batch in messages.chunks(1000) {
            let body: types::SendToDeviceRequest = convert(json!({"messages": batch}))?;
            self.client.send_to_device().body(body).send().await.map_err(sdk_error)?;
        }
        Ok(())
    }

    pub(crate) async fn pending_to_device(&self) -> Result<Vec<IncomingToDevice>> {
        let answer = self.client.list_to_device().limit(1000u32).send().await.map_err(sdk_error)?;
        convert(answer.into_inner().items)
    }

    pub(crate) async fn ack_to_device(&self, ids: &[Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let body: types::AcknowledgeRequest = convert(json!({"ids": ids}))?;
        self.client.acknowledge_to_device().body(body).send().await.map_err(sdk_error)?;
        Ok(())
    }

    /// The realtime socket's URL for `access_token`.
    pub(crate) fn websocket_url(&self, access_token: &str) -> String {
        let base = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = self.base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            self.base.clone()
        };
        format!("{base}/ws?token={access_token}")
    }
}
