//! Per-key rate limits by kind (row 15, `docs/design-decisions.md` 12): off unless configured; fixed
//! windows; only requests whose nonce would be accepted are counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::config::RateLimit;
use wbauth_store::KeyId;

/// The limiter.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    limits: BTreeMap<String, RateLimit>,
    windows: Mutex<HashMap<KeyId, (u64, u32)>>,
}

impl RateLimiter {
    /// A limiter for these per-kind limits.
    #[must_use]
    pub(crate) fn new(limits: BTreeMap<String, RateLimit>) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any limit is configured.
    #[must_use]
    pub(crate) fn is_enabled(&self) -> bool {
        !self.limits.is_empty()
    }

    /// Counts one request of `key` (of `kind`) at `now_ms`; `Err(seconds)` to wait when over
    /// the limit.
    pub(crate) fn admit(&self, key: KeyId, kind: &str, now_ms: u64) -> Result<(), u64> {
        let Some(limit) = self.limits.get(kind) else {
            return Ok(());
        };
        let window_start = now_ms - now_ms % limit.window_ms;
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| *start >= window_start);
        }
        let entry = windows.entry(key).or_insert((window_start, 0));
        if entry.0 != window_start {
            *entry = (window_start, 0);
        }
        if entry.1 >= limit.requests {
            let wait_ms = window_start + limit.window_ms - now_ms;
            return Err(wait_ms.div_ceil(1000).max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_windows() {
        let mut limits = BTreeMap::new();
        limits.insert(
            "trade".to_owned(),
            RateLimit {
                requests: 2,
                window_ms: 1000,
            },
        );
        let r = RateLimiter::new(limits);
        assert_eq!(r.admit(1, "trade", 10_000), Ok(()));
        assert_eq!(r.admit(1, "trade", 10_500), Ok(()));
        assert_eq!(r.admit(1, "trade", 10_900), Err(1));
        assert_eq!(r.admit(2, "trade", 10_900), Ok(()), "per key");
        assert_eq!(r.admit(1, "main", 10_900), Ok(()), "kinds without a limit");
        assert_eq!(r.admit(1, "trade", 11_000), Ok(()), "next window");
    }
}
