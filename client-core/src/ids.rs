use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One device of one user: the unit that owns Olm keys and receives to-device messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeviceAddress {
    /// The user's id.
    pub user_id: Uuid,
    /// The device's id (the session id of the login that registered it).
    pub device_id: Uuid,
}

impl DeviceAddress {
    /// The address of `device_id` of `user_id`.
    pub const fn new(user_id: Uuid, device_id: Uuid) -> Self {
        Self { user_id, device_id }
    }
}

impl fmt::Display for DeviceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user_id, self.device_id)
    }
}
