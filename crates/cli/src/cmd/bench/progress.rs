//! The once-a-second progress line of `wbauth bench` on standard error.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::load::Load;

/// The once-a-second progress line on standard error.
pub(super) struct Ticker {
    interval: Option<tokio::time::Interval>,
    started: Instant,
    last: (Instant, u64),
    printed: bool,
}

impl Ticker {
    /// A ticker that prints only when `enabled`.
    pub(super) fn new(enabled: bool) -> Self {
        let now = Instant::now();
        let interval = enabled.then(|| {
            let mut i =
                tokio::time::interval_at(now + Duration::from_secs(1), Duration::from_secs(1));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        Self {
            interval,
            started: now,
            last: (now, 0),
            printed: false,
        }
    }

    /// The next tick (never, when disabled).
    pub(super) async fn wait(&mut self) {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// The measured phase starts now.
    pub(super) fn start(&mut self, now: Instant) {
        self.started = now;
        self.last = (now, 0);
    }

    /// A line during the warmup.
    pub(super) fn warmup(&mut self, until: Instant) {
        let left = until
            .saturating_duration_since(Instant::now())
            .as_secs_f64();
        if left >= 0.05 {
            self.print(&format!("warming up, {left:.1} s left"));
        }
    }

    /// A line during the measured phase.
    pub(super) fn measure(&mut self, load: &Load) {
        let now = Instant::now();
        let finished = load.finished.load(Ordering::Relaxed);
        let not_ok = load.not_ok.load(Ordering::Relaxed);
        let span = now.duration_since(self.last.0).as_secs_f64();
        let rate = if span > 0.0 {
            finished.saturating_sub(self.last.1) as f64 / span
        } else {
            0.0
        };
        self.last = (now, finished);
        let elapsed = now.duration_since(self.started).as_secs_f64();
        self.print(&format!(
            "{elapsed:6.1} s  {finished:>10} requests  {rate:>9.0} req/s  {not_ok} non-2xx/errors"
        ));
    }

    fn print(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line:<72}");
        let _ = err.flush();
        self.printed = true;
    }

    /// Ends the progress line.
    pub(super) fn finish(&mut self) {
        if self.printed {
            eprintln!();
        }
    }
}
