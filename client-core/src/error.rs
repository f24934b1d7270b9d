use uuid::Uuid;

use crate::DeviceAddress;

/// Everything that can go wrong in the client core. Inputs from the server or from other devices are never
/// trusted: every malformed or unauthenticated input ends here, never in a panic.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// An input could not be parsed (bad base64, bad key, bad JSON shape, non-canonical encoding).
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },

    /// An Ed25519 signature did not verify.
    #[error("bad signature on the {what} of device {device}")]
    BadSignature { what: &'static str, device: DeviceAddress },

    /// The trust store has no keys for this device: fetch them (`GET /keys/users/{id}`) and retry.
    #[error("devices without known keys: {0:?}")]
    UnknownDevices(Vec<DeviceAddress>),

    /// The device presented keys different from the ones first seen, and nobody accepted the change.
    #[error("the keys of device {0} changed and the change has not been accepted")]
    UnresolvedKeyChange(DeviceAddress),

    /// The `algorithm` field names something this core does not implement.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),

    /// A decrypted payload names a sender, recipient or chat other than the one it arrived with.
    #[error("payload does not match its envelope: {0}")]
    EnvelopeMismatch(&'static str),

    /// No Olm session with the device exists and no claimed one-time key was given for it.
    #[error("no Olm session with {0} and no one-time key claimed for it")]
    MissingOneTimeKey(DeviceAddress),

    /// An Olm session could not be created or used.
    #[error("Olm: {0}")]
    Olm(String),

    /// A Megolm message could not be decrypted with the session it names.
    #[error("Megolm: {0}")]
    Megolm(String),

    /// No inbound Megolm session with this id was received by Olm from the message's sender.
    #[error("no room key {session_id} from {sender} for chat {chat_id}")]
    MissingRoomKey { chat_id: Uuid, session_id: String, sender: DeviceAddress },

    /// `encrypt_message` was called without a current outbound session: call `prepare_send` first.
    #[error("chat {0} has no current outbound session: call prepare_send first")]
    NoOutboundSession(Uuid),

    /// The attachment's ciphertext does not hash to the value in its attachment info.
    #[error("attachment ciphertext does not match its SHA-256")]
    AttachmentHashMismatch,

    /// The attachment's length differs from its attachment info.
    #[error("attachment is {actual} bytes, its info says {expected}")]
    AttachmentSizeMismatch { expected: u64, actual: u64 },

    /// The AES-CTR keystream would repeat (more than 2^68 bytes); never reached by a real file.
    #[error("attachment too large for one AES-CTR keystream")]
    AttachmentTooLarge,

    /// Saved state could not be decrypted: wrong key, or the bytes were altered.
    #[error("saved state could not be decrypted (wrong key or corrupted)")]
    StateDecryption,

    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}

impl CoreError {
    pub(crate) fn malformed(what: &'static str, reason: impl ToString) -> Self {
        Self::Malformed { what, reason: reason.to_string() }
    }
}

/// The crate's result type.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
