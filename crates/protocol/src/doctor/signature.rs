//! The signature: its format, its value, and the usual ways of computing it wrongly; and the
//! secret never being sent.

use hmac::{Hmac, KeyInit, Mac as _};
use sha2::{Digest as _, Sha256, Sha512};

use crate::encoding::{base64_decode, base64_encode, hex_decode, hex_encode};
use crate::error::ApiError;
use crate::mac::{HmacSha512Key, Signature, sign_payload};
use crate::verify::{self, HeaderValue};

use super::capture::Capture;
use super::code;
use super::payload::is_base64_char;
use super::report::{Out, answer};

pub(super) fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> Option<String> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
    mac.update(message);
    Some(hex_encode(&mac.finalize().into_bytes()))
}

pub(super) fn sha512_hex(message: &[u8]) -> String {
    hex_encode(&Sha512::digest(message))
}

pub(super) fn check_signature(
    capture: &Capture<'_>,
    secret: Option<&[u8]>,
    decoded: Option<&[u8]>,
    out: &mut Out<'_>,
) {
    let unauthorized = answer(ApiError::Unauthorized);
    let Some(signature) = capture.signature else {
        out.note(
            code::SIGNATURE_NOT_GIVEN,
            "No X-TXC-SIGNATURE value was given, so the signature was not checked.".to_owned(),
        );
        return;
    };
    if HeaderValue::from_value(signature.as_bytes()) == HeaderValue::Missing {
        out.problem(
            code::SIGNATURE_EMPTY,
            format!(
                "X-TXC-SIGNATURE is empty; it must be the lowercase hex HMAC-SHA512 of the \
                 X-TXC-PAYLOAD text ({}).",
                answer(ApiError::SignatureNotProvided)
            ),
        );
        return;
    }
    let payload = capture
        .payload
        .filter(|p| HeaderValue::from_value(p.as_bytes()) != HeaderValue::Missing);
    // The correct signature, when it can be computed.
    let expected = match (secret, payload) {
        (Some(secret), Some(payload)) => Some(sign_payload(secret, payload.as_bytes())),
        _ => None,
    };

    let Some(parsed) = Signature::from_hex(signature.as_bytes()) else {
        diagnose_signature_format(signature, secret, payload, expected.as_deref(), out);
        return;
    };
    if signature.bytes().any(|b| b.is_ascii_uppercase()) {
        out.note(
            code::SIGNATURE_UPPERCASE,
            "X-TXC-SIGNATURE uses uppercase hex letters; that is fine and accepted (lowercase \
             is the canonical form)."
                .to_owned(),
        );
    }
    let given = signature.to_ascii_lowercase();

    let (Some(secret), Some(payload)) = (secret, payload) else {
        if let Some(payload) = payload
            && sha512_hex(payload.as_bytes()) == given
        {
            out.problem(
                code::SIGNATURE_PLAIN_HASH,
                format!(
                    "X-TXC-SIGNATURE is a plain SHA-512 hash of the payload, not an HMAC: it \
                     must be HMAC-SHA512 keyed with the API secret ({unauthorized})."
                ),
            );
            return;
        }
        let why = if secret.is_none() {
            "without the API secret (set WBAUTH_API_SECRET)"
        } else {
            "without the X-TXC-PAYLOAD value it was computed over"
        };
        out.note(
            code::SIGNATURE_UNCHECKED,
            format!(
                "X-TXC-SIGNATURE is well-formed (128 hex characters), but whether it is right \
                 cannot be checked {why}."
            ),
        );
        return;
    };

    if verify::signature_matches(&HmacSha512Key::new(secret), payload, Some(&parsed)) {
        out.ok(
            code::SIGNATURE_VALID,
            "X-TXC-SIGNATURE is the correct HMAC-SHA512 of the X-TXC-PAYLOAD text under the \
             given secret."
                .to_owned(),
        );
        return;
    }

    let payload_bytes = payload.as_bytes();
    let signed_by = |key: &[u8], message: &[u8]| sign_payload(key, message) == given;

    // Over the JSON instead of the base64 text.
    let body = capture.body;
    for (candidate, what) in [
        (body, "the raw body bytes"),
        (decoded, "the decoded payload JSON"),
    ] {
        if let Some(candidate) = candidate
            && candidate != payload_bytes
            && signed_by(secret, candidate)
        {
            out.problem(
                code::SIGNATURE_OVER_BODY,
                format!(
                    "The signature was computed over the raw body instead of the payload: it is \
                     the HMAC of {what}. It must be computed over the X-TXC-PAYLOAD text (the \
                     base64 string's bytes) ({unauthorized})."
                ),
            );
            return;
        }
    }
    if let Some(body) = body {
        let body_payload = base64_encode(body);
        if body_payload != payload && signed_by(secret, body_payload.as_bytes()) {
            out.problem(
                code::SIGNATURE_PAYLOAD_HEADER_DIFFERS,
                format!(
                    "The signature is right for the base64 of the body, but X-TXC-PAYLOAD is not \
                     that text: the header was changed after signing (re-encoded, unpadded, \
                     wrapped…). The gateway computes the HMAC over the header exactly as \
                     received, so send the exact payload string that was signed ({unauthorized})."
                ),
            );
            return;
        }
    }
    for suffix in [&b"\n"[..], b"\r\n"] {
        let mut with_newline = payload_bytes.to_vec();
        with_newline.extend_from_slice(suffix);
        if signed_by(secret, &with_newline) {
            out.problem(
                code::SIGNATURE_OVER_PAYLOAD_NEWLINE,
                format!(
                    "The signature is the HMAC of the payload followed by a line break (typical \
                     of `echo` without -n piped into openssl). Sign exactly the payload text, \
                     with nothing appended ({unauthorized})."
                ),
            );
            return;
        }
    }
    let decoded_secrets = [
        (hex_decode(secret), "hex-decoded"),
        (base64_decode(secret), "base64-decoded"),
    ];
    for (key, how) in decoded_secrets {
        if let Some(key) = key
            && !key.is_empty()
            && signed_by(&key, payload_bytes)
        {
            out.problem(
                code::SIGNATURE_SECRET_DECODED,
                format!(
                    "The signature was keyed with the secret {how} into bytes. The secret must \
                     be used as its UTF-8 text, exactly as issued, without decoding it \
                     ({unauthorized})."
                ),
            );
            return;
        }
    }
    let trimmed = secret.trim_ascii();
    let mut with_newline = secret.to_vec();
    with_newline.push(b'\n');
    let whitespace_variant = if trimmed.len() != secret.len() && !trimmed.is_empty() {
        signed_by(trimmed, payload_bytes).then_some(
            "the secret without the whitespace or line break around the secret given here",
        )
    } else {
        None
    }
    .or_else(|| {
        signed_by(&with_newline, payload_bytes).then_some("the secret followed by a line break")
    });
    if let Some(variant) = whitespace_variant {
        out.problem(
            code::SIGNATURE_SECRET_WHITESPACE,
            format!(
                "The signature was keyed with {variant}. Whitespace around the secret (often a \
                 line break read from a file or environment variable) changes the HMAC; use the \
                 secret exactly as issued ({unauthorized})."
            ),
        );
        return;
    }
    if signed_by(payload_bytes, secret) {
        out.problem(
            code::SIGNATURE_KEY_MESSAGE_SWAPPED,
            format!(
                "The signature is an HMAC keyed with the payload over the secret: the key and \
                 message arguments are swapped. Use the secret as the key and the payload text \
                 as the message ({unauthorized})."
            ),
        );
        return;
    }
    if sha512_hex(payload_bytes) == given {
        out.problem(
            code::SIGNATURE_PLAIN_HASH,
            format!(
                "X-TXC-SIGNATURE is a plain SHA-512 hash of the payload, not an HMAC: it must be \
                 HMAC-SHA512 keyed with the API secret ({unauthorized})."
            ),
        );
        return;
    }
    out.problem(
        code::SIGNATURE_MISMATCH,
        format!(
            "The signature does not match: either the secret is wrong or the payload header \
             differs from what was signed — the doctor cannot tell which ({unauthorized})."
        ),
    );
}

/// Explains a signature that is not 128 hex digits.
fn diagnose_signature_format(
    signature: &str,
    secret: Option<&[u8]>,
    payload: Option<&str>,
    expected: Option<&str>,
    out: &mut Out<'_>,
) {
    let unauthorized = answer(ApiError::Unauthorized);
    let bytes = signature.as_bytes();
    let len = bytes.len();
    let all_hex = bytes.iter().all(u8::is_ascii_hexdigit);
    let expected_form = "It must be exactly 128 hex characters, the lowercase hex of the \
                         64-byte HMAC-SHA512.";

    if !all_hex {
        let prefix_hint = if signature.starts_with("0x") || signature.starts_with("0X") {
            " Remove the \"0x\" prefix."
        } else if let Some((scheme, _)) = signature.split_once('=')
            && scheme.len() < 10
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !scheme.is_empty()
        {
            " Remove the scheme prefix before '='; the header carries the bare hex digits."
        } else {
            ""
        };
        let trimmed = signature.trim();
        if prefix_hint.is_empty()
            && trimmed.len() != len
            && Signature::from_hex(trimmed.as_bytes()).is_some()
        {
            out.problem(
                code::SIGNATURE_NOT_HEX,
                format!(
                    "X-TXC-SIGNATURE has whitespace around otherwise valid hex digits; the \
                     header must hold only the 128 hex characters ({unauthorized})."
                ),
            );
            return;
        }
        let base64_form = if prefix_hint.is_empty()
            && bytes
                .iter()
                .all(|&b| is_base64_char(b) || matches!(b, b'=' | b'-' | b'_'))
        {
            let standard: Vec<u8> = bytes
                .iter()
                .map(|&b| match b {
                    b'-' => b'+',
                    b'_' => b'/',
                    other => other,
                })
                .collect();
            base64_decode(&standard).filter(|raw| {
                // Typical tag sizes, or characters only base64 has.
                matches!(raw.len(), 20 | 32 | 48 | 64)
                    || (!raw.is_empty()
                        && bytes
                            .iter()
                            .any(|b| matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')))
            })
        } else {
            None
        };
        if let Some(raw) = base64_form {
            let mut message = format!(
                "X-TXC-SIGNATURE looks like base64 ({len} characters, {} bytes when decoded); \
                 signatures are hex, not base64 ({unauthorized}). {expected_form}",
                raw.len()
            );
            if let Some(expected) = expected
                && hex_encode(&raw) == expected
            {
                message.push_str(
                    " It is in fact the correct HMAC-SHA512 of the payload, only encoded as \
                     base64 instead of hex.",
                );
            } else if raw.len() == 32 {
                message.push_str(" 32 bytes is the size of a SHA-256 digest (HMAC-SHA256?).");
            }
            out.problem(code::SIGNATURE_BASE64, message);
            return;
        }
        let (at, bad) = signature
            .char_indices()
            .find(|&(_, c)| !c.is_ascii_hexdigit())
            .unwrap_or((0, '?'));
        let whitespace = if signature.chars().any(char::is_whitespace) {
            " It contains whitespace."
        } else {
            ""
        };
        out.problem(
            code::SIGNATURE_NOT_HEX,
            format!(
                "X-TXC-SIGNATURE is not hex: {bad:?} at position {at} is not a hex digit \
                 ({unauthorized}).{whitespace}{prefix_hint} {expected_form}"
            ),
        );
        return;
    }

    let lower = signature.to_ascii_lowercase();
    let mut message = format!(
        "X-TXC-SIGNATURE has {len} hex characters, but an HMAC-SHA512 signature is 128 hex \
         characters, 64 bytes ({unauthorized})."
    );
    let truncated = expected.is_some_and(|e| len < e.len() && e.starts_with(&lower));
    match len {
        64 => {
            message.push_str(
                " 64 hex characters is the size of a SHA-256 digest: it looks like HMAC-SHA256, \
                 or a SHA-512 signature truncated to half.",
            );
            if truncated {
                message
                    .push_str(" It is the first half of the correct signature: it was truncated.");
            } else if let (Some(secret), Some(payload)) = (secret, payload)
                && hmac_sha256_hex(secret, payload.as_bytes()).as_deref() == Some(lower.as_str())
            {
                message.push_str(" It is HMAC-SHA256 of the payload: use HMAC-SHA512.");
            }
        }
        96 => message.push_str(" 96 hex characters is the size of a SHA-384 digest."),
        40 => message.push_str(" 40 hex characters is the size of a SHA-1 digest."),
        256 => {
            if hex_decode(bytes)
                .is_some_and(|inner| inner.len() == 128 && inner.iter().all(u8::is_ascii_hexdigit))
            {
                message.push_str(" It is hex-encoded twice: encode the 64-byte tag as hex once.");
            }
        }
        _ => {
            if truncated {
                message
                    .push_str(" It is the beginning of the correct signature: it was truncated.");
            } else if len % 2 == 1 {
                message.push_str(" An odd number of hex digits cannot encode whole bytes.");
            }
        }
    }
    out.problem(code::SIGNATURE_WRONG_LENGTH, message);
}

/// A Problem when the request itself carries the secret.
pub(super) fn check_secret_not_sent(
    secret: &[u8],
    capture: &Capture<'_>,
    decoded: Option<&[u8]>,
    out: &mut Out<'_>,
) {
    if secret.len() < 8 {
        return;
    }
    let contains = |haystack: &[u8]| haystack.windows(secret.len()).any(|w| w == secret);
    let mut places = Vec::new();
    if capture.body.is_some_and(contains) {
        places.push("the body");
    }
    if decoded.is_some_and(contains) && capture.body.is_none() {
        places.push("the decoded payload");
    }
    if capture.path.is_some_and(|p| contains(p.as_bytes())) {
        places.push("the URL path");
    }
    if capture.signature.is_some_and(|s| contains(s.as_bytes())) {
        places.push("X-TXC-SIGNATURE");
    }
    if !places.is_empty() {
        out.problem(
            code::SECRET_IN_REQUEST,
            format!(
                "The API secret itself appears in {}. The secret must never be sent: it is only \
                 the HMAC key. Treat it as leaked and rotate it.",
                places.join(" and ")
            ),
        );
    }
}
