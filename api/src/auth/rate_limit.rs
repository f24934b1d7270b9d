//! Token-bucket rate limits for the abuse-prone endpoints (register, login, refresh).
//!
//! Buckets live in this process: with N replicas behind a load balancer a client gets at most N
//! times the quota, which is acceptable for brute-force protection; a shared store (Postgres or
//! NATS KV) is the upgrade path if that ever matters.

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
}

/// Forget buckets beyond this many (the full ones first) so memory stays bounded under a flood of
/// distinct keys.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket, or says how long until one is available.
    pub fn check(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        self.check_at(key, quota, Instant::now())
    }

    fn check_at(&self, key: &str, quota: Quota, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(quota.limit);
        let per_second = capacity / quota.window.as_secs_f64();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.updated).as_secs_f64() * per_second < capacity);
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: capacity, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
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
}
