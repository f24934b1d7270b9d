//! Key directory wire types (`/keys/...` bodies) and the signature checks on them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey};

use crate::canonical::{device_keys_signing_input, one_time_key_signing_input};
use crate::encoding::{parse_curve25519, parse_ed25519, parse_signature, serde_curve25519, serde_ed25519};
use crate::{CoreError, DeviceAddress, Result};

/// A device's identity keys with its self-signature, as uploaded and as listed by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIdentityKeys {
    /// Curve25519 identity key, unpadded base64.
    pub curve25519: String,
    /// Ed25519 signing key, unpadded base64.
    pub ed25519: String,
    /// Ed25519 signature over the device-keys canonical JSON, unpadded base64.
    pub signature: String,
}

/// One signed one-time key (or the fallback key) in an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOneTimeKey {
    /// vodozemac `KeyId::to_base64()`.
    pub key_id: String,
    /// The public Curve25519 key, unpadded base64.
    pub curve25519: String,
    /// Ed25519 signature over the one-time-key canonical JSON.
    pub signature: String,
}

/// The body of `PUT /keys/devices/{device_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKeysUpload {
    /// Optional human name of the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The device's signed identity keys (the same on every upload).
    pub identity_keys: SignedIdentityKeys,
    /// New one-time keys not yet published.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_time_keys: Vec<SignedOneTimeKey>,
    /// A new fallback key, when one was generated and not yet published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_key: Option<SignedOneTimeKey>,
}

/// One device as listed by `GET /keys/users/{user_id}` and `POST /keys/query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedDevice {
    /// The device id.
    pub device_id: Uuid,
    /// Its display name, if any.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Its signed identity keys.
    pub identity_keys: SignedIdentityKeys,
}

/// One user's device listing: the answer of `GET /keys/users/{user_id}`, an item of `POST /keys/query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDevices {
    /// The user.
    pub user_id: Uuid,
    /// All of the user's devices that have published keys.
    pub devices: Vec<PublishedDevice>,
}

/// One item of the `POST /keys/claim` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedOneTimeKey {
    /// Owner of the key.
    pub user_id: Uuid,
    /// Device that published the key.
    pub device_id: Uuid,
    /// The key's id.
    pub key_id: String,
    /// The public Curve25519 key, unpadded base64.
    pub curve25519: String,
    /// The device's signature over the one-time-key canonical JSON.
    pub signature: String,
    /// Whether this is the (reusable) fallback key.
    pub fallback: bool,
    /// One-time keys that device has left after this claim.
    #[serde(default)]
    pub remaining: Option<u64>,
}

impl ClaimedOneTimeKey {
    /// The device this key belongs to.
    pub const fn device(&self) -> DeviceAddress {
        DeviceAddress::new(self.user_id, self.device_id)
    }
}

/// A device's identity keys after their self-signature verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKeys {
    /// Owner.
    pub user_id: Uuid,
    /// Device.
    pub device_id: Uuid,
    /// Curve25519 identity key (Olm).
    #[serde(with = "serde_curve25519")]
    pub curve25519: Curve25519PublicKey,
    /// Ed25519 signing key.
    #[serde(with = "serde_ed25519")]
    pub ed25519: Ed25519PublicKey,
}

impl DeviceKeys {
    /// The device these keys belong to.
    pub const fn address(&self) -> DeviceAddress {
        DeviceAddress::new(self.user_id, self.device_id)
    }
}

/// Checks that `device`'s identity keys are signed by its own Ed25519 key, bound to `user_id` and its id.
pub fn verify_device_keys(user_id: Uuid, device: &PublishedDevice) -> Result<DeviceKeys> {
    let keys = &device.identity_keys;
    let curve25519 = parse_curve25519("curve25519 identity key", &keys.curve25519)?;
    let ed25519 = parse_ed25519("ed25519 identity key", &keys.ed25519)?;
    let signature = parse_signature("identity keys signature", &keys.signature)?;
    let signed = device_keys_signing_input(user_id, device.device_id, &keys.curve25519, &keys.ed25519)?;
    ed25519.verify(signed.as_bytes(), &signature).map_err(|_| CoreError::BadSignature {
        what: "identity keys",
        device: DeviceAddress::new(user_id, device.device_id),
    })?;
    Ok(DeviceKeys { user_id, device_id: device.device_id, curve25519, ed25519 })
}

/// Checks that a claimed one-time key was signed by the device it is claimed for; returns the key to use.
pub fn verify_claimed_key(device: &DeviceKeys, claimed: &ClaimedOneTimeKey) -> Result<Curve25519PublicKey> {
    if claimed.device() != device.address() {
        return Err(CoreError::EnvelopeMismatch("claimed key belongs to another device"));
    }
    let key = parse_curve25519("claimed one-time key", &claimed.curve25519)?;
    let signature = parse_signature("one-time key signature", &claimed.signature)?;
    let signed = one_time_key_signing_input(
        device.user_id,
        device.device_id,
        &claimed.key_id,
        &claimed.curve25519,
        claimed.fallback,
    )?;
    device
        .ed25519
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| CoreError::BadSignature { what: "one-time key", device: device.address() })?;
    Ok(key)
}
