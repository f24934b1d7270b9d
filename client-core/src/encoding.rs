//! Base64 forms, key parsing and randomness shared by the modules.

use base64::Engine as _;
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};

use crate::{CoreError, Result};

/// Unpadded standard base64, vodozemac's `to_base64()` form (the contract's default).
pub(crate) fn b64_encode(bytes: impl AsRef<[u8]>) -> String {
    vodozemac::base64_encode(bytes)
}

/// Decodes unpadded standard base64 (padding is tolerated, as vodozemac tolerates it).
pub(crate) fn b64_decode(what: &'static str, text: &str) -> Result<Vec<u8>> {
    vodozemac::base64_decode(text).map_err(|error| CoreError::malformed(what, error))
}

/// Padded standard base64: only the chat message `ciphertext` field uses it.
pub(crate) fn b64_padded_encode(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn b64_padded_decode(what: &'static str, text: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|error| CoreError::malformed(what, error))
}

/// Decodes exactly `N` bytes of unpadded base64.
pub(crate) fn b64_decode_array<const N: usize>(what: &'static str, text: &str) -> Result<[u8; N]> {
    let bytes = b64_decode(what, text)?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| CoreError::malformed(what, format!("expected {N} bytes, got {}", bytes.len())))
}

/// Parses a Curve25519 key and insists on the canonical unpadded form, because signatures cover the text.
pub(crate) fn parse_curve25519(what: &'static str, text: &str) -> Result<Curve25519PublicKey> {
    let key = Curve25519PublicKey::from_base64(text).map_err(|error| CoreError::malformed(what, error))?;
    if key.to_base64() != text {
        return Err(CoreError::malformed(what, "not in canonical unpadded base64"));
    }
    Ok(key)
}

/// An Ed25519 key from base64 of exactly 32 bytes. Not vodozemac's `Ed25519PublicKey::from_base64`: it takes
/// any 44 characters as the padded form and panics when they decode to 33 bytes (vodozemac 0.11.1), and these
/// keys come from the server.
fn ed25519_from_base64(what: &'static str, text: &str) -> Result<Ed25519PublicKey> {
    let bytes = b64_decode_array::<{ Ed25519PublicKey::LENGTH }>(what, text)?;
    Ed25519PublicKey::from_slice(&bytes).map_err(|error| CoreError::malformed(what, error))
}

/// Parses an Ed25519 key and insists on the canonical unpadded form, because signatures cover the text.
pub(crate) fn parse_ed25519(what: &'static str, text: &str) -> Result<Ed25519PublicKey> {
    let key = ed25519_from_base64(what, text)?;
    if key.to_base64() != text {
        return Err(CoreError::malformed(what, "not in canonical unpadded base64"));
    }
    Ok(key)
}

pub(crate) fn parse_signature(what: &'static str, text: &str) -> Result<Ed25519Signature> {
    Ed25519Signature::from_base64(text).map_err(|error| CoreError::malformed(what, error))
}

/// Fills `buffer` from the operating system's generator (the browser's `crypto.getRandomValues` on wasm).
pub(crate) fn random_fill(buffer: &mut [u8]) -> Result<()> {
    getrandom::fill(buffer).map_err(|error| CoreError::Random(error.to_string()))
}

/// Serde as unpadded base64 for Curve25519 keys, so saved state and reports read like the wire format.
pub(crate) mod serde_curve25519 {
    use serde::{Deserialize, Deserializer, Serializer};
    use vodozemac::Curve25519PublicKey;

    pub(crate) fn serialize<S: Serializer>(key: &Curve25519PublicKey, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&key.to_base64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Curve25519PublicKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        Curve25519PublicKey::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde as unpadded base64 for Ed25519 keys.
pub(crate) mod serde_ed25519 {
    use serde::{Deserialize, Deserializer, Serializer};
    use vodozemac::Ed25519PublicKey;

    pub(crate) fn serialize<S: Serializer>(key: &Ed25519PublicKey, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&key.to_base64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Ed25519PublicKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::ed25519_from_base64("Ed25519 key", &text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 44 characters of base64 without padding are 33 bytes: vodozemac's own parser panicked on them (found
    /// by the `e2ee_keys` fuzz target, in a device listing).
    const ED25519_OF_33_BYTES: &str = "Ow9lo4gEFLTkdZGForbdqmM829H2fE9p2A/6Nju4/xlM";

    #[test]
    fn an_ed25519_key_of_33_bytes_is_refused_without_a_panic() {
        assert!(matches!(parse_ed25519("ed25519 key", ED25519_OF_33_BYTES), Err(CoreError::Malformed { .. })));
        let json = format!("\"{ED25519_OF_33_BYTES}\"");
        let read = serde_ed25519::deserialize(&mut serde_json::Deserializer::from_str(&json));
        assert!(read.is_err(), "a 33-byte Ed25519 key was read from saved state");
    }

    #[test]
    fn ed25519_keys_still_parse_in_their_canonical_form_only() {
        let key = vodozemac::olm::Account::new().ed25519_key();
        let text = key.to_base64();
        assert_eq!(parse_ed25519("ed25519 key", &text).ok(), Some(key));
        assert!(parse_ed25519("ed25519 key", &format!("{text}=")).is_err(), "padded");
        let read = serde_ed25519::deserialize(&mut serde_json::Deserializer::from_str(&format!("\"{text}\"")));
        assert_eq!(read.ok(), Some(key));
    }
}
