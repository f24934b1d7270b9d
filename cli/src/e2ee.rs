//! The end-to-end encryption flows, on the client core: publishing keys, keeping the trust store current,
//! receiving room keys, sending and reading encrypted messages.

use std::collections::BTreeSet;

use parley_client_core::{
    AttachmentInfo, CoreError, DeviceAddress, DeviceListReport, IncomingToDevice, MessageContent, OwnDevice,
    ToDeviceEvent, UserDevices,
};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::Message;
use crate::error::{CliError, Result};
use crate::session::{now_unix_secs, short, Context, Signed};

/// `GET /to-device` hands out at most this many per call.
const TO_DEVICE_PAGE: usize = 1000;

/// Prints a warning on stderr (never on stdout, which scripts read).
pub(crate) fn warn(text: &str) {
    eprintln!("parley: warning: {text}");
}

/// Publishes this device's keys (identity, unpublished one-time keys, fallback key).
pub(crate) async fn publish_keys(signed: &mut Signed, display_name: Option<&str>) -> Result<()> {
    let upload = signed.device.keys_upload(display_name)?;
    let published = signed.api.publish_keys(signed.session.device_id, &upload).await?;
    signed.device.mark_published();
    signed.session.keys_published = true;
    replenish(signed, published.one_time_key_count, published.has_fallback_key).await
}

/// Tops the server's one-time keys up when it has few left.
pub(crate) async fn replenish(signed: &mut Signed, remaining: u64, has_fallback_key: bool) -> Result<()> {
    if let Some(upload) = signed.device.replenish_one_time_keys(remaining, has_fallback_key)? {
        signed.api.publish_keys(signed.session.device_id, &upload).await?;
        signed.device.mark_published();
    }
    Ok(())
}

/// The device listings of `users`. `POST /keys/query` refuses the whole batch when one user is not
/// visible; then each user is asked alone and invisible ones are left out.
async fn fetch_devices(signed: &Signed, users: &[Uuid]) -> Result<Vec<UserDevices>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    match signed.api.query_keys(users).await {
        Ok(listings) => Ok(listings),
        Err(CliError::Api { status: 404, .. }) => {
            let mut listings = Vec::new();
            for user in users {
                match signed.api.user_devices(*user).await {
                    Ok(listing) => listings.push(listing),
                    Err(CliError::Api { status: 404, .. }) => {}
                    Err(error) => return Err(error),
                }
            }
            Ok(listings)
        }
        Err(error) => Err(error),
    }
}

/// Re-reads the device lists of `users` into the trust store. New devices are trusted on first sight;
/// changed keys are reported loudly on stderr and held back until accepted (`parley verify USER --accept`).
pub(crate) async fn sync_devices(signed: &mut Signed, users: &[Uuid]) -> Result<Vec<(Uuid, DeviceListReport)>> {
    let listings = fetch_devices(signed, users).await?;
    let mut reports = Vec::new();
    for listing in listings {
        let report = signed.device.observe_user_devices(&listing);
        warn_about(signed, &report);
        reports.push((listing.user_id, report));
    }
    Ok(reports)
}

fn warn_about(signed: &Signed, report: &DeviceListReport) {
    for change in &report.key_changes {
        let user = change.device.user_id;
        eprintln!(
            "parley: WARNING: the identity keys of {}'s device {} CHANGED\n  trusted ed25519 {}\n  presented       {}\n  \
             Nothing is encrypted to that device and nothing from it is accepted until you compare safety numbers \
             with `parley verify {user}` and accept the change with `parley verify {user} --accept`.",
            signed.name_of(user),
            change.device.device_id,
            change.trusted.ed25519.to_base64(),
            change.presented.ed25519.to_base64(),
        );
    }
    for rejected in &report.rejected_devices {
        warn(&format!(
            "device {} of {} was refused: {}",
            rejected.device.device_id,
            signed.name_of(rejected.device.user_id),
            rejected.reason
        ));
    }
}

/// A room key that arrived.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RoomKeyReceived {
    pub chat_id: Uuid,
    pub session_id: String,
    pub sender_id: Uuid,
    pub sender_device_id: Uuid,
}

/// Decrypts one to-device message. `Ok(Some(..))` when it should be acknowledged, `Ok(None)` when it must
/// stay queued (its sender's key change is not accepted yet).
pub(crate) async fn receive_to_device(
    signed: &mut Signed,
    message: &IncomingToDevice,
) -> Result<Option<Option<RoomKeyReceived>>> {
    let sender = DeviceAddress::new(message.sender_id, message.sender_device_id);
    if signed.device.trust_store().device(sender).is_none() {
        sync_devices(signed, &[message.sender_id]).await?;
    }
    match signed.device.decrypt_to_device(message) {
        Ok(ToDeviceEvent::RoomKey { chat_id, session_id, sender }) => Ok(Some(Some(RoomKeyReceived {
            chat_id,
            session_id,
            sender_id: sender.user_id,
            sender_device_id: sender.device_id,
        }))),
        Err(CoreError::UnresolvedKeyChange(device)) => {
            warn(&format!(
                "keys from {}'s device {} are kept unread until its key change is accepted",
                signed.name_of(device.user_id),
                device.device_id
            ));
            Ok(None)
        }
        Err(error) => {
            warn(&format!(
                "dropped an undecryptable to-device message from {}'s device {}: {error}",
                signed.name_of(message.sender_id),
                short(message.sender_device_id)
            ));
            Ok(Some(None))
        }
    }
}

/// What [`drain_to_device`] took.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// Room keys stored.
    pub keys: Vec<RoomKeyReceived>,
    /// The to-device messages handled and acknowledged (their realtime frames may still come).
    pub ids: Vec<Uuid>,
}

/// Takes every waiting to-device message: decrypts (storing room keys), saves, then acknowledges.
pub(crate) async fn drain_to_device(ctx: &mut Context, signed: &mut Signed) -> Result<Drained> {
    let mut drained = Drained::default();
    loop {
        let pending = signed.api.pending_to_device().await?;
        if pending.is_empty() {
            break;
        }
        let mut ack = Vec::new();
        for message in &pending {
            if let Some(event) = receive_to_device(signed, message).await? {
                ack.push(message.id);
                drained.keys.extend(event);
            }
        }
        // Keys are on disk before the server forgets the messages that carried them.
        ctx.save(signed)?;
        signed.api.ack_to_device(&ack).await?;
        let done = pending.len() < TO_DEVICE_PAGE || ack.is_empty();
        drained.ids.extend(ack);
        if done {
            break;
        }
    }
    Ok(drained)
}

/// Encrypts `content` for every trusted device of every member of `chat_id` and sends it. Shares a new
/// room key first whenever the recipient devices changed (or after 100 messages or a week).
pub(crate) async fn send_content(
    ctx: &mut Context,
    signed: &mut Signed,
    chat_id: Uuid,
    content: &MessageContent,
    media_ids: &[Uuid],
) -> Result<Message> {
    drain_to_device(ctx, signed).await?;
    let chat = signed.api.get_chat(chat_id).await?;
    let mut members: Vec<Uuid> = chat.members.iter().map(|member| member.user_id).collect();
    if !members.contains(&signed.user_id()) {
        members.push(signed.user_id());
    }
    sync_devices(signed, &members).await?;
    let recipients: BTreeSet<DeviceAddress> = members
        .iter()
        .flat_map(|user| signed.device.trust_store().listed_devices(*user))
        .map(|keys| keys.address())
        .collect();

    let now = now_unix_secs();
    let preparation = signed.device.prepare_send(chat_id, &recipients, now)?;
    for device in &preparation.withheld {
        warn(&format!(
            "not encrypting to {}'s device {}: its keys changed (see `parley verify {}`)",
            signed.name_of(device.user_id),
            device.device_id,
            device.user_id
        ));
    }
    let claimed = if preparation.needs_one_time_key.is_empty() {
        Vec::new()
    } else {
        signed.api.claim_keys(&preparation.needs_one_time_key).await?
    };
    let share = signed.device.share_room_key(chat_id, &claimed)?;
    for device in &share.devices_without_one_time_key {
        warn(&format!(
            "{}'s device {} has no one-time keys left; it cannot read this message",
            signed.name_of(device.user_id),
            short(device.device_id)
        ));
    }
    for (device, reason) in &share.rejected_one_time_keys {
        warn(&format!(
            "refused a one-time key of {}'s device {}: {reason}",
            signed.name_of(device.user_id),
            short(device.device_id)
        ));
    }
    for device in &share.withheld {
        warn(&format!(
            "not sharing keys with {}'s device {}: its keys changed",
            signed.name_of(device.user_id),
            short(device.device_id)
        ));
    }
    if !share.messages.is_empty() {
        signed.api.send_to_device(&share.messages).await?;
    }
    let encrypted = signed.device.encrypt_message(chat_id, content, now)?;
    // Saved before sending: a message index is never used twice, even if this process dies now.
    ctx.save(signed)?;
    let client_msg_id = Uuid::new_v4().to_string();
    signed.api.send_message(chat_id, &client_msg_id, &encrypted.algorithm, &encrypted.ciphertext, media_ids).await
}

/// What a message says, as far as this device can tell.
#[derive(Debug, Clone)]
pub(crate) enum Shown {
    Text(String),
    File { file: AttachmentInfo, caption: String },
    Deleted,
    Undecryptable(String),
}

/// Decrypts a message for display.
pub(crate) fn decrypt(device: &mut OwnDevice, message: &Message) -> Shown {
    if message.deleted {
        return Shown::Deleted;
    }
    let Some(ciphertext) = &message.ciphertext else { return Shown::Deleted };
    let Some(sender_device) = message.sender_device_id else {
        return Shown::Undecryptable("sent before devices existed (no sender device)".into());
    };
    let sender = DeviceAddress::new(message.sender_id, sender_device);
    match device.decrypt_message(message.chat_id, sender, &message.algorithm, ciphertext) {
        Ok(decrypted) => match decrypted.content {
            MessageContent::Text { body } => Shown::Text(body),
            MessageContent::File { file, body, .. } => Shown::File { file, caption: body },
        },
        Err(CoreError::MissingRoomKey { .. }) => {
            Shown::Undecryptable("no key for this message (it was not shared with this device)".into())
        }
        Err(error) => Shown::Undecryptable(error.to_string()),
    }
}

/// Whether a message failed for lack of a room key (worth draining to-device messages and retrying).
pub(crate) fn lacks_key(shown: &Shown) -> bool {
    matches!(shown, Shown::Undecryptable(reason) if reason.starts_with("no key"))
}

/// A message and what it says, for `--json` (the server's fields, plus `sender_name`, `type` and content;
/// never the attachment's key).
pub(crate) fn message_json(signed: &Signed, message: &Message, shown: &Shown) -> Value {
    let mut value = serde_json::to_value(message).unwrap_or(Value::Null);
    let extra = match shown {
        Shown::Text(body) => json!({"type": "text", "body": body}),
        Shown::File { file, caption } => json!({
            "type": "file",
            "body": caption,
            "file": {"media_id": file.media_id, "name": file.name, "size": file.size, "content_type": file.content_type},
        }),
        Shown::Deleted => json!({"type": "deleted"}),
        Shown::Undecryptable(reason) => json!({"type": "undecryptable", "error": reason}),
    };
    if let (Value::Object(object), Value::Object(extra)) = (&mut value, extra) {
        object.extend(extra);
        object.insert("sender_name".into(), Value::from(signed.name_of(message.sender_id)));
    }
    value
}

/// One line for people.
pub(crate) fn message_line(signed: &Signed, message: &Message, shown: &Shown) -> String {
    let when = message.created_at.get(..16).unwrap_or(&message.created_at).replace('T', " ");
    let device = message.sender_device_id.map(short).unwrap_or_else(|| "?".into());
    let who = format!("{} ({device})", signed.name_of(message.sender_id));
    let what = match shown {
        Shown::Text(body) => body.clone(),
        Shown::File { file, caption } => {
            let caption = if caption.is_empty() { String::new() } else { format!(" — {caption}") };
            format!(
                "[file {} · {} bytes · {}]{caption}  (parley download {} {})",
                file.name, file.size, file.content_type, message.chat_id, message.seq
            )
        }
        Shown::Deleted => "[deleted]".into(),
        Shown::Undecryptable(reason) => format!("[cannot decrypt: {reason}]"),
    };
    format!("#{:<4} {when}  {who}: {what}", message.seq)
}

/// Learns the display names of `users` the cache does not have.
pub(crate) async fn learn_names(signed: &mut Signed, users: impl IntoIterator<Item = Uuid>) {
    let missing: BTreeSet<Uuid> = users.into_iter().filter(|user| !signed.session.names.contains_key(user)).collect();
    for user in missing {
        if let Ok(profile) = signed.api.get_user(user).await {
            signed.session.names.insert(user, profile.name);
        }
    }
}
