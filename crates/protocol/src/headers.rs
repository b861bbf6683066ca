//! The header names of the scheme, written once (`docs/protocol.md`).
//!
//! Header names are case-insensitive. [`API_KEY`], [`PAYLOAD`] and [`SIGNATURE`] are the
//! canonical spelling, for people (messages, `wbauth sign`); the `*_LOWERCASE` names are the
//! same names in the lower case HTTP/2 requires, which `http::HeaderName::from_static`
//! accepts and HTTP libraries send. They are derived from the canonical names, not written
//! again.

/// An ASCII name in lower case, computed at compile time.
macro_rules! lowercase {
    ($name:expr) => {{
        const BYTES: [u8; $name.len()] = ascii_lowercase($name);
        match core::str::from_utf8(&BYTES) {
            Ok(text) => text,
            Err(_) => panic!("header names are ASCII"),
        }
    }};
}

/// `X-TXC-APIKEY`: the public API key.
pub const API_KEY: &str = "X-TXC-APIKEY";
/// `X-TXC-PAYLOAD`: the standard base64 of the body.
pub const PAYLOAD: &str = "X-TXC-PAYLOAD";
/// `X-TXC-SIGNATURE`: the lowercase hex HMAC-SHA512 of the payload.
pub const SIGNATURE: &str = "X-TXC-SIGNATURE";

/// [`API_KEY`] in lower case.
pub const API_KEY_LOWERCASE: &str = lowercase!(API_KEY);
/// [`PAYLOAD`] in lower case.
pub const PAYLOAD_LOWERCASE: &str = lowercase!(PAYLOAD);
/// [`SIGNATURE`] in lower case.
pub const SIGNATURE_LOWERCASE: &str = lowercase!(SIGNATURE);

/// The media type of every signed request body and of every JSON answer
/// (`Content-Type: application/json`).
pub const JSON_MEDIA_TYPE: &str = "application/json";

/// Whether one `Content-Type` value names [`JSON_MEDIA_TYPE`]: the media type before any `;`,
/// trimmed, compared regardless of case; parameters (`; charset=utf-8`) are ignored. A value
/// with bytes outside visible ASCII, space and tab is not (`docs/errors.md`, the 415 row).
#[must_use]
pub fn is_json_content_type(value: &[u8]) -> bool {
    if value
        .iter()
        .any(|&b| b != b'\t' && !(0x20..0x7f).contains(&b))
    {
        return false;
    }
    let media = value.split(|&b| b == b';').next().unwrap_or_default();
    media
        .trim_ascii()
        .eq_ignore_ascii_case(JSON_MEDIA_TYPE.as_bytes())
}

/// The bytes of `name` in ASCII lower case; `N` is its length.
const fn ascii_lowercase<const N: usize>(name: &str) -> [u8; N] {
    let bytes = name.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i].to_ascii_lowercase();
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_names_are_the_canonical_names() {
        assert_eq!(API_KEY_LOWERCASE, "x-txc-apikey");
        assert_eq!(PAYLOAD_LOWERCASE, "x-txc-payload");
        assert_eq!(SIGNATURE_LOWERCASE, "x-txc-signature");
        for (name, lower) in [
            (API_KEY, API_KEY_LOWERCASE),
            (PAYLOAD, PAYLOAD_LOWERCASE),
            (SIGNATURE, SIGNATURE_LOWERCASE),
        ] {
            assert!(name.eq_ignore_ascii_case(lower));
            assert_eq!(name.to_ascii_uppercase(), name);
        }
    }
}
