//! Streaming attachment encryption (AES-256-CTR, SHA-256 over the ciphertext), chunk by chunk, so that a
//! browser can pass a file of any size through it (e.g. from `Blob.stream()` into an upload).

use parley_client_core::payloads::AttachmentInfo;
use serde_json::Value;
use uuid::Uuid;
use wasm_bindgen::prelude::*;

use crate::convert::{from_json, to_json};
use crate::Error;

/// Encrypts one attachment under a fresh random key: pass every chunk of the file, in order, to `update`
/// and upload what it returns, then call `finish` for the keys.
#[wasm_bindgen]
pub struct AttachmentEncryptor {
    inner: Option<parley_client_core::AttachmentEncryptor>,
}

#[wasm_bindgen]
impl AttachmentEncryptor {
    /// A new encryptor with a random key and IV.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<AttachmentEncryptor, Error> {
        Ok(Self { inner: Some(parley_client_core::AttachmentEncryptor::new()?) })
    }

    /// Encrypts the next plaintext chunk (any length) and returns its ciphertext (same length); the input is
    /// left as it was.
    pub fn update(&mut self, mut chunk: Vec<u8>) -> Result<Vec<u8>, Error> {
        self.inner.as_mut().ok_or_else(|| Error::finished("attachment encryptor"))?.update(&mut chunk)?;
        Ok(chunk)
    }

    /// Ends the stream. Returns `EncryptedAttachmentKeysJson`: `{size, key, iv, sha256, algorithm}`, the
    /// fields of the message's `AttachmentInfoJson` except `media_id`, `content_type` and `name`, which the
    /// caller adds once the upload returned the media id. The object can no longer be used.
    #[wasm_bindgen(unchecked_return_type = "Json<EncryptedAttachmentKeysJson>")]
    pub fn finish(&mut self) -> Result<String, Error> {
        let encryptor = self.inner.take().ok_or_else(|| Error::finished("attachment encryptor"))?;
        let mut info = serde_json::to_value(encryptor.finish().into_info(Uuid::nil(), "", ""))?;
        if let Value::Object(fields) = &mut info {
            for placeholder in ["media_id", "content_type", "name"] {
                fields.remove(placeholder);
            }
        }
        to_json(&info)
    }
}

/// Decrypts a downloaded attachment while hashing it. Everything `update` returns is **untrusted** until
/// `finish` returned without throwing: a caller that shows or stores the plaintext early must discard it when
/// `finish` throws. (For a check before any plaintext exists, run an `AttachmentVerifier` first.)
#[wasm_bindgen]
pub struct AttachmentDecryptor {
    inner: Option<parley_client_core::AttachmentDecryptor>,
}

#[wasm_bindgen]
impl AttachmentDecryptor {
    /// A decryptor for the attachment `info_json` (`AttachmentInfoJson`, from the decrypted message) describes.
    #[wasm_bindgen(constructor)]
    pub fn new(info_json: &str) -> Result<AttachmentDecryptor, Error> {
        let info: AttachmentInfo = from_json("attachment info", info_json)?;
        Ok(Self { inner: Some(parley_client_core::AttachmentDecryptor::new(&info)?) })
    }

    /// Hashes the next ciphertext chunk (any length) and returns its plaintext (same length, untrusted until
    /// `finish`).
    pub fn update(&mut self, mut chunk: Vec<u8>) -> Result<Vec<u8>, Error> {
        self.inner.as_mut().ok_or_else(|| Error::finished("attachment decryptor"))?.update(&mut chunk)?;
        Ok(chunk)
    }

    /// Ends the stream: throws `attachment_size_mismatch` or `attachment_hash_mismatch` when the ciphertext
    /// was not the one described (then discard all plaintext). The object can no longer be used.
    pub fn finish(&mut self) -> Result<(), Error> {
        Ok(self.inner.take().ok_or_else(|| Error::finished("attachment decryptor"))?.finish()?)
    }
}

/// Checks a downloaded ciphertext's size and hash without decrypting it (a first pass before an
/// `AttachmentDecryptor`, when no plaintext may be produced from unverified bytes).
#[wasm_bindgen]
pub struct AttachmentVerifier {
    inner: Option<parley_client_core::AttachmentVerifier>,
}

#[wasm_bindgen]
impl AttachmentVerifier {
    /// A verifier for the attachment `info_json` (`AttachmentInfoJson`) describes.
    #[wasm_bindgen(constructor)]
    pub fn new(info_json: &str) -> Result<AttachmentVerifier, Error> {
        let info: AttachmentInfo = from_json("attachment info", info_json)?;
        Ok(Self { inner: Some(parley_client_core::AttachmentVerifier::new(&info)?) })
    }

    /// Hashes the next ciphertext chunk.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.inner.as_mut().ok_or_else(|| Error::finished("attachment verifier"))?.update(chunk);
        Ok(())
    }

    /// Throws `attachment_size_mismatch` or `attachment_hash_mismatch` unless the whole ciphertext had the
    /// described size and hash. The object can no longer be used.
    pub fn finish(&mut self) -> Result<(), Error> {
        Ok(self.inner.take().ok_or_else(|| Error::finished("attachment verifier"))?.finish()?)
    }
}
