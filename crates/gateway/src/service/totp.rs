//! TOTP second factor (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits), as authenticator apps
//! implement it. A code is accepted once (the last used step is remembered) with a skew of
//! ±1 step (`docs/design-decisions.md` 17).

use hmac::{Hmac, KeyInit, Mac as _};
use sha1::Sha1;
use subtle::ConstantTimeEq as _;

/// Seconds per time step.
pub(crate) const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub(crate) const DIGITS: u32 = 6;
/// Steps accepted on either side of the current one.
pub(crate) const SKEW_STEPS: u64 = 1;

/// The code for a time step (RFC 4226 dynamic truncation).
#[must_use]
pub fn code_at_step(secret: &[u8], step: u64) -> u32 {
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    binary % 10u32.pow(DIGITS)
}

/// The step of a Unix millisecond time.
#[must_use]
pub const fn step_of(now_ms: u64) -> u64 {
    now_ms / 1000 / STEP_SECONDS
}

/// Checks `code` at `now_ms`. Returns the matched step when the code is right and its step
/// is after `last_step` (single use); the caller stores it as the new `last_step`.
#[must_use]
pub(crate) fn verify(
    secret: &[u8],
    code: &str,
    now_ms: u64,
    last_step: Option<u64>,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(now_ms);
    let mut matched = None;
    // Check every candidate step, so timing does not tell which one matched.
    for step in now.saturating_sub(SKEW_STEPS)..=now.saturating_add(SKEW_STEPS) {
        let expected = format!(
            "{:0width$}",
            code_at_step(secret, step),
            width = DIGITS as usize
        );
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched.filter(|step| last_step.is_none_or(|last| *step > last))
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (the form authenticator apps expect).
#[must_use]
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://totp/…` URI an authenticator app scans.
#[must_use]
pub(crate) fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        whitebit_auth::encoding::percent_encode(issuer),
        whitebit_auth::encoding::percent_encode(account),
        base32_encode(secret),
        whitebit_auth::encoding::percent_encode(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8-digit values; we use the last 6 digits).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (seconds, eight_digits) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(
                code_at_step(secret, seconds / STEP_SECONDS),
                eight_digits % 1_000_000,
                "t={seconds}"
            );
        }
    }

    #[test]
    fn codes_are_single_use_with_skew() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890_000;
        let code = format!("{:06}", code_at_step(secret, step_of(now)));
        let step = verify(secret, &code, now, None).expect("accepted");
        assert_eq!(verify(secret, &code, now, Some(step)), None, "single use");
        let previous = format!("{:06}", code_at_step(secret, step_of(now) - 1));
        assert!(
            verify(secret, &previous, now, None).is_some(),
            "one step of skew"
        );
        let old = format!("{:06}", code_at_step(secret, step_of(now) - 2));
        assert_eq!(verify(secret, &old, now, None), None);
        assert_eq!(verify(secret, "12345", now, None), None);
        assert_eq!(verify(secret, "abcdef", now, None), None);
    }

    #[test]
    fn base32_and_uri() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        let uri = otpauth_uri("wbauth", "alice smith", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/wbauth:alice%20smith?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=wbauth&algorithm=SHA1&digits=6&period=30"
        );
    }
}
