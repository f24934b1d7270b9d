//! Streaming attachment encryption: AES-256-CTR over the file, SHA-256 over the ciphertext.
//!
//! Both directions work chunk by chunk in place, so a file of any size passes through a fixed buffer.
//! Decryption cannot know the hash is right before the last chunk, so there are two ways to use it:
//! - [`AttachmentVerifier`] hashes the downloaded ciphertext in one pass; decrypt in a second pass only when
//!   it returned `Ok` (the plaintext is never produced from unverified bytes);
//! - [`AttachmentDecryptor`] hashes and decrypts in one pass and reports the hash at `finish()`: everything it
//!   produced is untrusted until then, and the caller must discard its output (e.g. delete the temporary
//!   file) when `finish()` returns an error.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroize;

use crate::encoding::{b64_decode_array, b64_encode, random_fill};
use crate::payloads::{AttachmentInfo, ATTACHMENT_ALGORITHM};
use crate::{CoreError, Result};

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// Encrypts one attachment. Feed every chunk in order to [`update`](Self::update), then call
/// [`finish`](Self::finish).
pub struct AttachmentEncryptor {
    cipher: Aes256Ctr,
    hasher: Sha256,
    key: [u8; 32],
    iv: [u8; 16],
    size: u64,
}

/// The secret and integrity parts of an encrypted attachment, known once all chunks went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedAttachmentKeys {
    /// Bytes encrypted.
    pub size: u64,
    /// AES-256 key.
    pub key: [u8; 32],
    /// Initial counter block.
    pub iv: [u8; 16],
    /// SHA-256 of the ciphertext.
    pub sha256: [u8; 32],
}

impl EncryptedAttachmentKeys {
    /// The attachment JSON for a Megolm `file` message, once the upload returned `media_id`.
    pub fn into_info(self, media_id: Uuid, content_type: &str, name: &str) -> AttachmentInfo {
        AttachmentInfo {
            media_id,
            content_type: content_type.to_owned(),
            size: self.size,
            name: name.to_owned(),
            key: b64_encode(self.key),
            iv: b64_encode(self.iv),
            sha256: b64_encode(self.sha256),
            algorithm: ATTACHMENT_ALGORITHM.to_owned(),
        }
    }
}

impl AttachmentEncryptor {
    /// A fresh random key and IV (8 random bytes, then a zero 64-bit block counter).
    pub fn new() -> Result<Self> {
        let mut key = [0u8; 32];
        random_fill(&mut key)?;
        let mut iv = [0u8; 16];
        random_fill(&mut iv[..8])?;
        let cipher = Aes256Ctr::new(&key.into(), &iv.into());
        Ok(Self { cipher, hasher: Sha256::new(), key, iv, size: 0 })
    }

    /// Encrypts `chunk` in place and hashes the ciphertext.
    pub fn update(&mut self, chunk: &mut [u8]) -> Result<()> {
        self.cipher.try_apply_keystream(chunk).map_err(|_| CoreError::AttachmentTooLarge)?;
        self.hasher.update(&*chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// The key, IV, size and ciphertext hash.
    pub fn finish(mut self) -> EncryptedAttachmentKeys {
        let keys = EncryptedAttachmentKeys {
            size: self.size,
            key: self.key,
            iv: self.iv,
            sha256: self.hasher.clone().finalize().into(),
        };
        self.key.zeroize();
        keys
    }
}

/// Hash-only pass over a downloaded ciphertext.
pub struct AttachmentVerifier {
    hasher: Sha256,
    expected_sha256: [u8; 32],
    expected_size: u64,
    size: u64,
}

impl AttachmentVerifier {
    /// A verifier for the ciphertext `info` describes.
    pub fn new(info: &AttachmentInfo) -> Result<Self> {
        check_algorithm(info)?;
        Ok(Self {
            hasher: Sha256::new(),
            expected_sha256: b64_decode_array("attachment sha256", &info.sha256)?,
            expected_size: info.size,
            size: 0,
        })
    }

    /// Hashes the next ciphertext chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
    }

    /// `Ok` when the whole ciphertext had the expected size and hash.
    pub fn finish(self) -> Result<()> {
        check_integrity(self.hasher, &self.expected_sha256, self.expected_size, self.size)
    }
}

/// Decrypts a downloaded ciphertext in place while hashing it. Its output is untrusted until `finish()`
/// returned `Ok`; see the module documentation.
pub struct AttachmentDecryptor {
    cipher: Aes256Ctr,
    verifier: AttachmentVerifier,
}

impl AttachmentDecryptor {
    /// A decryptor for the ciphertext `info` describes.
    pub fn new(info: &AttachmentInfo) -> Result<Self> {
        let verifier = AttachmentVerifier::new(info)?;
        let mut key: [u8; 32] = b64_decode_array("attachment key", &info.key)?;
        let iv: [u8; 16] = b64_decode_array("attachment iv", &info.iv)?;
        let cipher = Aes256Ctr::new(&key.into(), &iv.into());
        key.zeroize();
        Ok(Self { cipher, verifier })
    }

    /// Hashes the ciphertext `chunk`, then decrypts it in place.
    pub fn update(&mut self, chunk: &mut [u8]) -> Result<()> {
        self.verifier.update(chunk);
        self.cipher.try_apply_keystream(chunk).map_err(|_| CoreError::AttachmentTooLarge)
    }

    /// `Ok` when the ciphertext had the expected size and hash; otherwise discard everything produced.
    pub fn finish(self) -> Result<()> {
        self.verifier.finish()
    }
}

fn check_algorithm(info: &AttachmentInfo) -> Result<()> {
    if info.algorithm != ATTACHMENT_ALGORITHM {
        return Err(CoreError::UnsupportedAlgorithm(info.algorithm.clone()));
    }
    Ok(())
}

fn check_integrity(hasher: Sha256, expected_sha256: &[u8; 32], expected_size: u64, size: u64) -> Result<()> {
    if size != expected_size {
        return Err(CoreError::AttachmentSizeMismatch { expected: expected_size, actual: size });
    }
    let actual: [u8; 32] = hasher.finalize().into();
    if !constant_time_eq(&actual, expected_sha256) {
        return Err(CoreError::AttachmentHashMismatch);
    }
    Ok(())
}

/// The hash travels next to the key, so timing leaks little; comparing without an early exit costs nothing
/// and spares the argument.
fn constant_time_eq(left: &[u8; 32], right: &[u8; 32]) -> bool {
    left.iter().zip(right.iter()).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypt_in_chunks(plaintext: &[u8], chunk_size: usize) -> (Vec<u8>, AttachmentInfo) {
        let mut encryptor = AttachmentEncryptor::new().expect("rng");
        let mut ciphertext = plaintext.to_vec();
        for chunk in ciphertext.chunks_mut(chunk_size) {
            encryptor.update(chunk).expect("encrypt");
        }
        let info = encryptor.finish().into_info(Uuid::from_u128(7), "text/plain", "notes.txt");
        (ciphertext, info)
    }

    #[test]
    fn round_trip_with_uneven_chunks() {
        let plaintext: Vec<u8> = (0..100_000u32).map(|index| (index % 251) as u8).collect();
        let (ciphertext, info) = encrypt_in_chunks(&plaintext, 4096 + 3);
        assert_ne!(ciphertext, plaintext);
        assert_eq!(info.size, plaintext.len() as u64);
        assert_eq!(info.algorithm, ATTACHMENT_ALGORITHM);
        let iv: [u8; 16] = b64_decode_array("iv", &info.iv).expect("iv");
        assert_eq!(&iv[8..], &[0u8; 8], "the block counter starts at zero");

        let mut verifier = AttachmentVerifier::new(&info).expect("info");
        for chunk in ciphertext.chunks(1000) {
            verifier.update(chunk);
        }
        verifier.finish().expect("hash matches");

        let mut decrypted = ciphertext.clone();
        let mut decryptor = AttachmentDecryptor::new(&info).expect("info");
        for chunk in decrypted.chunks_mut(777) {
            decryptor.update(chunk).expect("decrypt");
        }
        decryptor.finish().expect("hash matches");
        assert_eq!(decrypted, plaintext);
    }

    #[test]
    fn tampered_ciphertext_is_detected() {
        let (mut ciphertext, info) = encrypt_in_chunks(b"the quarterly numbers", 5);
        ciphertext[3] ^= 0x01;

        let mut verifier = AttachmentVerifier::new(&info).expect("info");
        verifier.update(&ciphertext);
        assert!(matches!(verifier.finish(), Err(CoreError::AttachmentHashMismatch)));

        let mut decryptor = AttachmentDecryptor::new(&info).expect("info");
        decryptor.update(&mut ciphertext).expect("decrypt");
        assert!(matches!(decryptor.finish(), Err(CoreError::AttachmentHashMismatch)));
    }

    #[test]
    fn truncated_ciphertext_is_detected() {
        let (ciphertext, info) = encrypt_in_chunks(b"0123456789", 4);
        let mut verifier = AttachmentVerifier::new(&info).expect("info");
        verifier.update(&ciphertext[..9]);
        assert!(matches!(verifier.finish(), Err(CoreError::AttachmentSizeMismatch { expected: 10, actual: 9 })));
    }

    #[test]
    fn matches_an_independent_aes_ctr_computation() {
        // One block with a known key and IV: the keystream of block 0 is AES(key, iv), so encrypting zeros
        // yields exactly that block (checks the big-endian 128-bit counter flavour and the IV layout).
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let key = [0x11u8; 32];
        let iv = [0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut expected = [iv, iv];
        expected[1][15] = 1;
        let block_cipher = Aes256::new(&key.into());
        for block in &mut expected {
            let mut array = (*block).into();
            block_cipher.encrypt_block(&mut array);
            *block = array.into();
        }
        let mut data = [0u8; 32];
        Aes256Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut data);
        assert_eq!(&data[..16], &expected[0]);
        assert_eq!(&data[16..], &expected[1]);
    }
}
