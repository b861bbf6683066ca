//! Nonce parsing and the nonce rules, as pure functions of (state, nonce, mode, now).
//!
//! - Strict mode: the nonce must be strictly greater than the key's high-water mark (the
//!   largest nonce it ever had accepted); a key with no accepted nonce accepts any value.
//! - Window mode (`nonceWindow: true`): `|nonce − now_ms| ≤ 5000` and never used before by
//!   this key. Uniqueness entries can be forgotten once `now` passes
//!   [`window_entry_expires_at`].
//! - Every accepted nonce, in either mode, raises the high-water mark to `max(last, nonce)`.
//!
//! Nonces are `u64` end to end; nothing here goes through floating point.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ApiError;
use crate::json::JsonValue;

/// Half-width of the window-mode acceptance window, in milliseconds.
pub const WINDOW_MS: u64 = 5_000;

/// Extra lifetime of a window-mode uniqueness entry beyond the window: the largest clock
/// difference tolerated between gateway instances and their store (`docs/design-decisions.md` 15).
pub const WINDOW_MARGIN_MS: u64 = 5_000;

/// How a request's nonce is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonceMode {
    /// Strictly above the key's high-water mark (`nonceWindow` absent or `false`).
    Strict,
    /// Within ±5 s of server time and unique (`nonceWindow: true`).
    Window,
}

impl NonceMode {
    /// The mode a `nonceWindow` value selects.
    #[must_use]
    pub const fn from_window_flag(window: bool) -> Self {
        if window {
            NonceMode::Window
        } else {
            NonceMode::Strict
        }
    }
}

/// Parses a `nonce` value: a JSON integer, or a canonical string of digits (`"0"` or no
/// leading zero), that fits in `u64`. No sign, no fraction, no exponent, no whitespace.
pub fn parse_nonce(value: &JsonValue<'_>) -> Result<u64, ApiError> {
    let digits = match value {
        JsonValue::Number(text) => *text,
        JsonValue::String(text) => {
            let text = text.as_ref();
            if text.len() > 1 && text.starts_with('0') {
                return Err(ApiError::InvalidNonce);
            }
            text
        }
        _ => return Err(ApiError::InvalidNonce),
    };
    parse_u64_digits(digits).ok_or(ApiError::InvalidNonce)
}

/// Parses a non-empty run of ASCII digits into a `u64` (`None` on overflow or any other
/// character). Leading zeros are the caller's concern.
#[must_use]
pub fn parse_u64_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Window mode, time part (row 16a): `|nonce − now_ms| ≤ 5000`, inclusive.
pub fn check_window_time(nonce: u64, now_ms: u64) -> Result<(), ApiError> {
    if nonce < now_ms.saturating_sub(WINDOW_MS) {
        Err(ApiError::NonceTooOld)
    } else if nonce > now_ms.saturating_add(WINDOW_MS) {
        Err(ApiError::NonceTooNew)
    } else {
        Ok(())
    }
}

/// Strict mode (row 16c): above the high-water mark, if there is one.
pub fn check_strict(high_water: Option<u64>, nonce: u64) -> Result<(), ApiError> {
    match high_water {
        Some(last) if nonce <= last => Err(ApiError::NonceNotIncreasing),
        _ => Ok(()),
    }
}

/// The full decision for one request, given what the store knows about the key:
/// its high-water mark and whether this nonce is in its window-mode uniqueness set.
pub fn decide(
    high_water: Option<u64>,
    seen_in_window: bool,
    nonce: u64,
    mode: NonceMode,
    now_ms: u64,
) -> Result<(), ApiError> {
    match mode {
        NonceMode::Strict => check_strict(high_water, nonce),
        NonceMode::Window => {
            check_window_time(nonce, now_ms)?;
            if seen_in_window {
                Err(ApiError::NonceReused)
            } else {
                Ok(())
            }
        }
    }
}

/// The high-water mark after accepting `nonce`.
#[must_use]
pub fn raise(high_water: Option<u64>, nonce: u64) -> u64 {
    high_water.map_or(nonce, |last| last.max(nonce))
}

/// When a window-mode uniqueness entry for `nonce` may be forgotten (absolute ms):
/// `nonce + 5000 + margin`. Any later request with this nonce fails the time check anyway.
#[must_use]
pub const fn window_entry_expires_at(nonce: u64) -> u64 {
    nonce.saturating_add(WINDOW_MS + WINDOW_MARGIN_MS)
}

/// An in-memory reference model of one key's nonce state: the rules above, applied.
///
/// Stores implement the same behaviour durably; this model is what property tests compare
/// them with.
#[derive(Debug, Clone, Default)]
pub struct NonceBook {
    high_water: Option<u64>,
    window: BTreeSet<u64>,
}

impl NonceBook {
    /// A key that never had a nonce accepted.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The key's high-water mark.
    #[must_use]
    pub fn high_water(&self) -> Option<u64> {
        self.high_water
    }

    /// Checks without changing anything (what a rate limiter asks first).
    pub fn check(&self, nonce: u64, mode: NonceMode, now_ms: u64) -> Result<(), ApiError> {
        decide(
            self.high_water,
            self.window.contains(&nonce),
            nonce,
            mode,
            now_ms,
        )
    }

    /// Checks and, when accepted, records the nonce. Expired window entries are forgotten.
    pub fn consume(&mut self, nonce: u64, mode: NonceMode, now_ms: u64) -> Result<(), ApiError> {
        self.expire(now_ms);
        self.check(nonce, mode, now_ms)?;
        self.high_water = Some(raise(self.high_water, nonce));
        if mode == NonceMode::Window {
            self.window.insert(nonce);
        }
        Ok(())
    }

    /// Forgets window entries whose expiry is at or before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        while let Some(&first) = self.window.first() {
            if window_entry_expires_at(first) > now_ms {
                break;
            }
            self.window.pop_first();
        }
    }

    /// Number of live window entries.
    #[must_use]
    pub fn window_len(&self) -> usize {
        self.window.len()
    }
}

/// [`NonceBook`]s for many keys.
#[derive(Debug, Clone, Default)]
pub struct NonceLedger<K: Ord> {
    books: BTreeMap<K, NonceBook>,
}

impl<K: Ord> NonceLedger<K> {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self {
            books: BTreeMap::new(),
        }
    }

    /// [`NonceBook::consume`] for `key`.
    pub fn consume(
        &mut self,
        key: K,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        self.books
            .entry(key)
            .or_default()
            .consume(nonce, mode, now_ms)
    }

    /// The book of `key`, if it has one.
    #[must_use]
    pub fn book(&self, key: &K) -> Option<&NonceBook> {
        self.books.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn nonce_of(json: &str) -> Result<u64, ApiError> {
        parse_nonce(&parse(json.as_bytes()).expect("valid json"))
    }

    #[test]
    fn nonce_parsing() {
        assert_eq!(nonce_of("1594297865000"), Ok(1_594_297_865_000));
        assert_eq!(nonce_of("0"), Ok(0));
        assert_eq!(nonce_of("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(nonce_of(r#""1594297865000""#), Ok(1_594_297_865_000));
        assert_eq!(nonce_of(r#""0""#), Ok(0));
        for bad in [
            "18446744073709551616",
            "-1",
            "-0",
            "1.0",
            "1e3",
            "1E3",
            "true",
            "[1]",
            "{}",
            r#""""#,
            r#""01""#,
            r#""+1""#,
            r#""-1""#,
            r#"" 1""#,
            r#""1.5""#,
            r#""0x10""#,
            r#""18446744073709551616""#,
        ] {
            assert_eq!(nonce_of(bad), Err(ApiError::InvalidNonce), "{bad}");
        }
    }

    #[test]
    fn window_edges_are_inclusive() {
        let now = 1_700_000_000_000;
        assert_eq!(check_window_time(now - 5000, now), Ok(()));
        assert_eq!(check_window_time(now + 5000, now), Ok(()));
        assert_eq!(
            check_window_time(now - 5001, now),
            Err(ApiError::NonceTooOld)
        );
        assert_eq!(
            check_window_time(now + 5001, now),
            Err(ApiError::NonceTooNew)
        );
        assert_eq!(check_window_time(0, 3000), Ok(()));
        assert_eq!(check_window_time(u64::MAX, u64::MAX - 10), Ok(()));
    }

    #[test]
    fn book_follows_the_rules() {
        let now = 1_700_000_000_000;
        let mut book = NonceBook::new();
        // A fresh key accepts anything, 0 included.
        assert_eq!(book.consume(0, NonceMode::Strict, now), Ok(()));
        assert_eq!(
            book.consume(0, NonceMode::Strict, now),
            Err(ApiError::NonceNotIncreasing)
        );
        assert_eq!(book.consume(5, NonceMode::Strict, now), Ok(()));
        // Window: unique, any order within the window.
        assert_eq!(book.consume(now + 10, NonceMode::Window, now), Ok(()));
        assert_eq!(book.consume(now + 5, NonceMode::Window, now), Ok(()));
        assert_eq!(
            book.consume(now + 10, NonceMode::Window, now),
            Err(ApiError::NonceReused)
        );
        // Window acceptance raised the high-water mark: strict must now exceed it.
        assert_eq!(book.high_water(), Some(now + 10));
        assert_eq!(
            book.consume(now + 10, NonceMode::Strict, now),
            Err(ApiError::NonceNotIncreasing)
        );
        assert_eq!(book.consume(now + 11, NonceMode::Strict, now), Ok(()));
        // Entries expire after nonce + window + margin.
        assert_eq!(book.window_len(), 2);
        book.expire(window_entry_expires_at(now + 5));
        assert_eq!(book.window_len(), 1);
        book.expire(window_entry_expires_at(now + 10));
        assert_eq!(book.window_len(), 0);
    }

    #[test]
    fn ledger_separates_keys() {
        let mut ledger = NonceLedger::new();
        assert_eq!(ledger.consume("a", 7, NonceMode::Strict, 0), Ok(()));
        assert_eq!(ledger.consume("b", 7, NonceMode::Strict, 0), Ok(()));
        assert_eq!(
            ledger.consume("a", 7, NonceMode::Strict, 0),
            Err(ApiError::NonceNotIncreasing)
        );
        assert_eq!(ledger.book(&"a").and_then(NonceBook::high_water), Some(7));
    }
}
