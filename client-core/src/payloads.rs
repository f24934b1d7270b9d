//! Every JSON payload that travels inside or around Olm and Megolm, serde-typed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `algorithm` of an Olm to-device envelope.
pub const OLM_ALGORITHM: &str = "parley.olm.v1";
/// `algorithm` of a Megolm chat message and of a room key.
pub const MEGOLM_ALGORITHM: &str = "parley.megolm.v1";
/// `algorithm` of an encrypted attachment.
pub const ATTACHMENT_ALGORITHM: &str = "parley.aes-ctr-256.v1";

/// The to-device `ciphertext` string, parsed: an Olm message and the sender's Curve25519 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OlmEnvelope {
    /// Always [`OLM_ALGORITHM`].
    pub algorithm: String,
    /// The sender's Curve25519 identity key, unpadded base64.
    pub sender_key: String,
    /// 0 = pre-key message, 1 = normal message (vodozemac `OlmMessage::to_parts`).
    #[serde(rename = "type")]
    pub message_type: u8,
    /// The Olm message bytes, unpadded base64.
    pub body: String,
}

/// The plaintext inside an Olm message: who sent it to whom, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OlmPlaintext {
    /// Sending user.
    pub sender_user: Uuid,
    /// Sending device.
    pub sender_device: Uuid,
    /// The sending device's Ed25519 key, unpadded base64.
    pub sender_ed25519: String,
    /// Receiving user.
    pub recipient_user: Uuid,
    /// Receiving device.
    pub recipient_device: Uuid,
    /// The receiving device's Ed25519 key, unpadded base64.
    pub recipient_ed25519: String,
    /// `type` and `content`.
    #[serde(flatten)]
    pub payload: ToDevicePayload,
}

/// What a to-device message carries: `{"type": ..., "content": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "content")]
pub enum ToDevicePayload {
    /// A Megolm session key for one chat.
    #[serde(rename = "parley.room_key")]
    RoomKey(RoomKeyContent),
}

/// `content` of a `parley.room_key` to-device payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomKeyContent {
    /// Always [`MEGOLM_ALGORITHM`].
    pub algorithm: String,
    /// The chat the session encrypts.
    pub chat_id: Uuid,
    /// The Megolm session id (the session's Ed25519 public key, unpadded base64).
    pub session_id: String,
    /// vodozemac `SessionKey::to_base64()`.
    pub session_key: String,
}

/// The JSON that the chat message `ciphertext` (padded base64) decodes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MegolmEnvelope {
    /// The Megolm session id.
    pub session_id: String,
    /// vodozemac `MegolmMessage::to_base64()`.
    pub body: String,
}

/// The plaintext inside a Megolm message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MegolmPlaintext {
    /// The chat the message was written for; the receiver checks it.
    pub chat_id: Uuid,
    /// `type` and its fields.
    #[serde(flatten)]
    pub content: MessageContent,
}

/// A chat message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MessageContent {
    /// `{"type":"text","body":...}`
    #[serde(rename = "text")]
    Text {
        /// The text.
        body: String,
    },
    /// `{"type":"file","file":Attachment,"body":caption}`
    #[serde(rename = "file")]
    File {
        /// Where the encrypted file is and how to decrypt it.
        file: AttachmentInfo,
        /// Caption (may be empty).
        #[serde(default)]
        body: String,
    },
}

/// An encrypted attachment's location and keys, carried inside a Megolm message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    /// The uploaded ciphertext's media id.
    pub media_id: Uuid,
    /// The plaintext's media type (the upload itself is `application/octet-stream`).
    pub content_type: String,
    /// Plaintext size in bytes (equal to the ciphertext size: CTR adds nothing).
    pub size: u64,
    /// File name.
    pub name: String,
    /// AES-256 key, 32 bytes, unpadded base64.
    pub key: String,
    /// Initial counter block, 16 bytes (8 random, 8 zero), unpadded base64.
    pub iv: String,
    /// SHA-256 of the ciphertext, unpadded base64.
    pub sha256: String,
    /// Always [`ATTACHMENT_ALGORITHM`].
    pub algorithm: String,
}

/// One item of `POST /to-device` `messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingToDevice {
    /// Recipient user.
    pub user_id: Uuid,
    /// Recipient device.
    pub device_id: Uuid,
    /// The serialised [`OlmEnvelope`].
    pub ciphertext: String,
}

/// A to-device message as delivered by `GET /to-device` or the `to_device` realtime frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingToDevice {
    /// Queue id, for `POST /to-device/ack`.
    pub id: Uuid,
    /// The sending user (the server's word).
    pub sender_id: Uuid,
    /// The sending device (the server's word).
    pub sender_device_id: Uuid,
    /// The serialised [`OlmEnvelope`].
    pub ciphertext: String,
}

/// An encrypted chat message, ready for the message API's `algorithm` and `ciphertext` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedMessage {
    /// [`MEGOLM_ALGORITHM`].
    pub algorithm: String,
    /// Padded base64 of the [`MegolmEnvelope`] JSON.
    pub ciphertext: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn olm_plaintext_has_the_contract_shape() {
        let plaintext = OlmPlaintext {
            sender_user: Uuid::from_u128(1),
            sender_device: Uuid::from_u128(2),
            sender_ed25519: "E".to_owned(),
            recipient_user: Uuid::from_u128(3),
            recipient_device: Uuid::from_u128(4),
            recipient_ed25519: "E2".to_owned(),
            payload: ToDevicePayload::RoomKey(RoomKeyContent {
                algorithm: MEGOLM_ALGORITHM.to_owned(),
                chat_id: Uuid::from_u128(5),
                session_id: "S".to_owned(),
                session_key: "K".to_owned(),
            }),
        };
        let json: serde_json::Value = serde_json::to_value(&plaintext).expect("serialise");
        assert_eq!(json["type"], "parley.room_key");
        assert_eq!(json["sender_device"], "00000000-0000-0000-0000-000000000002");
        assert_eq!(json["content"]["algorithm"], "parley.megolm.v1");
        assert_eq!(json["content"]["chat_id"], "00000000-0000-0000-0000-000000000005");
        assert_eq!(json.as_object().map(|object| object.len()), Some(8));
        let back: OlmPlaintext = serde_json::from_value(json).expect("parse");
        assert_eq!(back, plaintext);
    }

    #[test]
    fn megolm_plaintext_is_flat() {
        let text = MegolmPlaintext { chat_id: Uuid::nil(), content: MessageContent::Text { body: "hi".to_owned() } };
        assert_eq!(
            serde_json::to_string(&text).expect("serialise"),
            "{\"chat_id\":\"00000000-0000-0000-0000-000000000000\",\"type\":\"text\",\"body\":\"hi\"}"
        );
        let file: MegolmPlaintext = serde_json::from_str(
            "{\"chat_id\":\"00000000-0000-0000-0000-000000000000\",\"type\":\"file\",\"file\":{\
             \"media_id\":\"00000000-0000-0000-0000-000000000009\",\"content_type\":\"image/png\",\"size\":3,\
             \"name\":\"a.png\",\"key\":\"k\",\"iv\":\"i\",\"sha256\":\"h\",\"algorithm\":\"parley.aes-ctr-256.v1\"}}",
        )
        .expect("a file message without a caption parses");
        assert!(matches!(file.content, MessageContent::File { ref body, .. } if body.is_empty()));
    }

    #[test]
    fn olm_envelope_uses_type_for_the_message_type() {
        let envelope = OlmEnvelope {
            algorithm: OLM_ALGORITHM.to_owned(),
            sender_key: "C".to_owned(),
            message_type: 0,
            body: "B".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&envelope).expect("serialise"),
            "{\"algorithm\":\"parley.olm.v1\",\"sender_key\":\"C\",\"type\":0,\"body\":\"B\"}"
        );
    }
}
