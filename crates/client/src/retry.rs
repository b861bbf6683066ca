//! Retries: off by default. Every attempt is re-signed with a fresh nonce.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// When and how often to retry a call.
///
/// Retried without question: nonce rejections and rate limits (the server refused the
/// request before doing anything) and connection failures (nothing was sent). Retried only
/// for calls marked idempotent: timeouts and server errors, because the request may have
/// reached the server and been acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::none()
    }
}

impl RetryPolicy {
    /// No retries (the default).
    pub const fn none() -> Self {
        Self {
            max_retries: 0,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }

    /// Up to `max_retries` retries with exponential backoff from 100 ms, capped at 10 s,
    /// with jitter.
    pub const fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            ..Self::none()
        }
    }

    /// Sets the first backoff delay.
    pub const fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Caps every delay (`Retry-After` included).
    pub const fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Maximum number of retries.
    #[must_use]
    pub const fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// How long to wait before retry number `retry` (0-based) after `error`, or `None` when
    /// the error must not be retried.
    #[must_use]
    pub fn delay_for(&self, error: &Error, idempotent: bool, retry: u32) -> Option<Duration> {
        if retry >= self.max_retries || !is_retryable(error, idempotent) {
            return None;
        }
        let backoff = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.max_delay);
        // Jitter: uniformly in [backoff/2, backoff].
        let half = backoff / 2;
        let jittered = half + half.mul_f64(unit_random());
        let server_floor = error.api().and_then(|f| f.retry_after).unwrap_or_default();
        Some(jittered.max(server_floor).min(self.max_delay))
    }
}

/// Whether `error` may be retried for a call that is (or is not) idempotent.
#[must_use]
pub fn is_retryable(error: &Error, idempotent: bool) -> bool {
    match error {
        Error::Api(f) => match f.kind {
            ErrorKind::NonceRejected | ErrorKind::RateLimited => true,
            ErrorKind::Server => idempotent && matches!(f.status, 502..=504),
            _ => false,
        },
        Error::Transport(e) => e.is_connect() || (idempotent && (e.is_timeout() || e.is_request())),
        _ => false,
    }
}

/// A number in [0, 1) from a SplitMix64 sequence seeded by the clock: jitter needs spread,
/// not cryptographic quality.
fn unit_random() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = crate::nonce::unix_ms() ^ u64::from(std::process::id()).rotate_left(32);
    let mut z = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // 53 random bits → [0, 1).
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiFailure;

    fn api(status: u16, body: &str, retry_after: Option<Duration>) -> Error {
        Error::Api(ApiFailure::parse(status, body.as_bytes(), retry_after))
    }

    #[test]
    fn what_is_retried() {
        let nonce = api(
            429,
            r#"{"code":0,"errors":{},"message":"Too many requests."}"#,
            None,
        );
        let limited = api(
            429,
            r#"{"code":0,"message":"Rate limit exceeded."}"#,
            Some(Duration::from_secs(2)),
        );
        let bad_gateway = api(502, r#"{"code":0,"message":"Bad gateway."}"#, None);
        let unauthorized = api(
            401,
            r#"{"code":10,"message":"Unauthorized request."}"#,
            None,
        );
        assert!(is_retryable(&nonce, false));
        assert!(is_retryable(&limited, false));
        assert!(!is_retryable(&bad_gateway, false));
        assert!(is_retryable(&bad_gateway, true));
        assert!(!is_retryable(&unauthorized, true));
        assert!(!is_retryable(&Error::Config("x".into()), true));

        let policy = RetryPolicy::new(3).base_delay(Duration::from_millis(100));
        assert_eq!(RetryPolicy::default().delay_for(&nonce, true, 0), None);
        assert_eq!(policy.delay_for(&nonce, false, 3), None);
        for retry in 0..3 {
            let d = policy.delay_for(&nonce, false, retry).expect("retried");
            let full = Duration::from_millis(100 * 2u64.pow(retry));
            assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
        }
        // Retry-After is a floor.
        let d = policy.delay_for(&limited, false, 0).expect("retried");
        assert_eq!(d, Duration::from_secs(2));
        // ... but the cap still applies.
        let capped = policy.max_delay(Duration::from_millis(500));
        assert_eq!(
            capped.delay_for(&limited, false, 0),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let samples: Vec<f64> = (0..1000).map(|_| unit_random()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        let distinct: std::collections::BTreeSet<u64> =
            samples.iter().map(|x| x.to_bits()).collect();
        assert!(distinct.len() > 990);
    }
}
