//! The key directory for end-to-end encryption: devices and their signed identity keys,
//! one-time key claims, and to-device messages (room keys travel in them). The server stores
//! and hands out public keys and opaque ciphertext; it never holds a private key or plaintext.
//!
//! Who may see a user's devices (and claim their keys, or send them to-device messages): the
//! user themself and every user who currently shares a chat with them. Contacts are found by
//! searching users and starting a chat; the chat is what opens the key directory, so a stranger
//! learns nothing about anyone's devices.

pub mod queries;
pub mod routes;

use chrono::Utc;
use parley_domain::device::{DeviceCommand, DeviceError};
use parley_domain::to_device::ToDeviceError;
use parley_domain::EventMetadata;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

pub fn device_error(error: DeviceError) -> ApiError {
    let message = error.to_string();
    match error {
        DeviceError::NotFound | DeviceError::Removed => ApiError::NotFound,
        DeviceError::IdentityKeysChanged => ApiError::Conflict { code: "identity_keys_changed", message },
        DeviceError::OneTimeKeyIdReused(_) => ApiError::Conflict { code: "one_time_key_id_reused", message },
        DeviceError::MalformedIdentityKeys => ApiError::invalid("malformed_identity_keys", message),
        DeviceError::BadIdentitySignature => ApiError::invalid("bad_signature", message),
        DeviceError::MalformedOneTimeKey(_) => ApiError::invalid("malformed_one_time_key", message),
        DeviceError::BadOneTimeKeySignature(_) => ApiError::invalid("bad_signature", message),
        DeviceError::TooManyOneTimeKeys => ApiError::invalid("too_many_one_time_keys", message),
        DeviceError::InvalidDisplayName => ApiError::invalid("invalid_display_name", message),
        DeviceError::TooManyAcknowledged => ApiError::invalid("too_many_ids", message),
    }
}

pub fn to_device_error(error: ToDeviceError) -> ApiError {
    let message = error.to_string();
    match error {
        ToDeviceError::AlreadySent => ApiError::internal(anyhow::anyhow!("to-device batch id collision")),
        ToDeviceError::BadBatchSize => ApiError::invalid("invalid_batch_size", message),
        ToDeviceError::BadCiphertext => ApiError::invalid("invalid_ciphertext", message),
    }
}

/// Removes the device of a session that just ended (logout, a reused refresh token, the device's
/// removal), if it had published keys. The `keys` projection also removes it on the session's
/// end, so a failure here only delays nothing but the aggregate's own record.
pub async fn end_device(state: &AppState, session_id: Uuid, actor: Option<Uuid>) {
    let now = Utc::now();
    let metadata = EventMetadata::new(actor, now, crate::ops::request_id::current());
    let removed =
        state.devices.execute_retrying(&session_id.to_string(), DeviceCommand::Remove { at: now }, &metadata).await;
    match removed {
        Ok(committed) if !committed.events.is_empty() => {
            state.await_projection("keys", "Device", session_id, committed.version).await;
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%session_id, %error, "could not record the device's removal"),
    }
}
