//! The stable finding codes, and the row of `docs/errors.md` each problem answers with.

use crate::error::ApiError;

/// Neither a body nor an `X-TXC-PAYLOAD` value was given.
pub const NOTHING_GIVEN: &str = "nothing-given";
/// No body was given; the checks ran on the decoded payload.
pub const BODY_NOT_GIVEN: &str = "body-not-given";
/// No `X-TXC-PAYLOAD` value was given.
pub const PAYLOAD_NOT_GIVEN: &str = "payload-not-given";
/// `X-TXC-PAYLOAD` was given but empty.
pub const PAYLOAD_EMPTY: &str = "payload-empty";
/// The payload uses the URL-safe base64 alphabet (`-`, `_`).
pub const PAYLOAD_URL_SAFE_BASE64: &str = "payload-url-safe-base64";
/// The payload contains whitespace or line breaks.
pub const PAYLOAD_WHITESPACE: &str = "payload-whitespace";
/// The payload's `=` padding is wrong.
pub const PAYLOAD_BAD_PADDING: &str = "payload-bad-padding";
/// The payload is broken base64 for another reason.
pub const PAYLOAD_NOT_BASE64: &str = "payload-not-base64";
/// The payload is the base64 of exactly the body.
pub const PAYLOAD_MATCHES_BODY: &str = "payload-matches-body";
/// The decoded payload differs from the body.
pub const PAYLOAD_BODY_MISMATCH: &str = "payload-body-mismatch";
/// The decoded payload and the body differ in bytes but are the same JSON value.
pub const PAYLOAD_BODY_SAME_JSON: &str = "payload-body-same-json";
/// The body is spaced, pretty-printed or escaped JSON.
pub const BODY_NONCANONICAL_JSON: &str = "body-noncanonical-json";
/// The document is not valid JSON.
pub const JSON_INVALID: &str = "json-invalid";
/// The document has a duplicate object key.
pub const JSON_DUPLICATE_KEY: &str = "json-duplicate-key";
/// The document is JSON but not an object.
pub const JSON_NOT_OBJECT: &str = "json-not-object";
/// `request` is absent or null.
pub const REQUEST_MISSING: &str = "request-missing";
/// `request` is not a string.
pub const REQUEST_NOT_STRING: &str = "request-not-string";
/// `request` does not start with `/`.
pub const REQUEST_NOT_ABSOLUTE: &str = "request-not-absolute";
/// `request` has a query string or fragment.
pub const REQUEST_HAS_QUERY: &str = "request-has-query";
/// `request` is not an acceptable path for another reason.
pub const REQUEST_INVALID_PATH: &str = "request-invalid-path";
/// `request` differs from the URL path.
pub const REQUEST_PATH_MISMATCH: &str = "request-path-mismatch";
/// `request` matches the URL path.
pub const REQUEST_MATCHES_PATH: &str = "request-matches-path";
/// `request` is a well-formed path (no URL path given to compare).
pub const REQUEST_OK: &str = "request-ok";
/// The URL path has a query string or fragment.
pub const PATH_HAS_QUERY: &str = "path-has-query";
/// The URL path is not acceptable for another reason.
pub const PATH_INVALID: &str = "path-invalid";
/// `nonce` is absent or null.
pub const NONCE_MISSING: &str = "nonce-missing";
/// `nonce` is a floating-point number.
pub const NONCE_FLOAT: &str = "nonce-float";
/// `nonce` is negative.
pub const NONCE_NEGATIVE: &str = "nonce-negative";
/// `nonce` does not fit in a u64.
pub const NONCE_TOO_LARGE: &str = "nonce-too-large";
/// `nonce` is a digit string with a leading zero.
pub const NONCE_LEADING_ZERO: &str = "nonce-leading-zero";
/// `nonce` is of the wrong type or an unusable string.
pub const NONCE_INVALID: &str = "nonce-invalid";
/// `nonce` is a canonical digit string (accepted).
pub const NONCE_STRING: &str = "nonce-string";
/// `nonce` has 10 digits: seconds instead of milliseconds.
pub const NONCE_SECONDS: &str = "nonce-seconds";
/// `nonce` has 16 or more digits: micro- or nanoseconds.
pub const NONCE_TOO_HIGH: &str = "nonce-too-high";
/// `nonce` is a small counter (accepted in strict mode).
pub const NONCE_SMALL_COUNTER: &str = "nonce-small-counter";
/// `nonce` is not a plausible Unix time in milliseconds.
pub const NONCE_UNUSUAL_MAGNITUDE: &str = "nonce-unusual-magnitude";
/// Window mode and the nonce is more than 5 s from the current time.
pub const NONCE_OUTSIDE_WINDOW: &str = "nonce-outside-window";
/// Window mode and the nonce is within 5 s of the current time.
pub const NONCE_IN_WINDOW: &str = "nonce-in-window";
/// Strict mode and the nonce is far in the future.
pub const NONCE_IN_FUTURE: &str = "nonce-in-future";
/// The nonce is a plausible millisecond timestamp.
pub const NONCE_OK: &str = "nonce-ok";
/// `nonceWindow` is present but not a boolean.
pub const NONCE_WINDOW_NOT_BOOLEAN: &str = "nonce-window-not-boolean";
/// No `X-TXC-SIGNATURE` value was given.
pub const SIGNATURE_NOT_GIVEN: &str = "signature-not-given";
/// `X-TXC-SIGNATURE` was given but empty.
pub const SIGNATURE_EMPTY: &str = "signature-empty";
/// The signature is not hex.
pub const SIGNATURE_NOT_HEX: &str = "signature-not-hex";
/// The signature looks like base64.
pub const SIGNATURE_BASE64: &str = "signature-base64";
/// The signature is hex of the wrong length.
pub const SIGNATURE_WRONG_LENGTH: &str = "signature-wrong-length";
/// The signature uses uppercase hex (accepted).
pub const SIGNATURE_UPPERCASE: &str = "signature-uppercase";
/// The signature is correct.
pub const SIGNATURE_VALID: &str = "signature-valid";
/// The signature is the HMAC of the raw body instead of the payload.
pub const SIGNATURE_OVER_BODY: &str = "signature-over-body";
/// The signature is right for base64(body), but the payload header is something else.
pub const SIGNATURE_PAYLOAD_HEADER_DIFFERS: &str = "signature-payload-header-differs";
/// The signature is the HMAC of the payload plus a trailing line break.
pub const SIGNATURE_OVER_PAYLOAD_NEWLINE: &str = "signature-over-payload-newline";
/// The signature was keyed with the secret hex- or base64-decoded.
pub const SIGNATURE_SECRET_DECODED: &str = "signature-secret-decoded";
/// The signature was keyed with the secret plus or minus surrounding whitespace.
pub const SIGNATURE_SECRET_WHITESPACE: &str = "signature-secret-whitespace";
/// The signature is HMAC(key = payload, message = secret).
pub const SIGNATURE_KEY_MESSAGE_SWAPPED: &str = "signature-key-message-swapped";
/// The signature is a plain SHA-512 of the payload, not an HMAC.
pub const SIGNATURE_PLAIN_HASH: &str = "signature-plain-hash";
/// The signature does not match, for no recognisable reason.
pub const SIGNATURE_MISMATCH: &str = "signature-mismatch";
/// The signature could not be checked (no secret or no payload).
pub const SIGNATURE_UNCHECKED: &str = "signature-unchecked";
/// The secret given is empty.
pub const SECRET_EMPTY: &str = "secret-empty";
/// The request itself contains the API secret.
pub const SECRET_IN_REQUEST: &str = "secret-in-request";
/// A `Content-Type` header names another media type than `application/json`.
pub const CONTENT_TYPE_NOT_JSON: &str = "content-type-not-json";
/// `X-TXC-PAYLOAD` was sent more than once.
pub const PAYLOAD_HEADER_REPEATED: &str = "payload-header-repeated";
/// `X-TXC-APIKEY` or `X-TXC-SIGNATURE` was sent more than once.
pub const HEADER_REPEATED: &str = "header-repeated";
/// The server holds no key named by `X-TXC-APIKEY`.
pub const KEY_UNKNOWN: &str = "key-unknown";
/// Strict mode and the nonce is not greater than the key's last accepted nonce.
pub const NONCE_NOT_INCREASING: &str = "nonce-not-increasing";
/// Summary: nothing wrong was found.
pub const LOOKS_CORRECT: &str = "looks-correct";

/// Every code, in the order the checks run.
pub const ALL: &[&str] = &[
    NOTHING_GIVEN,
    CONTENT_TYPE_NOT_JSON,
    PAYLOAD_HEADER_REPEATED,
    HEADER_REPEATED,
    BODY_NOT_GIVEN,
    PAYLOAD_NOT_GIVEN,
    PAYLOAD_EMPTY,
    PAYLOAD_URL_SAFE_BASE64,
    PAYLOAD_WHITESPACE,
    PAYLOAD_BAD_PADDING,
    PAYLOAD_NOT_BASE64,
    PAYLOAD_MATCHES_BODY,
    PAYLOAD_BODY_MISMATCH,
    PAYLOAD_BODY_SAME_JSON,
    BODY_NONCANONICAL_JSON,
    JSON_INVALID,
    JSON_DUPLICATE_KEY,
    JSON_NOT_OBJECT,
    REQUEST_MISSING,
    REQUEST_NOT_STRING,
    REQUEST_NOT_ABSOLUTE,
    REQUEST_HAS_QUERY,
    REQUEST_INVALID_PATH,
    REQUEST_PATH_MISMATCH,
    REQUEST_MATCHES_PATH,
    REQUEST_OK,
    PATH_HAS_QUERY,
    PATH_INVALID,
    NONCE_MISSING,
    NONCE_FLOAT,
    NONCE_NEGATIVE,
    NONCE_TOO_LARGE,
    NONCE_LEADING_ZERO,
    NONCE_INVALID,
    NONCE_STRING,
    NONCE_SECONDS,
    NONCE_TOO_HIGH,
    NONCE_SMALL_COUNTER,
    NONCE_UNUSUAL_MAGNITUDE,
    NONCE_OUTSIDE_WINDOW,
    NONCE_IN_WINDOW,
    NONCE_IN_FUTURE,
    NONCE_OK,
    NONCE_WINDOW_NOT_BOOLEAN,
    NONCE_NOT_INCREASING,
    KEY_UNKNOWN,
    SIGNATURE_NOT_GIVEN,
    SIGNATURE_EMPTY,
    SIGNATURE_NOT_HEX,
    SIGNATURE_BASE64,
    SIGNATURE_WRONG_LENGTH,
    SIGNATURE_UPPERCASE,
    SIGNATURE_VALID,
    SIGNATURE_OVER_BODY,
    SIGNATURE_PAYLOAD_HEADER_DIFFERS,
    SIGNATURE_OVER_PAYLOAD_NEWLINE,
    SIGNATURE_SECRET_DECODED,
    SIGNATURE_SECRET_WHITESPACE,
    SIGNATURE_KEY_MESSAGE_SWAPPED,
    SIGNATURE_PLAIN_HASH,
    SIGNATURE_MISMATCH,
    SIGNATURE_UNCHECKED,
    SECRET_EMPTY,
    SECRET_IN_REQUEST,
    LOOKS_CORRECT,
];

/// The problems the verifier lets through: the doctor reports them because they break the
/// client later or leak the secret, not because this request is refused. A nonce in seconds or
/// in micro- or nanoseconds passes a key's first strict-mode request (and in window mode also
/// gets [`NONCE_OUTSIDE_WINDOW`]); the secret inside the request is a leak, not a refusal; and
/// [`NOTHING_GIVEN`] is about the capture, not the request.
pub const ADVISORY: &[&str] = &[
    NOTHING_GIVEN,
    NONCE_SECONDS,
    NONCE_TOO_HIGH,
    SECRET_IN_REQUEST,
];

/// The row of `docs/errors.md` the verifier refuses a request at when the doctor reports
/// `code` as a problem: `"6"` for [`PAYLOAD_NOT_BASE64`], `"16a"` for
/// [`NONCE_OUTSIDE_WINDOW`]. `None` for the [`ADVISORY`] problems and for codes that are
/// never problems.
#[must_use]
pub fn row(code: &str) -> Option<&'static str> {
    let refusal = match code {
        CONTENT_TYPE_NOT_JSON => ApiError::UnsupportedMediaType,
        PAYLOAD_EMPTY => ApiError::PayloadNotProvided,
        SIGNATURE_EMPTY => ApiError::SignatureNotProvided,
        PAYLOAD_HEADER_REPEATED
        | PAYLOAD_URL_SAFE_BASE64
        | PAYLOAD_WHITESPACE
        | PAYLOAD_BAD_PADDING
        | PAYLOAD_NOT_BASE64
        | PAYLOAD_BODY_MISMATCH
        | JSON_INVALID
        | JSON_DUPLICATE_KEY
        | JSON_NOT_OBJECT => ApiError::InvalidPayload,
        REQUEST_MISSING | REQUEST_NOT_STRING => ApiError::RequestNotProvided,
        REQUEST_NOT_ABSOLUTE
        | REQUEST_HAS_QUERY
        | REQUEST_INVALID_PATH
        | REQUEST_PATH_MISMATCH
        | PATH_HAS_QUERY
        | PATH_INVALID => ApiError::RequestPathMismatch,
        NONCE_MISSING => ApiError::NonceNotProvided,
        NONCE_FLOAT | NONCE_NEGATIVE | NONCE_TOO_LARGE | NONCE_LEADING_ZERO | NONCE_INVALID => {
            ApiError::InvalidNonce
        }
        NONCE_WINDOW_NOT_BOOLEAN => ApiError::InvalidNonceWindow,
        HEADER_REPEATED
        | KEY_UNKNOWN
        | SIGNATURE_NOT_HEX
        | SIGNATURE_BASE64
        | SIGNATURE_WRONG_LENGTH
        | SIGNATURE_OVER_BODY
        | SIGNATURE_PAYLOAD_HEADER_DIFFERS
        | SIGNATURE_OVER_PAYLOAD_NEWLINE
        | SIGNATURE_SECRET_DECODED
        | SIGNATURE_SECRET_WHITESPACE
        | SIGNATURE_KEY_MESSAGE_SWAPPED
        | SIGNATURE_PLAIN_HASH
        | SIGNATURE_MISMATCH => ApiError::Unauthorized,
        // Too old or too new: one row.
        NONCE_OUTSIDE_WINDOW => ApiError::NonceTooOld,
        NONCE_NOT_INCREASING => ApiError::NonceNotIncreasing,
        _ => return None,
    };
    Some(refusal.row())
}

/// One short sentence (ASCII) on what to do about the problem `code`, for a one-line answer
/// header; `None` for codes without one (the full message says more).
#[must_use]
pub fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        CONTENT_TYPE_NOT_JSON => "Send Content-Type: application/json (or no Content-Type).",
        PAYLOAD_HEADER_REPEATED | HEADER_REPEATED => "Send each X-TXC-* header exactly once.",
        PAYLOAD_EMPTY | PAYLOAD_NOT_GIVEN => "Send X-TXC-PAYLOAD: the standard base64 of the body.",
        SIGNATURE_EMPTY | SIGNATURE_NOT_GIVEN => {
            "Send X-TXC-SIGNATURE: hex HMAC-SHA512 of the payload."
        }
        PAYLOAD_URL_SAFE_BASE64 => {
            "Encode the payload with standard base64 (+ and /), not URL-safe."
        }
        PAYLOAD_WHITESPACE => "Remove line breaks and spaces from X-TXC-PAYLOAD.",
        PAYLOAD_BAD_PADDING | PAYLOAD_NOT_BASE64 => {
            "Set X-TXC-PAYLOAD to the standard base64 of the body bytes."
        }
        PAYLOAD_BODY_MISMATCH => {
            "Send exactly the bytes you base64-encoded as the body (serialise the JSON once)."
        }
        JSON_INVALID | JSON_NOT_OBJECT | JSON_DUPLICATE_KEY => {
            "Send one JSON object without repeated keys."
        }
        REQUEST_MISSING | REQUEST_NOT_STRING => "Add \"request\": the endpoint path as a string.",
        REQUEST_NOT_ABSOLUTE
        | REQUEST_HAS_QUERY
        | REQUEST_INVALID_PATH
        | REQUEST_PATH_MISMATCH
        | PATH_HAS_QUERY
        | PATH_INVALID => "Set \"request\" to exactly the URL path you POST to.",
        NONCE_MISSING => "Add \"nonce\": the current Unix time in milliseconds.",
        NONCE_FLOAT | NONCE_NEGATIVE | NONCE_TOO_LARGE | NONCE_LEADING_ZERO | NONCE_INVALID => {
            "Send \"nonce\" as a JSON integer of Unix milliseconds."
        }
        NONCE_SECONDS => "The nonce is in seconds; use milliseconds (13 digits).",
        NONCE_TOO_HIGH => "The nonce is in micro- or nanoseconds; use milliseconds (13 digits).",
        NONCE_OUTSIDE_WINDOW => "Take the nonce from a synchronised clock right before sending.",
        NONCE_WINDOW_NOT_BOOLEAN => "Send \"nonceWindow\" as true or false.",
        NONCE_NOT_INCREASING => "Use a nonce greater than the last one this key had accepted.",
        KEY_UNKNOWN => "Send the API key this server issued in X-TXC-APIKEY.",
        SIGNATURE_OVER_BODY | SIGNATURE_PAYLOAD_HEADER_DIFFERS => {
            "Sign the X-TXC-PAYLOAD value (the base64), not the JSON body."
        }
        SIGNATURE_BASE64 => "Encode the signature as hex, not base64.",
        SIGNATURE_NOT_HEX | SIGNATURE_WRONG_LENGTH => {
            "Send the signature as 128 hex digits (HMAC-SHA512)."
        }
        SIGNATURE_OVER_PAYLOAD_NEWLINE => "Sign the payload without a trailing line break.",
        SIGNATURE_SECRET_DECODED => "Use the secret's text as the HMAC key; do not decode it.",
        SIGNATURE_SECRET_WHITESPACE => "Trim whitespace from the secret (and add none).",
        SIGNATURE_KEY_MESSAGE_SWAPPED => "HMAC key = secret, message = payload (swapped).",
        SIGNATURE_PLAIN_HASH => "Use HMAC-SHA512 keyed with the secret, not a plain SHA-512.",
        SIGNATURE_MISMATCH => "Check the secret and that you sign the exact payload sent.",
        SECRET_IN_REQUEST => "Never send the secret; it only keys the HMAC.",
        _ => return None,
    })
}
