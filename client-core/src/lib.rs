//! Sans-IO end-to-end encryption core for Parley clients.
//!
//! No network, no files, no clock: the caller feeds in what the server answered and the current time, and
//! sends what comes out. Everything a CLI or a wasm binding needs to drive it is here:
//! - [`OwnDevice`]: this device's Olm account, key uploads, the trust store, Olm to-device encryption,
//!   Megolm chat encryption with rotation, and encrypted save/restore of the whole state;
//! - [`keys`]: the `/keys/...` wire types and signature checks;
//! - [`payloads`]: every JSON payload inside and around Olm and Megolm;
//! - [`attachment`]: streaming AES-256-CTR + SHA-256 file encryption;
//! - [`safety`]: safety numbers.
//!
//! `docs/e2ee.md` is the protocol description for other implementations.

mod error;
mod ids;
mod parallel;

pub mod attachment;
pub mod canonical;
mod device;
mod encoding;
pub mod keys;
pub mod payloads;
pub mod safety;
mod state;
pub mod trust;

pub use attachment::{AttachmentDecryptor, AttachmentEncryptor, AttachmentVerifier, EncryptedAttachmentKeys};
pub use device::{
    DecryptedMessage, OwnDevice, RoomKeyShare, SendPreparation, ToDeviceEvent, MEGOLM_ROTATION_MESSAGES,
    MEGOLM_ROTATION_SECONDS, ONE_TIME_KEY_TARGET, ONE_TIME_KEY_THRESHOLD,
};
pub use error::{CoreError, Result};
pub use ids::DeviceAddress;
pub use keys::{ClaimedOneTimeKey, DeviceKeys, DeviceKeysUpload, PublishedDevice, UserDevices};
pub use payloads::{AttachmentInfo, EncryptedMessage, IncomingToDevice, MessageContent, OutgoingToDevice, Thumbnail};
pub use safety::SafetyNumber;
pub use state::STATE_MAGIC;
pub use trust::{DeviceListReport, KeyChange, TrustStore};
/// The vodozemac version this core is built and tested against (pinned exactly).
pub use vodozemac;
