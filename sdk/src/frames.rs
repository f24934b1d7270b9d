//! The realtime frames of `GET /ws`, typed.
//!
//! The server sends `{"type", "data", "cursor"}` ([`ServerFrame`]): frames from the user's feed
//! carry a `cursor` (pass the last one you saw as `?cursor=` when reconnecting to replay what came
//! after it); `typing`, `pong`, `auth.ok` and `error` carry `null`. A frame of a type this SDK
//! does not know yet parses as [`ServerEvent::Unknown`] rather than failing, so a newer server does
//! not break an older client. The client sends [`ClientFrame`]s (at most 64 KiB each).
//!
//! Times are RFC 3339; ids are UUIDs. `to_device`, `device_list.changed` and `one_time_keys.low`
//! are the key directory's frames (see the E2EE contract).

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

/// One frame from the server: what happened, and its feed cursor if it is stored in the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFrame {
    pub event: ServerEvent,
    /// The frame's position in the user's feed (opaque; send it back as `?cursor=`). `None` for
    /// frames that are not stored: `typing`, `pong`, `auth.ok`, `error`.
    pub cursor: Option<String>,
}

impl ServerFrame {
    /// Parses one text message of the socket.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }
}

/// What a server frame says, by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ServerEvent {
    /// A message in one of your chats, as the history routes show it.
    #[serde(rename = "message.created")]
    MessageCreated(Message),
    #[serde(rename = "message.deleted")]
    MessageDeleted(MessageDeleted),
    /// A member's read mark moved (receipts).
    #[serde(rename = "chat.read")]
    ChatRead(ChatRead),
    #[serde(rename = "chat.member_added")]
    ChatMemberAdded(ChatMemberAdded),
    #[serde(rename = "chat.member_removed")]
    ChatMemberRemoved(ChatMemberRemoved),
    #[serde(rename = "chat.member_updated")]
    ChatMemberUpdated(ChatMemberUpdated),
    /// Someone you share a chat with (or you, on another device) changed their profile.
    #[serde(rename = "user.updated")]
    UserUpdated(UserUpdated),
    /// A call rings you.
    #[serde(rename = "call.ringing")]
    CallRinging(CallRinging),
    #[serde(rename = "call.updated")]
    CallUpdated(CallUpdated),
    #[serde(rename = "notification.created")]
    NotificationCreated(Notification),
    /// Someone else is typing in a chat (never stored, no cursor).
    #[serde(rename = "typing")]
    Typing(Typing),
    /// The answer to a [`ClientFrame::Ping`].
    #[serde(rename = "pong")]
    Pong,
    /// The answer to a [`ClientFrame::Auth`] the server accepted.
    #[serde(rename = "auth.ok")]
    AuthOk(AuthOk),
    /// Something went wrong; `session_revoked`, `token_expired` and `invalid_token` are followed
    /// by close code 4001.
    #[serde(rename = "error")]
    Error(ErrorData),
    /// An end-to-end encrypted message to this device (only to the recipient device's sockets).
    #[serde(rename = "to_device")]
    ToDevice(ToDeviceMessage),
    /// A user's devices changed: query their keys again.
    #[serde(rename = "device_list.changed")]
    DeviceListChanged(DeviceListChanged),
    /// A claim left one of your devices with few one-time keys: upload more.
    #[serde(rename = "one_time_keys.low")]
    OneTimeKeysLow(OneTimeKeysLow),
    /// A frame type this SDK does not know, kept as it came.
    #[serde(skip)]
    Unknown { kind: String, data: Value },
}

impl ServerEvent {
    /// Every `type` the typed variants cover.
    pub const KNOWN_TYPES: &'static [&'static str] = &[
        "message.created",
        "message.deleted",
        "chat.read",
        "chat.member_added",
        "chat.member_removed",
        "chat.member_updated",
        "user.updated",
        "call.ringing",
        "call.updated",
        "notification.created",
        "typing",
        "pong",
        "auth.ok",
        "error",
        "to_device",
        "device_list.changed",
        "one_time_keys.low",
    ];
}

/// A frame as it travels, before its `data` is typed.
#[derive(Serialize, Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    cursor: Option<String>,
}

impl<'de> Deserialize<'de> for ServerFrame {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let RawFrame { kind, data, cursor } = RawFrame::deserialize(deserializer)?;
        let event = if ServerEvent::KNOWN_TYPES.contains(&kind.as_str()) {
            let tagged = serde_json::json!({"type": kind, "data": data});
            ServerEvent::deserialize(tagged).map_err(|error| D::Error::custom(format!("`{kind}` frame: {error}")))?
        } else {
            ServerEvent::Unknown { kind, data }
        };
        Ok(Self { event, cursor })
    }
}

impl Serialize for ServerFrame {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let (kind, data) = match &self.event {
            ServerEvent::Unknown { kind, data } => (kind.clone(), data.clone()),
            event => {
                let tagged = serde_json::to_value(event).map_err(S::Error::custom)?;
                let kind = tagged["type"].as_str().unwrap_or_default().to_owned();
                (kind, tagged.get("data").cloned().unwrap_or(Value::Null))
            }
        };
        RawFrame { kind, data, cursor: self.cursor.clone() }.serialize(serializer)
    }
}

/// A frame the client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Answered with [`ServerEvent::Pong`].
    Ping,
    /// Tells the chat's other members you are typing (rate-limited; excess frames are dropped).
    Typing { chat_id: Uuid },
    /// A fresh access token of the same user, sent before the current one expires; answered
    /// with [`ServerEvent::AuthOk`], or `invalid_token` and close code 4001.
    Auth { token: String },
}

impl ClientFrame {
    /// The frame as the text message to send.
    #[expect(clippy::expect_used, reason = "the frames are plain strings and UUIDs, which always serialise")]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client frames always serialise")
    }
}

/// A chat message (`message.created`): the same shape as `GET /chats/{id}/messages` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    /// The sender's device, as the server knows it; `None` for messages sent before devices
    /// existed (and from servers that do not send it yet).
    #[serde(default)]
    pub sender_device_id: Option<Uuid>,
    pub seq: i64,
    pub client_msg_id: String,
    /// Padded base64, opaque to the server; `None` once deleted for everyone.
    pub ciphertext: Option<String>,
    pub algorithm: String,
    pub media_ids: Vec<Uuid>,
    pub reply_to: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub deleted: bool,
}

/// Who a message was deleted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletedFor {
    /// Every member: the message is a tombstone now.
    Everyone,
    /// Only you: it is gone from your history.
    Me,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDeleted {
    pub chat_id: Uuid,
    pub seq: i64,
    pub message_id: Uuid,
    #[serde(rename = "for")]
    pub deleted_for: DeletedFor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRead {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    /// Every message up to this `seq` is read by `user_id`.
    pub up_to_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMemberAdded {
    pub chat_id: Uuid,
    pub user_ids: Vec<Uuid>,
    /// Absent when the chat was created with them or they joined by invite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMemberRemoved {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    /// Who removed them (themselves when they left).
    pub removed_by: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMemberUpdated {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    /// `admin` or `member`.
    pub role: String,
}

/// A profile change: only the fields that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdated {
    pub user_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Present when the picture changed: `Some(None)` (`null`) when it was removed.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub avatar_media_id: Option<Option<Uuid>>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRinging {
    pub call_id: Uuid,
    pub chat_id: Uuid,
    /// `audio` or `video`.
    pub kind: String,
    pub initiator_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// What changed in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallChange {
    Accepted,
    Rejected,
    /// The participant's media reached the SFU.
    Connected,
    Left,
    /// The call is over (`status` says how).
    Ended,
    /// The call's SFU node died and the api placed it on another: join again
    /// (`POST /calls/{id}/accept` gives a token for the new node).
    MediaMoved,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallUpdated {
    pub call_id: Uuid,
    pub chat_id: Uuid,
    pub change: CallChange,
    /// Whose change it is (every change but `ended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// With `ended`: `ended`, `rejected` or `missed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// With `left`: `hung_up`, `disconnected` or `removed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A notification (`notification.created`), as `GET /notifications` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: Uuid,
    /// `message`, `added_to_group`, `incoming_call` or `missed_call`.
    pub kind: String,
    /// Ids that say what it is about, e.g. `{chat_id, message_id, seq, sender_id}`.
    pub data: Value,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    pub chat_id: Uuid,
    pub user_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthOk {
    /// When the token the socket now lives on expires.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    /// E.g. `invalid_frame`, `not_found`, `session_revoked`, `token_expired`, `invalid_token`.
    pub code: String,
    pub message: String,
}

/// An Olm-encrypted message to one device (`to_device`), also listed by `GET /to-device`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDeviceMessage {
    /// Acknowledge it with `POST /to-device/ack` once handled.
    pub id: Uuid,
    /// The sender as the server authenticated it.
    pub sender_id: Uuid,
    pub sender_device_id: Uuid,
    /// The JSON Olm envelope as a string (`{"algorithm":"parley.olm.v1", ...}`).
    pub ciphertext: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceListChanged {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimeKeysLow {
    pub device_id: Uuid,
    /// One-time keys the device has left on the server.
    pub remaining: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample per frame type, shaped like what the server writes (`realtime/mod.rs`, the
    /// `feed` projection) or, for the key directory's frames, what the E2EE contract says.
    const SAMPLES: &[&str] = &[
        r#"{"type":"message.created","data":{"id":"0190a3a0-0000-7000-8000-000000000001","chat_id":"0190a3a0-0000-7000-8000-000000000002","sender_id":"0190a3a0-0000-7000-8000-000000000003","seq":7,"client_msg_id":"c-1","ciphertext":"aGVsbG8=","algorithm":"parley.megolm.v1","media_ids":[],"reply_to":null,"created_at":"2026-11-28T10:00:00+00:00","deleted":false},"cursor":"41"}"#,
        r#"{"type":"message.deleted","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","seq":7,"message_id":"0190a3a0-0000-7000-8000-000000000001","for":"everyone"},"cursor":"42"}"#,
        r#"{"type":"chat.read","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_id":"0190a3a0-0000-7000-8000-000000000003","up_to_seq":7},"cursor":"43"}"#,
        r#"{"type":"chat.member_added","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_ids":["0190a3a0-0000-7000-8000-000000000004"],"added_by":"0190a3a0-0000-7000-8000-000000000003"},"cursor":"44"}"#,
        r#"{"type":"chat.member_removed","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_id":"0190a3a0-0000-7000-8000-000000000004","removed_by":"0190a3a0-0000-7000-8000-000000000003"},"cursor":"45"}"#,
        r#"{"type":"chat.member_updated","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_id":"0190a3a0-0000-7000-8000-000000000004","role":"admin"},"cursor":"46"}"#,
        r#"{"type":"user.updated","data":{"user_id":"0190a3a0-0000-7000-8000-000000000003","name":"Ada L.","avatar_media_id":null},"cursor":"53"}"#,
        r#"{"type":"call.ringing","data":{"call_id":"0190a3a0-0000-7000-8000-000000000005","chat_id":"0190a3a0-0000-7000-8000-000000000002","kind":"video","initiator_id":"0190a3a0-0000-7000-8000-000000000003","created_at":"2026-11-28T10:01:00+00:00"},"cursor":"47"}"#,
        r#"{"type":"call.updated","data":{"change":"left","user_id":"0190a3a0-0000-7000-8000-000000000004","reason":"hung_up","call_id":"0190a3a0-0000-7000-8000-000000000005","chat_id":"0190a3a0-0000-7000-8000-000000000002"},"cursor":"48"}"#,
        r#"{"type":"notification.created","data":{"id":"0190a3a0-0000-7000-8000-000000000006","kind":"missed_call","data":{"call_id":"0190a3a0-0000-7000-8000-000000000005","chat_id":"0190a3a0-0000-7000-8000-000000000002"},"created_at":"2026-11-28T10:02:00+00:00","read":false},"cursor":"49"}"#,
        r#"{"type":"typing","data":{"chat_id":"0190a3a0-0000-7000-8000-000000000002","user_id":"0190a3a0-0000-7000-8000-000000000003"},"cursor":null}"#,
        r#"{"type":"pong","data":null,"cursor":null}"#,
        r#"{"type":"auth.ok","data":{"expires_at":"2026-11-28T10:15:00+00:00"},"cursor":null}"#,
        r#"{"type":"error","data":{"code":"session_revoked","message":"this session has been signed out"},"cursor":null}"#,
        r#"{"type":"to_device","data":{"id":"0190a3a0-0000-7000-8000-000000000007","sender_id":"0190a3a0-0000-7000-8000-000000000003","sender_device_id":"0190a3a0-0000-7000-8000-000000000008","ciphertext":"{\"algorithm\":\"parley.olm.v1\",\"sender_key\":\"k\",\"type\":0,\"body\":\"b\"}","created_at":"2026-11-28T10:03:00+00:00"},"cursor":"50"}"#,
        r#"{"type":"device_list.changed","data":{"user_id":"0190a3a0-0000-7000-8000-000000000003"},"cursor":"51"}"#,
        r#"{"type":"one_time_keys.low","data":{"device_id":"0190a3a0-0000-7000-8000-000000000008","remaining":3},"cursor":"52"}"#,
    ];

    #[test]
    fn a_sample_of_every_frame_type_parses() {
        let mut seen = Vec::new();
        for sample in SAMPLES {
            let frame = ServerFrame::from_json(sample).unwrap_or_else(|e| panic!("{sample}: {e}"));
            assert!(!matches!(frame.event, ServerEvent::Unknown { .. }), "{sample}");
            let kind: Value = serde_json::from_str(sample).unwrap();
            seen.push(kind["type"].as_str().unwrap().to_owned());
            // Serialising gives the same JSON back (as values: key order aside).
            let again: Value = serde_json::to_value(&frame).unwrap();
            let original: Value = serde_json::from_str(sample).unwrap();
            assert_eq!(ServerFrame::deserialize(again).unwrap(), frame, "{sample}");
            assert_eq!(original["cursor"], serde_json::to_value(&frame).unwrap()["cursor"]);
        }
        assert_eq!(seen, ServerEvent::KNOWN_TYPES, "one sample per known frame type, in order");
    }

    #[test]
    fn frames_carry_their_data_and_cursor() {
        let frame = ServerFrame::from_json(SAMPLES[0]).unwrap();
        assert_eq!(frame.cursor.as_deref(), Some("41"));
        let ServerEvent::MessageCreated(message) = frame.event else { panic!("not a message: {frame:?}") };
        assert_eq!(message.seq, 7);
        assert_eq!(message.sender_device_id, None);
        let frame = ServerFrame::from_json(SAMPLES[14]).unwrap();
        let ServerEvent::ToDevice(message) = frame.event else { panic!("not to-device: {frame:?}") };
        assert!(message.ciphertext.starts_with(r#"{"algorithm":"parley.olm.v1""#));
        let frame = ServerFrame::from_json(r#"{"type":"pong","data":null,"cursor":null}"#).unwrap();
        assert_eq!(frame, ServerFrame { event: ServerEvent::Pong, cursor: None });
    }

    #[test]
    fn a_call_moved_to_another_sfu_node_is_read_as_such() {
        let moved = r#"{"type":"call.updated","data":{"change":"media_moved","call_id":"0190a3a0-0000-7000-8000-000000000005","chat_id":"0190a3a0-0000-7000-8000-000000000002"},"cursor":"54"}"#;
        let frame = ServerFrame::from_json(moved).expect("parses");
        assert!(matches!(frame.event, ServerEvent::CallUpdated(CallUpdated { change: CallChange::MediaMoved, .. })));
    }

    #[test]
    fn a_profile_change_tells_a_removed_picture_from_an_unchanged_one() {
        let ServerEvent::UserUpdated(removed) = ServerFrame::from_json(SAMPLES[6]).unwrap().event else {
            panic!("not user.updated")
        };
        assert_eq!(
            (removed.name.as_deref(), removed.status, removed.avatar_media_id),
            (Some("Ada L."), None, Some(None))
        );
        let status =
            r#"{"type":"user.updated","data":{"user_id":"0190a3a0-0000-7000-8000-000000000003","status":"away"}}"#;
        let ServerEvent::UserUpdated(unchanged) = ServerFrame::from_json(status).unwrap().event else {
            panic!("not user.updated")
        };
        assert_eq!((unchanged.status.as_deref(), unchanged.avatar_media_id), (Some("away"), None));
    }

    #[test]
    fn an_unknown_frame_type_is_kept_not_refused() {
        let frame = ServerFrame::from_json(r#"{"type":"future.thing","data":{"x":1},"cursor":"9"}"#).unwrap();
        assert_eq!(
            frame.event,
            ServerEvent::Unknown { kind: "future.thing".into(), data: serde_json::json!({"x": 1}) }
        );
        assert_eq!(frame.cursor.as_deref(), Some("9"));
    }

    #[test]
    fn a_known_frame_with_bad_data_is_an_error() {
        assert!(ServerFrame::from_json(r#"{"type":"chat.read","data":{"chat_id":"nope"},"cursor":"1"}"#).is_err());
    }

    #[test]
    fn client_frames_are_what_the_server_reads() {
        let chat_id = Uuid::parse_str("0190a3a0-0000-7000-8000-000000000002").unwrap();
        assert_eq!(ClientFrame::Ping.to_json(), r#"{"type":"ping"}"#);
        assert_eq!(
            ClientFrame::Typing { chat_id }.to_json(),
            r#"{"type":"typing","chat_id":"0190a3a0-0000-7000-8000-000000000002"}"#
        );
        assert_eq!(ClientFrame::Auth { token: "t".into() }.to_json(), r#"{"type":"auth","token":"t"}"#);
    }
}
