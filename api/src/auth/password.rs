//! Argon2id password hashing, off the async runtime (it is deliberately slow).

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::OnceLock;

use argon2::Argon2;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the hashing work an attacker can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Verified against when an email is unknown, so that unknown and known emails cost the same.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

fn hash_blocking(password: &[u8]) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(password.as_bytes())).await?
}

/// Whether `password` matches `hash`; `None` hash runs a dummy verification and says no.
pub async fn verify(password: String, hash: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = match hash {
            Some(hash) => hash,
            None => match DUMMY_HASH.get() {
                Some(dummy) => dummy.clone(),
                None => {
                    let dummy = hash_blocking(b"parley-dummy-password")?;
                    DUMMY_HASH.get_or_init(|| dummy).clone()
                }
            },
        };
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(known && matches)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() -> anyhow::Result<()> {
        let hash = super::hash("correct horse".into()).await?;
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(hash.clone())).await?);
        assert!(!verify("wrong horse".into(), Some(hash)).await?);
        assert!(!verify("anything".into(), None).await?);
        Ok(())
    }
}
