//! Rate limits shared by every api replica: each bucket is one key of a NATS KV bucket, taken
//! from by compare-and-set on the key's revision, so N replicas give a client the quota once,
//! not N times.
//!
//! A bucket is stored as "TOKENS MILLIS" (tokens held at that Unix time). Keys are the SHA-256 of
//! the limiter key, so no email or address is readable in NATS. The KV bucket forgets a key once
//! it has been untouched for the longest window (it is full again by then). When NATS cannot
//! answer in time, or a key is fought over past `MAX_ATTEMPTS`, the check falls back to this
//! process's own limiter: limits then hold per replica, as they did before. Within a replica the
//! checks of one key take turns, so only other replicas contend for its revision: a burst of
//! concurrent requests for one key cannot push it past `MAX_ATTEMPTS` into the per-replica
//! fallback (which would give the burst the quota once per replica).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, Store};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::rate_limit::{refilled, take_one, Quota, RateLimiter};

/// Compare-and-set attempts before falling back to the local limiter.
const MAX_ATTEMPTS: usize = 8;
/// How long one check may wait for NATS before falling back.
const NATS_TIMEOUT: Duration = Duration::from_millis(500);
/// What one bucket may take of the KV bucket's size cap (a 64-character key, a short value and
/// JetStream's own bytes, with room to spare).
const BYTES_PER_KEY: i64 = 256;
/// How long a key the full table cannot take waits (as the local table's refusal).
const FULL_RETRY: Duration = Duration::from_secs(1);
/// Keys share this many turn locks (by hash): enough that unrelated keys rarely wait on each other.
const TURN_STRIPES: usize = 64;

pub struct SharedRateLimiter {
    store: Option<Store>,
    local: RateLimiter,
    /// One key's checks in this replica go one at a time (see the module's comment).
    turns: Box<[tokio::sync::Mutex<()>]>,
}

#[derive(Debug, thiserror::Error)]
enum SharedError {
    #[error("the shared table is full")]
    Full,
    #[error("NATS: {0}")]
    Nats(String),
    #[error("taken from by other replicas {MAX_ATTEMPTS} times in a row")]
    Contended,
}

impl SharedRateLimiter {
    /// Opens (creating if needed) the KV bucket `bucket`, sized for `max_keys` buckets;
    /// `longest_window` is the longest quota window in use. Without NATS KV the limits stay per
    /// process (logged once here). A full KV bucket refuses new writes rather than evicting: a
    /// flood of made-up keys then gets 429 and frees no drained bucket.
    pub async fn open(
        jetstream: &async_nats::jetstream::Context,
        bucket: &str,
        longest_window: Duration,
        max_keys: usize,
        local: RateLimiter,
    ) -> Self {
        let store = match jetstream.get_key_value(bucket).await {
            Ok(store) => Ok(store),
            Err(_) => jetstream
                .create_key_value(kv::Config {
                    bucket: bucket.to_owned(),
                    description: "Parley's rate-limit buckets, shared by every api replica".into(),
                    history: 1,
                    max_age: longest_window,
                    max_bytes: i64::try_from(max_keys).unwrap_or(i64::MAX / BYTES_PER_KEY) * BYTES_PER_KEY,
                    storage: async_nats::jetstream::stream::StorageType::Memory,
                    ..Default::default()
                })
                .await
                .map_err(|error| error.to_string()),
        };
        let turns = (0..TURN_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect();
        match store {
            Ok(store) => Self { store: Some(store), local, turns },
            Err(error) => {
                tracing::warn!(bucket, %error, "rate limits stay per replica: the NATS KV bucket is unavailable");
                Self { store: None, local, turns }
            }
        }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is available.
    pub async fn check(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        let Some(store) = &self.store else { return self.local.check(key, quota) };
        let kv_key = kv_key(key);
        let stripe = kv_key.get(..4).and_then(|hex| usize::from_str_radix(hex, 16).ok()).unwrap_or(0);
        let turn = &self.turns[stripe % self.turns.len()];
        let taken = async {
            let _turn = turn.lock().await;
            take_shared(store, &kv_key, quota).await
        };
        match tokio::time::timeout(NATS_TIMEOUT, taken).await {
            Ok(Ok(taken)) => taken,
            Ok(Err(SharedError::Full)) => Err(FULL_RETRY),
            Ok(Err(error)) => {
                tracing::warn!(%error, "shared rate limit unavailable; using this replica's");
                self.local.check(key, quota)
            }
            Err(_) => {
                tracing::warn!("shared rate limit timed out; using this replica's");
                self.local.check(key, quota)
            }
        }
    }
}

async fn take_shared(store: &Store, kv_key: &str, quota: Quota) -> Result<Result<(), Duration>, SharedError> {
    for _ in 0..MAX_ATTEMPTS {
        let entry = store.entry(kv_key).await.map_err(|e| SharedError::Nats(e.to_string()))?;
        let now = unix_millis();
        let held = match &entry {
            Some(entry) if entry.operation == kv::Operation::Put => match parse_bucket(&entry.value) {
                Some((tokens, at)) => refilled(tokens, Duration::from_millis(now.saturating_sub(at)), quota),
                None => f64::from(quota.limit),
            },
            _ => f64::from(quota.limit),
        };
        let left = match take_one(held, quota) {
            Ok(left) => left,
            // Nothing taken, nothing to write.
            Err(wait) => return Ok(Err(wait)),
        };
        let value = Bytes::from(format!("{left} {now}"));
        let written = match &entry {
            Some(entry) => store
                .update(kv_key, value, entry.revision)
                .await
                .map(|_| ())
                .map_err(|e| (e.kind() == kv::UpdateErrorKind::WrongLastRevision, e.to_string())),
            None => store
                .create(kv_key, value)
                .await
                .map(|_| ())
                .map_err(|e| (e.kind() == kv::CreateErrorKind::AlreadyExists, e.to_string())),
        };
        match written {
            Ok(()) => return Ok(Ok(())),
            // Another replica took from the bucket meanwhile: read it again.
            Err((true, _)) => continue,
            // JetStream's refusal once the bucket holds its maximum bytes.
            Err((false, error)) if error.contains("maximum bytes") => return Err(SharedError::Full),
            Err((false, error)) => return Err(SharedError::Nats(error)),
        }
    }
    Err(SharedError::Contended)
}

fn kv_key(key: &str) -> String {
    super::tokens::hex(&Sha256::digest(key.as_bytes()))
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// (tokens, Unix millis) from "TOKENS MILLIS".
fn parse_bucket(value: &[u8]) -> Option<(f64, u64)> {
    let (tokens, at) = std::str::from_utf8(value).ok()?.split_once(' ')?;
    let tokens: f64 = tokens.parse().ok()?;
    (tokens.is_finite() && tokens >= 0.0).then_some(())?;
    Some((tokens, at.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_buckets_round_trip_and_garbage_reads_as_full() {
        assert_eq!(parse_bucket(b"2.5 1700000000000"), Some((2.5, 1_700_000_000_000)));
        assert_eq!(parse_bucket(b"NaN 1"), None);
        assert_eq!(parse_bucket(b"-1 1"), None);
        assert_eq!(parse_bucket(b"1"), None);
        assert_eq!(parse_bucket(&[0xff, b' ', b'1']), None);
    }

    #[test]
    fn keys_are_valid_kv_keys_that_reveal_nothing() {
        let key = kv_key("login:account:alice@example.com");
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!key.contains("alice"));
    }
}
