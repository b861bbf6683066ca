//! Store health: what `/readyz` answers and what the `wbauth_*_store_up` gauges show.
//!
//! Ready means: the key store answers, the nonce store answers, and — for a nonce store with a
//! clock of its own (Redis, PostgreSQL) — the instance's clock is within half the window
//! margin of the store's (`docs/design-decisions.md` 15), since window-mode entries expire by the store's
//! clock while the window is checked by the instance's.

use whitebit_auth::nonce::WINDOW_MARGIN_MS;

use wbauth_store::{KeyStore, NonceStore};

/// The largest tolerated difference between the instance's clock and the nonce store's.
pub(crate) const MAX_CLOCK_SKEW_MS: u64 = WINDOW_MARGIN_MS / 2;

/// Why the instance is not ready (the text `/readyz` shows; never a secret or a URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotReady {
    /// The key store does not answer.
    KeyStore,
    /// The nonce store does not answer.
    NonceStore,
    /// The clocks differ by this many milliseconds.
    ClockSkew(u64),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::KeyStore => f.write_str("the key store does not answer"),
            NotReady::NonceStore => f.write_str("the nonce store does not answer"),
            NotReady::ClockSkew(ms) => write!(
                f,
                "this instance's clock differs from the nonce store's by {ms} ms (at most \
                 {MAX_CLOCK_SKEW_MS} ms tolerated)"
            ),
        }
    }
}

/// The result of one health check of both stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    /// The key store answered.
    pub(crate) key_store_up: bool,
    /// The nonce store answered.
    pub(crate) nonce_store_up: bool,
    /// Instance clock minus store clock, when the store has a clock.
    pub(crate) clock_skew_ms: Option<u64>,
}

impl Health {
    /// Ready, or the first reason not to be.
    ///
    /// # Errors
    /// The first failed condition.
    pub(crate) fn ready(&self) -> Result<(), NotReady> {
        if !self.key_store_up {
            return Err(NotReady::KeyStore);
        }
        if !self.nonce_store_up {
            return Err(NotReady::NonceStore);
        }
        match self.clock_skew_ms {
            Some(skew) if skew > MAX_CLOCK_SKEW_MS => Err(NotReady::ClockSkew(skew)),
            _ => Ok(()),
        }
    }
}

/// Asks both stores (concurrently); `now_ms` is the instance's clock.
pub(crate) async fn check(keys: &dyn KeyStore, nonces: &dyn NonceStore, now_ms: u64) -> Health {
    let (key_store, nonce_store) = tokio::join!(keys.health(), nonces.health());
    if let Err(e) = &key_store {
        tracing::warn!(target: "wbauth::store", "key store health check: {e}");
    }
    if let Err(e) = &nonce_store {
        tracing::warn!(target: "wbauth::store", "nonce store health check: {e}");
    }
    let clock_skew_ms = nonce_store
        .as_ref()
        .ok()
        .and_then(|h| h.clock_ms)
        .map(|store| store.abs_diff(now_ms));
    Health {
        key_store_up: key_store.is_ok(),
        nonce_store_up: nonce_store.is_ok(),
        clock_skew_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(key: bool, nonce: bool, skew: Option<u64>) -> Health {
        Health {
            key_store_up: key,
            nonce_store_up: nonce,
            clock_skew_ms: skew,
        }
    }

    #[test]
    fn readiness_names_the_first_failed_condition() {
        assert_eq!(health(true, true, None).ready(), Ok(()));
        assert_eq!(health(true, true, Some(MAX_CLOCK_SKEW_MS)).ready(), Ok(()));
        assert_eq!(
            health(true, true, Some(MAX_CLOCK_SKEW_MS + 1)).ready(),
            Err(NotReady::ClockSkew(MAX_CLOCK_SKEW_MS + 1))
        );
        assert_eq!(health(false, false, None).ready(), Err(NotReady::KeyStore));
        assert_eq!(health(true, false, None).ready(), Err(NotReady::NonceStore));
        assert!(
            NotReady::ClockSkew(3000)
                .to_string()
                .contains("3000 ms (at most 2500 ms")
        );
    }
}
