//! Byte encodings used by the scheme: standard base64 for `X-TXC-PAYLOAD` and hex for
//! `X-TXC-SIGNATURE`.
//!
//! Decoding is strict where the specification is strict (`docs/design-decisions.md` 3): the standard
//! alphabet only, `=` padding optional but correct when present, trailing bits zero, no
//! whitespace.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Encoder: standard alphabet, always padded (the canonical form clients send).
const ENCODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_encode_padding(true),
);

/// Decoder: standard alphabet, padding optional, no trailing bits.
const DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(false),
);

/// Encodes bytes as padded standard base64.
#[must_use]
pub fn base64_encode(bytes: &[u8]) -> String {
    ENCODER.encode(bytes)
}

/// Decodes standard base64 strictly (padding optional). Returns `None` for anything else:
/// URL-safe characters, whitespace, wrong padding, non-zero trailing bits.
#[must_use]
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    DECODER.decode(text).ok()
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Encodes bytes as lowercase hex.
#[must_use]
pub fn hex_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    hex_encode_into(bytes, &mut out);
    out
}

/// Appends the lowercase hex of `bytes` to `out` (a caller's buffer: one that is wiped on
/// drop, for key material).
pub fn hex_encode_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        out.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
        out.push(char::from(HEX_LOWER[usize::from(b & 0x0f)]));
    }
}

const fn hex_nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The value of every byte as a hex digit, `0x10` (a bit no digit has) for the others.
const HEX_VALUES: [u8; 256] = {
    let mut table = [0x10u8; 256];
    let mut i = 0;
    while i < 256 {
        if let Some(v) = hex_nibble(i as u8) {
            table[i] = v;
        }
        i += 1;
    }
    table
};

/// Decodes hex of either case into exactly `N` bytes; `None` when the length is not `2 * N`
/// or a character is not a hex digit.
#[must_use]
pub fn hex_decode_array<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex_decode_into(text, &mut out).then_some(out)
}

/// Decodes hex of either case into exactly `out.len()` bytes of a caller's buffer (one that
/// is wiped on drop, for key material); `false` when the length is not `2 * out.len()` or a
/// character is not a hex digit (`out` may then be partly written).
#[must_use]
pub fn hex_decode_into(text: &[u8], out: &mut [u8]) -> bool {
    if text.len() != out.len() * 2 {
        return false;
    }
    // Without a branch per character: the stray bit of a non-digit is collected and looked
    // at once at the end.
    let mut stray = 0u8;
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (HEX_VALUES[usize::from(*hi)], HEX_VALUES[usize::from(*lo)]),
            _ => (0x10, 0x10),
        };
        stray |= hi | lo;
        *slot = (hi << 4) | (lo & 0x0f);
    }
    stray & 0x10 == 0
}

/// Decodes hex of either case into bytes of any even length.
#[must_use]
pub fn hex_decode(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; text.len() / 2];
    hex_decode_into(text, &mut out).then_some(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters (`A–Z a–z 0–9 - . _ ~`):
/// safe for a URL path segment, a query value or an otpauth label.
#[must_use]
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
        }
    }
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encoding() {
        assert_eq!(
            super::percent_encode("alice smith@x/y~-_.é"),
            "alice%20smith%40x%2Fy~-_.%C3%A9"
        );
    }

    use super::*;

    #[test]
    fn base64_accepts_padded_and_unpadded() {
        assert_eq!(base64_decode(b"YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode(b"YWI").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }

    #[test]
    fn base64_rejects_non_standard_input() {
        // URL-safe alphabet, whitespace, bad padding, non-zero trailing bits.
        assert!(base64_decode(b"-_8=").is_none());
        assert!(base64_decode(b"YW I=").is_none());
        assert!(base64_decode(b"YWI\n").is_none());
        assert!(base64_decode(b"YWI==").is_none());
        assert!(base64_decode(b"YWJ=").is_none());
        assert!(base64_decode(b"Y").is_none());
    }

    #[test]
    fn hex_round_trip_and_case() {
        assert_eq!(hex_encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode_array::<3>(b"00ABfF"), Some([0x00, 0xab, 0xff]));
        assert_eq!(hex_decode_array::<3>(b"00abf"), None);
        assert_eq!(hex_decode_array::<2>(b"0g00"), None);
        assert_eq!(hex_decode(b"0a0B").as_deref(), Some(&[0x0a, 0x0b][..]));
        assert_eq!(hex_decode(b"0a0"), None);
    }

    /// Every pair of bytes decodes as the digit-by-digit definition says.
    #[test]
    fn every_byte_pair_decodes_as_defined() {
        for hi in 0..=255u8 {
            for lo in 0..=255u8 {
                let mut out = [0u8; 1];
                let expected = hex_nibble(hi)
                    .zip(hex_nibble(lo))
                    .map(|(h, l)| (h << 4) | l);
                let decoded = hex_decode_into(&[hi, lo], &mut out).then_some(out[0]);
                assert_eq!(decoded, expected, "{hi:#x} {lo:#x}");
            }
        }
    }
}
