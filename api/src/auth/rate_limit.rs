//! Token-bucket rate limits for the abuse-prone endpoints (register, login, refresh).
//!
//! `RateLimiter` keeps buckets in this process; `auth::shared_limits` keeps them in NATS so every
//! replica draws from the same bucket, and falls back to this one when NATS cannot answer.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `limit` requests per `window`, refilled continuously.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub limit: u32,
    pub window: Duration,
}

impl Quota {
    pub const fn new(limit: u32, window_secs: u64) -> Self {
        Quota { limit, window: Duration::from_secs(window_secs) }
    }
}

impl FromStr for Quota {
    type Err = String;

    /// `"10/60"`: 10 requests per 60 seconds.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (limit, seconds) = s.split_once('/').ok_or_else(|| format!("{s:?} is not LIMIT/SECONDS"))?;
        let limit: u32 = limit.trim().parse().map_err(|_| format!("{s:?}: bad limit"))?;
        let seconds: u64 = seconds.trim().parse().map_err(|_| format!("{s:?}: bad window"))?;
        if limit == 0 || seconds == 0 {
            return Err(format!("{s:?}: limit and window must be positive"));
        }
        Ok(Quota { limit, window: Duration::from_secs(seconds) })
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// When the bucket is full again if nothing more is taken: from then on it holds nothing a
    /// fresh bucket would not, so forgetting it loses nothing.
    full_at: Instant,
}

/// Buckets kept at most by default (`PARLEY_RATE_LIMIT_MAX_KEYS`), so memory stays bounded under
/// a flood of distinct keys (keys are at most a few hundred bytes: callers validate them first).
pub const MAX_BUCKETS: usize = 100_000;
/// How often a full table is searched for refilled buckets (the search visits every bucket).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Buckets {
    by_key: HashMap<String, Bucket>,
    swept: Option<Instant>,
}

/// Only refilled buckets are ever forgotten: one still holding a debt (an account under a
/// brute-force attempt) stays until it has refilled, however many other keys arrive. When the
/// table is full of such buckets, a key without a bucket is refused until some refill (the flood
/// that filled it is then limited too), instead of freeing a victim's bucket.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<Buckets>,
    max_buckets: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::with_capacity(MAX_BUCKETS)
    }
}

impl RateLimiter {
    /// A limiter that keeps at most `max_buckets` buckets.
    pub fn with_capacity(max_buckets: usize) -> Self {
        Self { buckets: Mutex::default(), max_buckets }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is available.
    pub fn check(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        self.check_at(key, quota, Instant::now())
    }

    fn check_at(&self, key: &str, quota: Quota, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(quota.limit);
        let per_second = capacity / quota.window.as_secs_f64();
        let max_buckets = self.max_buckets;
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.by_key.len() >= max_buckets && !buckets.by_key.contains_key(key) {
            if buckets.swept.is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY) {
                buckets.by_key.retain(|_, bucket| bucket.full_at > now);
                buckets.swept = Some(now);
            }
            if buckets.by_key.len() >= max_buckets {
                return Err(SWEEP_EVERY);
            }
        }
        let bucket =
            buckets.by_key.entry(key.to_owned()).or_insert(Bucket { tokens: capacity, updated: now, full_at: now });
        bucket.tokens = refilled(bucket.tokens, now.saturating_duration_since(bucket.updated), quota);
        bucket.updated = now;
        bucket.tokens = take_one(bucket.tokens, quota)?;
        bucket.full_at = now + Duration::from_secs_f64((capacity - bucket.tokens) / per_second);
        Ok(())
    }
}

/// What a bucket that held `tokens` holds `elapsed` later.
pub fn refilled(tokens: f64, elapsed: Duration, quota: Quota) -> f64 {
    let capacity = f64::from(quota.limit);
    (tokens + elapsed.as_secs_f64() * capacity / quota.window.as_secs_f64()).min(capacity)
}

/// The tokens left after taking one from `held`, or how long until there is one to take.
pub fn take_one(held: f64, quota: Quota) -> Result<f64, Duration> {
    if held >= 1.0 {
        Ok(held - 1.0)
    } else {
        Err(Duration::from_secs_f64((1.0 - held) * quota.window.as_secs_f64() / f64::from(quota.limit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotas() {
        assert_eq!("5/60".parse(), Ok(Quota { limit: 5, window: Duration::from_secs(60) }));
        assert!("5".parse::<Quota>().is_err());
        assert!("0/60".parse::<Quota>().is_err());
        assert!("5/x".parse::<Quota>().is_err());
    }

    #[test]
    fn allows_the_quota_then_refuses_until_refilled() {
        let limiter = RateLimiter::default();
        let quota = Quota { limit: 3, window: Duration::from_secs(60) };
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("ip:1", quota, start).is_ok());
        }
        let wait = limiter.check_at("ip:1", quota, start).err().unwrap_or_default();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20), "{wait:?}");
        // Other keys are independent.
        assert!(limiter.check_at("ip:2", quota, start).is_ok());
        // One token back after a third of the window.
        assert!(limiter.check_at("ip:1", quota, start + Duration::from_secs(20)).is_ok());
        assert!(limiter.check_at("ip:1", quota, start + Duration::from_secs(20)).is_err());
    }

    #[test]
    fn a_flood_of_new_keys_cannot_free_a_drained_bucket() {
        let limiter = RateLimiter::with_capacity(100);
        let quota = Quota { limit: 3, window: Duration::from_secs(300) };
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("login:account:victim", quota, start).is_ok());
        }
        // An attacker fills the table with keys of its own, each drained a little.
        let mut later = start;
        for n in 0..1000 {
            later = start + Duration::from_millis(n * 10);
            let _ = limiter.check_at(&format!("login:account:{n}"), quota, later);
        }
        assert!(limiter.buckets.lock().map(|b| b.by_key.len() <= 100).unwrap_or(false));
        assert!(limiter.check_at("login:account:victim", quota, later).is_err(), "the victim's debt is kept");
    }

    #[test]
    fn refilled_buckets_make_room_for_new_keys() {
        let limiter = RateLimiter::with_capacity(10);
        let quota = Quota { limit: 2, window: Duration::from_secs(10) };
        let start = Instant::now();
        for n in 0..10 {
            assert!(limiter.check_at(&format!("ip:{n}"), quota, start).is_ok());
        }
        assert!(limiter.check_at("ip:new", quota, start).is_err(), "full of buckets still refilling");
        // One token was taken from each: after half the window they are full again.
        let refilled = start + Duration::from_secs(5);
        assert!(limiter.check_at("ip:new", quota, refilled).is_ok());
        assert!(limiter.buckets.lock().map(|b| b.by_key.len() == 1).unwrap_or(false));
    }
}
