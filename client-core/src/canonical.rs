//! Canonical JSON: the exact bytes that device-key and one-time-key signatures cover.
//!
//! The object is serialised with its keys in byte order, without whitespace, with serde_json's escaping
//! (only `"`, `\` and control characters are escaped; `/` and non-ASCII are written as they are). Only
//! strings and booleans appear. A `BTreeMap` is serialised here rather than a `serde_json::Map`, because
//! the map's order depends on serde_json's `preserve_order` feature, which another crate in a build could
//! switch on.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::{CoreError, Result};

/// `type` of the signed device identity keys object.
pub const DEVICE_KEYS_TYPE: &str = "parley.device_keys.v1";
/// `type` of the signed one-time (and fallback) key object.
pub const ONE_TIME_KEY_TYPE: &str = "parley.one_time_key.v1";

/// One value of a signed object: the contract allows only these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanonicalValue<'a> {
    /// A JSON string.
    Text(&'a str),
    /// A JSON boolean.
    Bool(bool),
}

/// Serialises `fields` as canonical JSON.
pub fn canonical_json(fields: &[(&str, CanonicalValue<'_>)]) -> Result<String> {
    let object: BTreeMap<&str, serde_json::Value> = fields
        .iter()
        .map(|(name, value)| {
            let value = match value {
                CanonicalValue::Text(text) => serde_json::Value::String((*text).to_owned()),
                CanonicalValue::Bool(flag) => serde_json::Value::Bool(*flag),
            };
            (*name, value)
        })
        .collect();
    serde_json::to_string(&object).map_err(|error| CoreError::malformed("canonical JSON", error))
}

/// The canonical JSON a device signs to vouch for its identity keys.
pub fn device_keys_signing_input(user_id: Uuid, device_id: Uuid, curve25519: &str, ed25519: &str) -> Result<String> {
    let user_id = user_id.to_string();
    let device_id = device_id.to_string();
    canonical_json(&[
        ("curve25519", CanonicalValue::Text(curve25519)),
        ("device_id", CanonicalValue::Text(&device_id)),
        ("ed25519", CanonicalValue::Text(ed25519)),
        ("type", CanonicalValue::Text(DEVICE_KEYS_TYPE)),
        ("user_id", CanonicalValue::Text(&user_id)),
    ])
}

/// The canonical JSON a device signs for each one-time key and for its fallback key.
pub fn one_time_key_signing_input(
    user_id: Uuid,
    device_id: Uuid,
    key_id: &str,
    curve25519: &str,
    fallback: bool,
) -> Result<String> {
    let user_id = user_id.to_string();
    let device_id = device_id.to_string();
    canonical_json(&[
        ("curve25519", CanonicalValue::Text(curve25519)),
        ("device_id", CanonicalValue::Text(&device_id)),
        ("fallback", CanonicalValue::Bool(fallback)),
        ("key_id", CanonicalValue::Text(key_id)),
        ("type", CanonicalValue::Text(ONE_TIME_KEY_TYPE)),
        ("user_id", CanonicalValue::Text(&user_id)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_keys_are_sorted_compact_and_lowercase() {
        let user = Uuid::from_u128(0xA1B2_0000_0000_0000_0000_0000_0000_0001);
        let device = Uuid::from_u128(2);
        let json = device_keys_signing_input(user, device, "C/u+rve", "Ed").expect("canonical");
        assert_eq!(
            json,
            "{\"curve25519\":\"C/u+rve\",\"device_id\":\"00000000-0000-0000-0000-000000000002\",\
             \"ed25519\":\"Ed\",\"type\":\"parley.device_keys.v1\",\
             \"user_id\":\"a1b20000-0000-0000-0000-000000000001\"}"
        );
    }

    #[test]
    fn one_time_key_carries_the_fallback_flag_as_a_boolean() {
        let json = one_time_key_signing_input(Uuid::nil(), Uuid::nil(), "AAAAAAAAAAE", "K", true).expect("canonical");
        assert!(json.contains("\"fallback\":true,\"key_id\":\"AAAAAAAAAAE\""), "{json}");
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        let json = canonical_json(&[("b", CanonicalValue::Text("é\"\n/")), ("a", CanonicalValue::Bool(false))])
            .expect("canonical");
        assert_eq!(json, "{\"a\":false,\"b\":\"é\\\"\\n/\"}");
    }
}
