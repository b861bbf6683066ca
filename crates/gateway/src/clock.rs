//! Time, injected. Production uses the system clock; builds with the `test-clock` feature can
//! also run on a clock that tests set and advance (`docs/design-decisions.md` 29).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        whitebit_auth::time::unix_ms()
    }
}

/// A clock that stands still until told to move. Starts at the system time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock frozen at `now_ms`.
    #[must_use]
    pub fn at(now_ms: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(now_ms)),
        }
    }

    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.now.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The clock of builds with the `test-clock` feature: it follows the system clock (plus an
/// offset) until a test freezes it; tests then set and advance it at will
/// (`POST /test/clock` on the admin listener). Release builds never contain it.
#[cfg(feature = "test-clock")]
#[derive(Debug, Default)]
pub struct TestClock {
    /// Added to the system time while not frozen.
    offset_ms: std::sync::atomic::AtomicI64,
    /// Frozen time (0: not frozen).
    frozen_ms: AtomicU64,
}

#[cfg(feature = "test-clock")]
impl TestClock {
    /// Freezes the clock at `now_ms`.
    pub fn set(&self, now_ms: u64) {
        self.frozen_ms.store(now_ms.max(1), Ordering::SeqCst);
    }

    /// Moves the clock forward by `ms` (frozen or not).
    pub fn advance(&self, ms: u64) {
        if self.frozen_ms.load(Ordering::SeqCst) == 0 {
            let delta = i64::try_from(ms).unwrap_or(i64::MAX);
            self.offset_ms.fetch_add(delta, Ordering::SeqCst);
        } else {
            self.frozen_ms.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Back to following the system clock (the offset is kept).
    pub fn release(&self) {
        self.frozen_ms.store(0, Ordering::SeqCst);
    }
}

#[cfg(feature = "test-clock")]
impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        match self.frozen_ms.load(Ordering::SeqCst) {
            0 => SystemClock
                .now_ms()
                .saturating_add_signed(self.offset_ms.load(Ordering::SeqCst)),
            frozen => frozen,
        }
    }
}

#[cfg(all(test, feature = "test-clock"))]
mod tests {
    use super::*;

    #[test]
    fn test_clock_freezes_and_advances() {
        let clock = TestClock::default();
        let real = SystemClock.now_ms();
        assert!(clock.now_ms() >= real);
        clock.advance(1_000_000);
        assert!(clock.now_ms() >= real + 1_000_000);
        clock.set(5_000);
        assert_eq!(clock.now_ms(), 5_000);
        clock.advance(30_000);
        assert_eq!(clock.now_ms(), 35_000);
        clock.release();
        assert!(clock.now_ms() >= real + 1_000_000);
    }
}
