//! Trust on first use: the first verified keys seen for a device are remembered; later listings are
//! compared with them, and a difference is reported, never adopted without `accept_key_change`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{verify_device_keys, DeviceKeys, UserDevices};
use crate::{CoreError, DeviceAddress, Result};

/// What the trust store knows about one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDevice {
    /// The keys first seen (or last explicitly accepted) for this device.
    pub keys: DeviceKeys,
    /// The display name of the last listing.
    pub display_name: Option<String>,
    /// Whether the server's last listing of the user contained the device.
    pub listed: bool,
    /// Different keys the server presented for this device, waiting for the user's decision.
    pub pending_key_change: Option<DeviceKeys>,
}

/// A known device presented keys other than the trusted ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChange {
    /// The device.
    pub device: DeviceAddress,
    /// The keys remembered for it.
    pub trusted: DeviceKeys,
    /// The keys the server now presents.
    pub presented: DeviceKeys,
}

/// A listed device whose keys could not be accepted (bad signature or malformed keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedDevice {
    /// The device.
    pub device: DeviceAddress,
    /// Why it was refused.
    pub reason: String,
}

/// The outcome of comparing one user's device listing with the trust store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceListReport {
    /// Devices seen for the first time (or listed again after having disappeared), now trusted.
    pub new_devices: Vec<DeviceKeys>,
    /// Previously listed devices absent from this listing.
    pub removed_devices: Vec<DeviceAddress>,
    /// Known devices whose keys differ: a warning to show, never accepted silently.
    pub key_changes: Vec<KeyChange>,
    /// Listed devices refused because their keys did not verify.
    pub rejected_devices: Vec<RejectedDevice>,
}

impl DeviceListReport {
    /// Whether the set of listed devices changed (which makes chats rotate their Megolm sessions).
    pub fn device_set_changed(&self) -> bool {
        !self.new_devices.is_empty() || !self.removed_devices.is_empty()
    }
}

/// Remembered keys of every device this device has seen, its own included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SavedTrustStore", into = "SavedTrustStore")]
pub struct TrustStore {
    devices: BTreeMap<DeviceAddress, KnownDevice>,
}

/// JSON maps need string keys, so the store is saved as a list (each entry carries its own address).
#[derive(Serialize, Deserialize)]
struct SavedTrustStore {
    devices: Vec<KnownDevice>,
}

impl From<SavedTrustStore> for TrustStore {
    fn from(saved: SavedTrustStore) -> Self {
        Self { devices: saved.devices.into_iter().map(|known| (known.keys.address(), known)).collect() }
    }
}

impl From<TrustStore> for SavedTrustStore {
    fn from(store: TrustStore) -> Self {
        Self { devices: store.devices.into_values().collect() }
    }
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers keys this device vouches for itself (its own account's keys).
    pub(crate) fn insert_own(&mut self, keys: DeviceKeys) {
        self.devices
            .insert(keys.address(), KnownDevice { keys, display_name: None, listed: true, pending_key_change: None });
    }

    /// Compares the server's full listing of one user's devices with what is remembered.
    pub fn observe_user_devices(&mut self, listing: &UserDevices) -> DeviceListReport {
        let mut report = DeviceListReport::default();
        let mut listed_now = BTreeSet::new();
        for published in &listing.devices {
            let address = DeviceAddress::new(listing.user_id, published.device_id);
            listed_now.insert(address);
            let presented = match verify_device_keys(listing.user_id, published) {
                Ok(keys) => keys,
                Err(error) => {
                    report.rejected_devices.push(RejectedDevice { device: address, reason: error.to_string() });
                    continue;
                }
            };
            match self.devices.get_mut(&address) {
                None => {
                    self.devices.insert(
                        address,
                        KnownDevice {
                            keys: presented,
                            display_name: published.display_name.clone(),
                            listed: true,
                            pending_key_change: None,
                        },
                    );
                    report.new_devices.push(presented);
                }
                Some(known) => {
                    known.display_name.clone_from(&published.display_name);
                    if known.keys == presented {
                        if !known.listed {
                            report.new_devices.push(presented);
                        }
                        known.listed = true;
                        known.pending_key_change = None;
                    } else {
                        known.listed = true;
                        known.pending_key_change = Some(presented);
                        report.key_changes.push(KeyChange { device: address, trusted: known.keys, presented });
                    }
                }
            }
        }
        for (address, known) in self.devices.range_mut(user_range(listing.user_id)) {
            if known.listed && !listed_now.contains(address) {
                known.listed = false;
                report.removed_devices.push(*address);
            }
        }
        report
    }

    /// Adopts the keys a device changed to, after the user compared them out of band.
    pub fn accept_key_change(&mut self, device: DeviceAddress) -> Result<DeviceKeys> {
        let known = self.devices.get_mut(&device).ok_or_else(|| CoreError::UnknownDevices(vec![device]))?;
        let presented = known.pending_key_change.take().ok_or(CoreError::EnvelopeMismatch("no pending key change"))?;
        known.keys = presented;
        Ok(presented)
    }

    /// What is known about one device.
    pub fn device(&self, device: DeviceAddress) -> Option<&KnownDevice> {
        self.devices.get(&device)
    }

    /// The trusted keys of a device that has no unresolved key change.
    pub fn trusted_keys(&self, device: DeviceAddress) -> Result<DeviceKeys> {
        let known = self.devices.get(&device).ok_or_else(|| CoreError::UnknownDevices(vec![device]))?;
        if known.pending_key_change.is_some() {
            return Err(CoreError::UnresolvedKeyChange(device));
        }
        Ok(known.keys)
    }

    /// The user's devices the server currently lists, with their trusted keys.
    pub fn listed_devices(&self, user_id: Uuid) -> Vec<DeviceKeys> {
        self.devices.range(user_range(user_id)).filter(|(_, known)| known.listed).map(|(_, known)| known.keys).collect()
    }
}

fn user_range(user_id: Uuid) -> std::ops::RangeInclusive<DeviceAddress> {
    DeviceAddress::new(user_id, Uuid::nil())..=DeviceAddress::new(user_id, Uuid::max())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{PublishedDevice, SignedIdentityKeys};

    /// The input the `e2ee_keys` fuzz target found, reduced: a server listing a device whose Ed25519 key is
    /// 44 characters of base64 without padding (33 bytes) made the client panic (in vodozemac's key parser).
    #[test]
    fn a_listed_device_with_a_33_byte_ed25519_key_is_rejected_without_a_panic() {
        let listing = UserDevices {
            user_id: Uuid::from_u128(0x5E),
            devices: vec![PublishedDevice {
                device_id: Uuid::from_u128(0x51),
                display_name: Some("e".into()),
                identity_keys: SignedIdentityKeys {
                    curve25519: "xAC+dO2d1/R3FjDR7o34H4fmVpN7j4avpjt0Uk5hr3E".into(),
                    ed25519: "Ow9lo4gEFLTkdZGForbdqmM829H2fE9p2A/6Nju4/xlM".into(),
                    signature: "Fgu3Fw".into(),
                },
            }],
        };
        let report = TrustStore::new().observe_user_devices(&listing);
        assert!(report.new_devices.is_empty());
        assert_eq!(report.rejected_devices.len(), 1, "{report:?}");
        assert_eq!(report.rejected_devices[0].device, DeviceAddress::new(Uuid::from_u128(0x5E), Uuid::from_u128(0x51)));
    }
}
