//! Safety numbers: 60 digits two users compare out of band to confirm they see each other's real keys.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use uuid::Uuid;
use vodozemac::Ed25519PublicKey;

/// Rounds of SHA-512 per fingerprint (as Signal): makes finding a colliding key set expensive.
pub const FINGERPRINT_ITERATIONS: usize = 5200;
const FINGERPRINT_VERSION: [u8; 2] = [0, 0];

/// A pair of users' safety number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyNumber {
    digits: String,
}

impl SafetyNumber {
    /// The 60 digits without separators: the compact form for copying or a QR code.
    pub fn compact(&self) -> &str {
        &self.digits
    }

    /// Twelve groups of five digits separated by spaces, for reading aloud.
    pub fn grouped(&self) -> String {
        let groups: Vec<&str> =
            (0..self.digits.len()).step_by(5).filter_map(|start| self.digits.get(start..start + 5)).collect();
        groups.join(" ")
    }
}

impl fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grouped())
    }
}

/// The safety number of two users, each given with the Ed25519 keys of all their devices. Symmetric: either
/// side computes the same digits.
pub fn safety_number(
    first_user: Uuid,
    first_keys: &[Ed25519PublicKey],
    second_user: Uuid,
    second_keys: &[Ed25519PublicKey],
) -> SafetyNumber {
    let first = fingerprint_digits(first_user, first_keys);
    let second = fingerprint_digits(second_user, second_keys);
    let digits = if first_user.to_string() <= second_user.to_string() { first + &second } else { second + &first };
    SafetyNumber { digits }
}

/// 30 digits for one user: SHA-512 iterated over the sorted device keys and the user id.
pub fn fingerprint_digits(user_id: Uuid, ed25519_keys: &[Ed25519PublicKey]) -> String {
    let mut sorted_keys: Vec<[u8; 32]> = ed25519_keys.iter().map(|key| *key.as_bytes()).collect();
    sorted_keys.sort_unstable();
    let mut suffix = Vec::with_capacity(sorted_keys.len() * 32 + 36);
    for key in &sorted_keys {
        suffix.extend_from_slice(key);
    }
    suffix.extend_from_slice(user_id.to_string().as_bytes());

    let mut hash: Vec<u8> = FINGERPRINT_VERSION.iter().chain(suffix.iter()).copied().collect();
    for _ in 0..FINGERPRINT_ITERATIONS {
        let mut hasher = Sha512::new();
        hasher.update(&hash);
        hasher.update(&suffix);
        hash = hasher.finalize().to_vec();
    }
    hash[..30].chunks(5).map(|chunk| format!("{:05}", chunk_value(chunk) % 100_000)).collect()
}

fn chunk_value(chunk: &[u8]) -> u64 {
    chunk.iter().fold(0u64, |value, byte| (value << 8) | u64::from(*byte))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vodozemac::Ed25519Keypair;

    #[test]
    fn both_sides_compute_the_same_sixty_digits() {
        let alice = Uuid::from_u128(0xAAAA);
        let bob = Uuid::from_u128(0xBBBB);
        let alice_keys = [Ed25519Keypair::new().public_key(), Ed25519Keypair::new().public_key()];
        let bob_keys = [Ed25519Keypair::new().public_key()];
        let seen_by_alice = safety_number(alice, &alice_keys, bob, &bob_keys);
        let seen_by_bob = safety_number(bob, &bob_keys, alice, &[alice_keys[1], alice_keys[0]]);
        assert_eq!(seen_by_alice, seen_by_bob, "order of users and of devices must not matter");
        assert_eq!(seen_by_alice.compact().len(), 60);
        assert!(seen_by_alice.compact().bytes().all(|byte| byte.is_ascii_digit()));
        assert_eq!(seen_by_alice.grouped().len(), 60 + 11);

        let with_new_device =
            safety_number(bob, &[bob_keys[0], Ed25519Keypair::new().public_key()], alice, &alice_keys);
        assert_ne!(seen_by_alice, with_new_device, "a new device changes the number");
    }

    #[test]
    fn fingerprint_is_stable_for_fixed_input() {
        // Pins the construction so another implementation can test against it.
        let key = Ed25519PublicKey::from_slice(&[
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1,
            0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
        ])
        .expect("RFC 8032 test key");
        let digits = fingerprint_digits(Uuid::nil(), &[key]);
        assert_eq!(digits.len(), 30);
        assert_eq!(digits, "473955440059949825239474773104");
    }
}
