//! A nonce source that is monotonic across threads and tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system clock in Unix milliseconds (0 if the clock is before 1970).
pub use whitebit_auth::time::unix_ms;

/// Issues nonces as `max(now_ms, last + 1)`: Unix milliseconds while requests are slower
/// than one per millisecond, strictly increasing always.
///
/// Cloning shares the state, so several [`crate::Client`]s of one API key can share one
/// source (pass it to [`crate::ClientBuilder::nonce_source`]) and never collide.
///
/// In window mode a key can sustain about 1000 requests a second: faster than that,
/// `last + 1` runs ahead of the clock and, after 5 s of backlog, out of the server's ±5 s
/// window. Spread heavier load over several keys.
#[derive(Debug, Clone, Default)]
pub struct NonceSource {
    last: Arc<AtomicU64>,
}

impl NonceSource {
    /// A fresh source.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A source that will never issue a nonce at or below `last` (to continue after a
    /// nonce the server has already seen).
    #[must_use]
    pub fn starting_after(last: u64) -> Self {
        Self {
            last: Arc::new(AtomicU64::new(last)),
        }
    }

    /// The next nonce for time `now_ms`: `max(now_ms, last + 1)`, lock-free.
    pub fn next_at(&self, now_ms: u64) -> u64 {
        let mut current = self.last.load(Ordering::Relaxed);
        loop {
            let next = now_ms.max(current.saturating_add(1));
            match self.last.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(actual) => current = actual,
            }
        }
    }

    /// The next nonce for the current system time.
    pub fn next(&self) -> u64 {
        self.next_at(unix_ms())
    }

    /// The last nonce issued (0 before the first).
    #[must_use]
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_clock_and_never_repeats() {
        let source = NonceSource::new();
        assert_eq!(source.next_at(100), 100);
        assert_eq!(source.next_at(100), 101);
        assert_eq!(source.next_at(50), 102);
        assert_eq!(source.next_at(500), 500);
        let shared = source.clone();
        assert_eq!(shared.next_at(500), 501);
        assert_eq!(source.last(), 501);
        assert_eq!(NonceSource::starting_after(9).next_at(3), 10);
    }
}
