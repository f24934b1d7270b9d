//! Crypto-shredding of message bodies.
//!
//! A message's (already end-to-end encrypted) ciphertext is stored in its `MessageSent` event sealed
//! under a random per-message key with XChaCha20-Poly1305; the key lives outside the event store
//! (table `message_keys`). Deleting a message for everyone deletes its key in the same transaction
//! as the `MessageDeleted` event, after which the sealed bytes in the immutable event are noise.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

pub const KEY_BYTES: usize = 32;
pub const NONCE_BYTES: usize = 24;

/// Sealed bytes as stored in an event (base64 in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBody {
    pub nonce: String,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealed body cannot be opened")]
pub struct OpenError;

pub fn seal(key: &[u8; KEY_BYTES], nonce: &[u8; NONCE_BYTES], plaintext: &[u8]) -> SealedBody {
    let cipher = XChaCha20Poly1305::new(key.into());
    // Encryption with a valid key and nonce cannot fail for in-memory buffers.
    let data = cipher.encrypt(&XNonce::from(*nonce), plaintext).unwrap_or_default();
    SealedBody { nonce: STANDARD.encode(nonce), data: STANDARD.encode(data) }
}

pub fn open(key: &[u8], sealed: &SealedBody) -> Result<Vec<u8>, OpenError> {
    if key.len() != KEY_BYTES {
        return Err(OpenError);
    }
    let nonce = STANDARD.decode(&sealed.nonce).map_err(|_| OpenError)?;
    let data = STANDARD.decode(&sealed.data).map_err(|_| OpenError)?;
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| OpenError)?;
    XChaCha20Poly1305::new(key.into()).decrypt(&XNonce::from(nonce), data.as_slice()).map_err(|_| OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_with_its_key_only() {
        let sealed = seal(&[1; KEY_BYTES], &[2; NONCE_BYTES], b"ciphertext from the client");
        assert_eq!(open(&[1; KEY_BYTES], &sealed), Ok(b"ciphertext from the client".to_vec()));
        assert_eq!(open(&[9; KEY_BYTES], &sealed), Err(OpenError));
        assert_eq!(open(&[1; 5], &sealed), Err(OpenError));
        assert!(!sealed.data.contains("Y2lwaGVydGV4dA"), "plaintext must not show through");
    }
}
