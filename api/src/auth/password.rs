//! Argon2id password hashing, off the async runtime (it is deliberately slow and memory-hard).
//!
//! Hashes run on a few dedicated threads, one per core: that bounds both the CPU they take from
//! request handling and their memory. Each hash allocates 19 MiB; glibc's adaptive mmap threshold
//! would soon serve those from per-thread heaps that are never given back (measured: 2.5 GB RSS
//! after 200 logins), so the threshold is pinned and such blocks always return to the system.

use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::{mpsc, oneshot};

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

type Job = Box<dyn FnOnce() + Send>;

static WORKERS: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

fn workers() -> &'static mpsc::Sender<Job> {
    WORKERS.get_or_init(|| {
        pin_mmap_threshold();
        // Waiting requests queue here (async, bounded), not as threads.
        let (sender, receiver) = mpsc::channel::<Job>(1024);
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        for i in 0..threads {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || loop {
                let job = receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).blocking_recv();
                match job {
                    Some(job) => job(),
                    None => return,
                }
            });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password hashing thread");
            }
        }
        sender
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pin_mmap_threshold() {
    // SAFETY: mallopt only changes allocator tuning; called once, before the hashing threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_mmap_threshold() {}

/// Runs `work` on a hashing thread.
async fn run<T: Send + 'static>(work: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    let (reply, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(work());
    });
    workers().send(job).await.map_err(|_| anyhow::anyhow!("password hashing threads are gone"))?;
    result.await.map_err(|_| anyhow::anyhow!("password hashing thread failed"))?
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    run(move || hash_blocking(password.as_bytes())).await
}

/// Whether `password` matches `hash`; `None` hash runs a dummy verification and says no.
pub async fn verify(password: String, hash: Option<String>) -> anyhow::Result<bool> {
    run(move || {
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
    .await
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
