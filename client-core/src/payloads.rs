//! Every JSON payload that travels inside or around Olm and Megolm, serde-typed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::encoding::b64_padded_decode;

/// `algorithm` of an Olm to-device envelope.
pub const OLM_ALGORITHM: &str = "parley.olm.v1";
/// `algorithm` of a Megolm chat message and of a room key.
pub const MEGOLM_ALGORITHM: &str = "parley.megolm.v1";
/// `algorithm` of an encrypted attachment.
pub const ATTACHMENT_ALGORITHM: &str = "parley.aes-ctr-256.v1";

/// A thumbnail travels inside its message (whose ciphertext the api caps at 64 KiB): at most this
/// many bytes of image, ...
pub const THUMBNAIL_MAX_BYTES: usize = 16 * 1024;
/// ... at most this many pixels on either side, ...
pub const THUMBNAIL_MAX_SIDE: u32 = 640;
/// ... in one of these raster formats (nothing a browser would run, as it might an SVG).
pub const THUMBNAIL_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

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
        /// A small preview (a photo scaled down, a video's first frame), shown before the file is
        /// downloaded. Absent in messages from clients that make none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thumbnail: Option<Box<Thumbnail>>,
    },
}

impl MessageContent {
    /// The content without what a receiver must not use: a thumbnail that is not a small raster
    /// image within [`THUMBNAIL_MAX_BYTES`] and [`THUMBNAIL_MAX_SIDE`] (the message itself stays).
    pub fn without_invalid_parts(mut self) -> Self {
        if let MessageContent::File { thumbnail, .. } = &mut self {
            if thumbnail.as_ref().is_some_and(|preview| !preview.is_valid()) {
                *thumbnail = None;
            }
        }
        self
    }
}

/// A file message's preview image, carried inside the (encrypted) message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// One of [`THUMBNAIL_TYPES`].
    pub content_type: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// The image bytes, padded base64.
    pub data: String,
}

impl Thumbnail {
    /// Whether it is a raster image of an allowed type, size and dimensions.
    pub fn is_valid(&self) -> bool {
        let sides = 1..=THUMBNAIL_MAX_SIDE;
        THUMBNAIL_TYPES.contains(&self.content_type.as_str())
            && sides.contains(&self.width)
            && sides.contains(&self.height)
            && self.data.len() <= THUMBNAIL_MAX_BYTES.div_ceil(3) * 4
            && b64_padded_decode("thumbnail", &self.data).is_ok_and(|bytes| bytes.len() <= THUMBNAIL_MAX_BYTES)
    }
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
        assert!(matches!(file.content, MessageContent::File { ref body, ref thumbnail, .. }
            if body.is_empty() && thumbnail.is_none()));
    }

    fn file_with(thumbnail: Thumbnail) -> MessageContent {
        let file = AttachmentInfo {
            media_id: Uuid::nil(),
            content_type: "video/webm".to_owned(),
            size: 3,
            name: "a.webm".to_owned(),
            key: "k".to_owned(),
            iv: "i".to_owned(),
            sha256: "h".to_owned(),
            algorithm: ATTACHMENT_ALGORITHM.to_owned(),
        };
        MessageContent::File { file, body: String::new(), thumbnail: Some(Box::new(thumbnail)) }
    }

    fn thumbnail_of(content: &MessageContent) -> Option<&Thumbnail> {
        match content {
            MessageContent::File { thumbnail, .. } => thumbnail.as_deref(),
            MessageContent::Text { .. } => None,
        }
    }

    #[test]
    fn a_thumbnail_is_kept_only_when_it_is_a_small_raster_image() {
        let good = Thumbnail {
            content_type: "image/jpeg".to_owned(),
            width: 320,
            height: 180,
            data: crate::encoding::b64_padded_encode([0xFF, 0xD8, 0xFF]),
        };
        let kept = file_with(good.clone()).without_invalid_parts();
        assert_eq!(thumbnail_of(&kept), Some(&good));
        // It survives a round trip through JSON, and old messages without one still parse.
        let json = serde_json::to_string(&kept).expect("serialise");
        assert_eq!(serde_json::from_str::<MessageContent>(&json).expect("parse"), kept);

        let too_big = crate::encoding::b64_padded_encode(vec![0u8; THUMBNAIL_MAX_BYTES + 1]);
        let bad = [
            Thumbnail { content_type: "image/svg+xml".to_owned(), ..good.clone() },
            Thumbnail { content_type: "text/html".to_owned(), ..good.clone() },
            Thumbnail { width: 0, ..good.clone() },
            Thumbnail { height: THUMBNAIL_MAX_SIDE + 1, ..good.clone() },
            Thumbnail { data: "not base64!".to_owned(), ..good.clone() },
            Thumbnail { data: too_big, ..good.clone() },
        ];
        for thumbnail in bad {
            let content = file_with(thumbnail.clone()).without_invalid_parts();
            assert_eq!(thumbnail_of(&content), None, "{thumbnail:?}");
            assert!(matches!(content, MessageContent::File { .. }), "the message itself stays");
        }
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
