//! Unix milliseconds: the system clock's reading ([`unix_ms`]) and UTC calendar time, from
//! which every date the project prints comes.
//!
//! Three places print a time, each to its own precision, and their output is pinned by tests:
//!
//! | precision | example | printed by |
//! | --- | --- | --- |
//! | [`Precision::Minute`] | `2023-11-14 22:13 UTC` | the gateway's console |
//! | [`Precision::Second`] | `2023-11-14 22:13:20 UTC` | `wbauth`'s admin commands |
//! | [`Precision::Millisecond`] | `2023-11-14 22:13:20.000 UTC` | `wbauth doctor` |

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The system clock in Unix milliseconds (0 if the clock is before 1970): the one reading of
/// it that the client, the gateway and the conformance suite share.
#[must_use]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Offset (server − local, ms) from a whole-second server time (`GET /api/v4/public/time`)
/// observed between `sent_ms` and `received_ms` on the local clock: the server's time is taken
/// as the middle of its second at the round trip's midpoint.
#[must_use]
pub fn estimate_offset_ms(server_seconds: u64, sent_ms: u64, received_ms: u64) -> i64 {
    let midpoint = sent_ms / 2 + received_ms / 2 + (sent_ms % 2 + received_ms % 2) / 2;
    let server_ms = server_seconds.saturating_mul(1000).saturating_add(500);
    let diff = i128::from(server_ms) - i128::from(midpoint);
    i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX })
}

/// How much of the time of day [`format_utc`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `HH:MM`.
    Minute,
    /// `HH:MM:SS`.
    Second,
    /// `HH:MM:SS.mmm`.
    Millisecond,
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM[:SS[.mmm]] UTC`, to `precision` (truncated, not
/// rounded).
#[must_use]
pub fn format_utc(ms: u64, precision: Precision) -> String {
    let secs = ms / 1000;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2));
    let mut out = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    );
    if precision != Precision::Minute {
        let _ = write!(out, ":{:02}", rem % 60);
    }
    if precision == Precision::Millisecond {
        let _ = write!(out, ".{:03}", ms % 1000);
    }
    out.push_str(" UTC");
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_uses_the_midpoint_and_the_middle_of_the_second() {
        assert_eq!(
            estimate_offset_ms(1_700_000_000, 1_700_000_000_400, 1_700_000_000_600),
            0
        );
        assert_eq!(
            estimate_offset_ms(1_700_000_010, 1_700_000_000_000, 1_700_000_000_000),
            10_500
        );
        assert_eq!(
            estimate_offset_ms(1_700_000_000, 1_700_000_003_000, 1_700_000_003_001),
            -2_500
        );
    }

    #[test]
    fn the_three_precisions() {
        use Precision::*;
        for (ms, minute, second, milli) in [
            (
                0,
                "1970-01-01 00:00 UTC",
                "1970-01-01 00:00:00 UTC",
                "1970-01-01 00:00:00.000 UTC",
            ),
            (
                1_700_000_000_000,
                "2023-11-14 22:13 UTC",
                "2023-11-14 22:13:20 UTC",
                "2023-11-14 22:13:20.000 UTC",
            ),
            (
                951_782_400_123,
                "2000-02-29 00:00 UTC",
                "2000-02-29 00:00:00 UTC",
                "2000-02-29 00:00:00.123 UTC",
            ),
            (
                1_780_000_000_999,
                "2026-05-28 20:26 UTC",
                "2026-05-28 20:26:40 UTC",
                "2026-05-28 20:26:40.999 UTC",
            ),
        ] {
            assert_eq!(format_utc(ms, Minute), minute);
            assert_eq!(format_utc(ms, Second), second);
            assert_eq!(format_utc(ms, Millisecond), milli);
        }
        assert_eq!(
            format_utc(u64::MAX, Millisecond),
            "584556019-04-03 14:25:51.615 UTC"
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
    }
}
