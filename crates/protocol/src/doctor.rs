//! Diagnosis of a captured private request, for `wbauth doctor`.
//!
//! [`diagnose`] takes whatever parts of a request were captured (body, `X-TXC-PAYLOAD`,
//! `X-TXC-SIGNATURE`, the URL path) plus, optionally, the API secret and the current time,
//! and explains every problem it finds in plain words. It is pure: no IO, no clock, no
//! randomness. Each [`Finding`] carries a stable kebab-case [`code`] so tools can act on it,
//! and a message for people.
//!
//! The secret is only ever used as an HMAC key: it never appears in a message (messages
//! that would quote it, for example because the body contains it, show `<secret>`
//! instead), and the expected signature is never printed either, so the output is safe to
//! paste into a bug report.

use std::borrow::Cow;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac as _};
use sha2::{Digest as _, Sha256, Sha512};

use crate::encoding::{base64_decode, base64_encode, hex_decode, hex_decode_array, hex_encode};
use crate::error::ApiError;
use crate::json::{self, JsonErrorKind, JsonObject, JsonValue};
use crate::mac::sign_payload;
use crate::nonce::{WINDOW_MS, parse_u64_digits};
use crate::path::{PathRejection, normalize_path};

/// What was captured of one request. Every part is optional: the doctor checks what it is
/// given and says what it could not check.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Capture<'a> {
    /// The HTTP body, exactly as sent.
    pub body: Option<&'a [u8]>,
    /// The `X-TXC-PAYLOAD` header value, exactly as sent.
    pub payload: Option<&'a str>,
    /// The `X-TXC-SIGNATURE` header value, exactly as sent.
    pub signature: Option<&'a str>,
    /// The API secret (as its UTF-8 bytes), to check the signature. Never shown.
    pub secret: Option<&'a [u8]>,
    /// The URL path the request was sent to.
    pub path: Option<&'a str>,
    /// The current time in Unix milliseconds, to check a window-mode nonce.
    pub now_ms: Option<u64>,
}

impl fmt::Debug for Capture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("body_len", &self.body.map(<[u8]>::len))
            .field("payload", &self.payload)
            .field("signature", &self.signature)
            .field("secret", &self.secret.map(|_| "<redacted>"))
            .field("path", &self.path)
            .field("now_ms", &self.now_ms)
            .finish()
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// A check that passed.
    Ok,
    /// Fine, but worth knowing.
    Note,
    /// The gateway would reject the request (or it leaks the secret).
    Problem,
}

impl Severity {
    /// A lowercase label: `ok`, `note` or `problem`.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Note => "note",
            Severity::Problem => "problem",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// A stable kebab-case identifier, one of [`code::ALL`].
    pub code: &'static str,
    /// A plain-English explanation with the concrete values involved.
    pub message: String,
}

impl Finding {
    /// Whether the gateway would reject the request because of this finding.
    #[must_use]
    pub fn is_problem(&self) -> bool {
        self.severity == Severity::Problem
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.severity, self.code, self.message)
    }
}

/// The stable finding codes.
pub mod code {
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
    /// Summary: nothing wrong was found.
    pub const LOOKS_CORRECT: &str = "looks-correct";

    /// Every code, in the order the checks run.
    pub const ALL: &[&str] = &[
        NOTHING_GIVEN,
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
}

/// Bytes of context shown on each side of a difference or an error position.
const CONTEXT: usize = 20;

/// Diagnoses a captured request; see the module docs. Findings come in the order the
/// gateway checks things (payload, body, JSON, `request`, `nonce`, `nonceWindow`,
/// signature), then a summary [`Severity::Ok`] finding ([`code::LOOKS_CORRECT`]) when no
/// problem was found.
#[must_use]
pub fn diagnose(capture: &Capture<'_>) -> Vec<Finding> {
    let secret = capture.secret.filter(|s| !s.is_empty());
    let mut out = Out::new(secret);
    if capture.secret == Some(&[]) {
        out.note(
            code::SECRET_EMPTY,
            "The secret given is empty, so the signature was not checked.".to_owned(),
        );
    }
    let payload = capture.payload;
    let body = capture.body;

    // Presence of the two request parts that carry the JSON.
    match (body, payload) {
        (None, None) => out.problem(
            code::NOTHING_GIVEN,
            "Neither a body nor an X-TXC-PAYLOAD value was given: there is nothing to check. \
             A private request is a POST whose JSON body is also sent, base64-encoded, in \
             X-TXC-PAYLOAD."
                .to_owned(),
        ),
        (None, Some(_)) => out.note(
            code::BODY_NOT_GIVEN,
            "No body was given, so it could not be compared with X-TXC-PAYLOAD; the JSON \
             checks ran on the decoded payload."
                .to_owned(),
        ),
        (Some(body), None) => {
            let expected = if out.contains_secret(body) {
                "the base64 of the body (not shown: the body contains the secret)".to_owned()
            } else {
                format!("`{}`", truncate(&base64_encode(body), 400))
            };
            out.note(
                code::PAYLOAD_NOT_GIVEN,
                format!(
                    "No X-TXC-PAYLOAD value was given, so the payload checks were skipped. A \
                     request without it is rejected ({}); for this body it must be {expected}.",
                    answer(ApiError::PayloadNotProvided),
                ),
            );
        }
        (Some(_), Some(_)) => {}
    }

    // Payload: strict base64, and equal to the body.
    let mut decoded = None;
    let mut repaired = None;
    if let Some(payload) = payload {
        if payload.is_empty() {
            out.problem(
                code::PAYLOAD_EMPTY,
                format!(
                    "X-TXC-PAYLOAD is empty; it must be the standard base64 of the body ({}).",
                    answer(ApiError::PayloadNotProvided)
                ),
            );
        } else {
            (decoded, repaired) = check_payload_base64(payload, &mut out);
        }
    }
    if let (Some(body), Some(decoded)) = (body, decoded.as_deref()) {
        compare_body_and_payload(body, decoded, payload.unwrap_or_default(), &mut out);
    }

    // The JSON document the gateway would read: the decoded payload (what is signed and
    // forwarded), else the body, else the payload decoded after repairing its base64.
    let document = match (&decoded, body, &repaired) {
        (Some(d), _, _) => Some((d.as_slice(), Source::Payload)),
        (None, Some(b), _) => Some((b, Source::Body)),
        (None, None, Some(r)) => Some((r.as_slice(), Source::RepairedPayload)),
        (None, None, None) => None,
    };
    if let Some(style_subject) = body.or(document.map(|(d, _)| d)) {
        note_body_style(
            style_subject,
            body.is_some(),
            decoded.as_deref(),
            body,
            &mut out,
        );
    }
    if let Some(path) = capture.path {
        check_url_path(path, &mut out);
    }
    if let Some((document, source)) = document {
        check_document(document, source, capture, &mut out);
    }

    check_signature(capture, secret, decoded.as_deref(), &mut out);

    if let Some(secret) = secret {
        check_secret_not_sent(secret, capture, decoded.as_deref(), &mut out);
    }

    if !out.has_problem() {
        let mut unchecked = Vec::new();
        if body.is_none() {
            unchecked.push("the body (not given)");
        }
        if payload.is_none() {
            unchecked.push("X-TXC-PAYLOAD (not given)");
        }
        if capture.signature.is_none() {
            unchecked.push("X-TXC-SIGNATURE (not given)");
        } else if secret.is_none() || payload.is_none() {
            unchecked.push("the signature's value (needs the secret and the payload)");
        }
        if capture.path.is_none() {
            unchecked.push("`request` against the URL path (no path given)");
        }
        let message = if unchecked.is_empty() {
            "The request looks correct: the payload is the base64 of the body, the fields are \
             well-formed and the signature matches."
                .to_owned()
        } else {
            format!(
                "The request looks correct as far as it could be checked. Not checked: {}.",
                unchecked.join("; ")
            )
        };
        out.ok(code::LOOKS_CORRECT, message);
    }

    out.finish()
}

/// Collects findings, and keeps the secret out of them.
struct Out<'s> {
    findings: Vec<Finding>,
    /// The secret, when it is long enough to be recognised in text (4 bytes or more).
    secret: Option<&'s [u8]>,
}

impl<'s> Out<'s> {
    fn new(secret: Option<&'s [u8]>) -> Self {
        Self {
            findings: Vec::new(),
            secret: secret.filter(|s| s.len() >= 4),
        }
    }

    fn contains_secret(&self, haystack: &[u8]) -> bool {
        self.secret
            .is_some_and(|s| haystack.windows(s.len()).any(|w| w == s))
    }

    /// `bytes` with every occurrence of the secret overwritten by `*` (same length, so
    /// offsets stay valid).
    fn masked<'b>(&self, bytes: &'b [u8]) -> Cow<'b, [u8]> {
        let Some(secret) = self.secret else {
            return Cow::Borrowed(bytes);
        };
        if !self.contains_secret(bytes) {
            return Cow::Borrowed(bytes);
        }
        let mut out = bytes.to_vec();
        let mut i = 0;
        while i + secret.len() <= bytes.len() {
            if &bytes[i..i + secret.len()] == secret {
                out[i..i + secret.len()].fill(b'*');
                i += secret.len();
            } else {
                i += 1;
            }
        }
        Cow::Owned(out)
    }

    /// [`context`] of the masked bytes.
    fn context(&self, bytes: &[u8], offset: usize) -> String {
        context(&self.masked(bytes), offset)
    }

    /// [`escape_bytes`] of the masked bytes.
    fn escape(&self, bytes: &[u8]) -> String {
        escape_bytes(&self.masked(bytes))
    }

    /// A JSON value as compact text, masked before it is shortened to 60 characters.
    fn show(&self, value: &JsonValue<'_>) -> String {
        let mut text = String::new();
        value.write_compact(&mut text);
        truncate(&self.redact(text), 60)
    }

    /// `text` with the secret (raw, JSON-escaped or Rust-escaped) replaced by `<secret>`.
    fn redact(&self, mut text: String) -> String {
        let Some(secret) = self.secret.and_then(|s| std::str::from_utf8(s).ok()) else {
            return text;
        };
        let mut json_form = String::new();
        json::write_string(secret, &mut json_form);
        let debug_form = format!("{secret:?}");
        for form in [
            secret,
            json_form.trim_matches('"'),
            debug_form.trim_matches('"'),
        ] {
            if !form.is_empty() && text.contains(form) {
                text = text.replace(form, "<secret>");
            }
        }
        text
    }

    fn push(&mut self, severity: Severity, code: &'static str, message: String) {
        self.findings.push(Finding {
            severity,
            code,
            message,
        });
    }

    fn ok(&mut self, code: &'static str, message: String) {
        self.push(Severity::Ok, code, message);
    }

    fn note(&mut self, code: &'static str, message: String) {
        self.push(Severity::Note, code, message);
    }

    fn problem(&mut self, code: &'static str, message: String) {
        self.push(Severity::Problem, code, message);
    }

    fn has_problem(&self) -> bool {
        self.findings.iter().any(Finding::is_problem)
    }

    fn problem_count(&self) -> usize {
        self.findings.iter().filter(|f| f.is_problem()).count()
    }

    /// The findings, with any occurrence of the secret's text replaced by `<secret>`.
    fn finish(mut self) -> Vec<Finding> {
        let mut findings = std::mem::take(&mut self.findings);
        for finding in &mut findings {
            finding.message = self.redact(std::mem::take(&mut finding.message));
        }
        findings
    }
}

/// How the gateway answers `error`, for messages.
fn answer(error: ApiError) -> String {
    format!(
        "the gateway answers {} \"{}\"",
        error.status(),
        error.message()
    )
}

/// Which bytes the JSON checks ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Payload,
    Body,
    RepairedPayload,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Payload => "decoded payload",
            Source::Body => "body",
            Source::RepairedPayload => "payload (decoded after repairing its base64)",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Payload
// ---------------------------------------------------------------------------------------

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Checks the payload's base64. Returns the strictly decoded bytes, or (when strict
/// decoding fails) the bytes it decodes to once the problems found are repaired.
fn check_payload_base64(payload: &str, out: &mut Out<'_>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let bytes = payload.as_bytes();
    if let Some(decoded) = base64_decode(bytes) {
        return (Some(decoded), None);
    }
    let rejected = answer(ApiError::InvalidPayload);
    let mut explained = false;
    if payload.trim_start().starts_with('{') {
        out.problem(
            code::PAYLOAD_NOT_BASE64,
            format!(
                "X-TXC-PAYLOAD is broken base64: it looks like the raw JSON itself (`{}`). It \
                 must be the standard base64 of the body bytes ({rejected}).",
                out.escape(&bytes[..bytes.len().min(40)])
            ),
        );
        return (None, None);
    }

    // Whitespace and line breaks.
    let line_breaks = bytes.iter().filter(|&&b| b == b'\n').count();
    let lone_cr = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        .count();
    let spaces = bytes.iter().filter(|&&b| b == b' ' || b == b'\t').count();
    if let Some(first) = bytes.iter().position(|&b| is_ws(b)) {
        let mut parts = Vec::new();
        if line_breaks + lone_cr > 0 {
            parts.push(format!("{} line break(s)", line_breaks + lone_cr));
        }
        if spaces > 0 {
            parts.push(format!("{spaces} space(s) or tab(s)"));
        }
        let wrapped = if line_breaks + lone_cr > 0 {
            " Encoders that wrap lines (every 76 characters: Python's base64.encodebytes, \
             Java's MIME encoder, the `base64` or `openssl base64` command without -w0 / -A) \
             produce this."
        } else {
            ""
        };
        explained = true;
        out.problem(
            code::PAYLOAD_WHITESPACE,
            format!(
                "X-TXC-PAYLOAD contains whitespace: {}, the first at character {first}. Standard \
                 base64 in this header must be one unbroken line without spaces ({rejected}).{wrapped}",
                parts.join(" and ")
            ),
        );
    }

    // URL-safe alphabet.
    let url_safe: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'-' || b == b'_')
        .map(|(i, _)| i)
        .collect();
    if let Some(&first) = url_safe.first() {
        explained = true;
        out.problem(
            code::PAYLOAD_URL_SAFE_BASE64,
            format!(
                "X-TXC-PAYLOAD uses the URL-safe base64 alphabet: '-' or '_' appears {} time(s), \
                 the first at character {first}. The gateway accepts only the standard alphabet \
                 ('+' and '/') ({rejected}). Use standard base64 (Python base64.b64encode, not \
                 urlsafe_b64encode; Node Buffer.toString('base64'), not 'base64url').",
                url_safe.len()
            ),
        );
    }

    // Padding (looked at with whitespace removed).
    let core: Vec<u8> = bytes.iter().copied().filter(|&b| !is_ws(b)).collect();
    let trailing_pad = core.iter().rev().take_while(|&&b| b == b'=').count();
    let data_len = core.len() - trailing_pad;
    let misplaced_pad = core[..data_len].iter().position(|&b| b == b'=');
    let padding_problem = if let Some(at) = misplaced_pad {
        Some(format!(
            "'=' padding appears in the middle (at character {at} once whitespace is removed), \
             which usually means two base64 strings were joined or the body was encoded in \
             pieces"
        ))
    } else if trailing_pad > 2 {
        Some(format!(
            "it ends with {trailing_pad} '=' characters; base64 has at most two"
        ))
    } else if trailing_pad > 0 && !core.len().is_multiple_of(4) {
        Some(format!(
            "it has {trailing_pad} '=' but its length ({}) is not a multiple of 4, so the \
             padding is wrong (padding may be left out entirely, but when present it must be \
             correct)",
            core.len()
        ))
    } else {
        None
    };
    if let Some(reason) = padding_problem {
        explained = true;
        out.problem(
            code::PAYLOAD_BAD_PADDING,
            format!("X-TXC-PAYLOAD has bad padding: {reason} ({rejected})."),
        );
    }

    // What it would decode to with those problems repaired.
    let repaired_text: Vec<u8> = core[..data_len]
        .iter()
        .filter(|&&b| b != b'=')
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            other => other,
        })
        .collect();
    let repaired = base64_decode(&repaired_text);
    if repaired.is_none() || !explained {
        let detail = if let Some((at, bad)) = payload.char_indices().find(|&(_, c)| {
            !(c.is_ascii()
                && (is_base64_char(c as u8)
                    || matches!(c, '=' | '-' | '_' | ' ' | '\t' | '\r' | '\n')))
        }) {
            format!("{bad:?} at character {at} is not in the base64 alphabet")
        } else if data_len % 4 == 1 {
            format!(
                "its length without padding ({data_len}) leaves one stray character, which no \
                 byte string encodes to: it was probably cut off"
            )
        } else {
            "its last character carries non-zero unused bits, so it is not the encoding of \
             any byte string: it was probably cut off or altered"
                .to_owned()
        };
        out.problem(
            code::PAYLOAD_NOT_BASE64,
            format!("X-TXC-PAYLOAD is broken base64: {detail} ({rejected})."),
        );
    }
    (None, repaired)
}

/// Compares the body with the strictly decoded payload.
fn compare_body_and_payload(body: &[u8], decoded: &[u8], payload_text: &str, out: &mut Out<'_>) {
    if body == decoded {
        out.ok(
            code::PAYLOAD_MATCHES_BODY,
            format!(
                "X-TXC-PAYLOAD is the standard base64 of exactly the body bytes ({} bytes).",
                body.len()
            ),
        );
        return;
    }
    let offset = body
        .iter()
        .zip(decoded)
        .position(|(a, b)| a != b)
        .unwrap_or(body.len().min(decoded.len()));
    let sizes = if body.len() == decoded.len() {
        format!(
            "X-TXC-PAYLOAD decodes to {} bytes, as long as the body, but",
            decoded.len()
        )
    } else {
        format!(
            "X-TXC-PAYLOAD decodes to {} bytes while the body is {} bytes, and",
            decoded.len(),
            body.len()
        )
    };
    let mut message = format!(
        "{sizes} they first differ at byte {offset} (» marks it): body `{}` vs decoded payload \
         `{}`.",
        out.context(body, offset),
        out.context(decoded, offset)
    );
    let rejected = answer(ApiError::InvalidPayload);

    let body_json = json::parse(body);
    let payload_json = json::parse(decoded);
    if let (Ok(b), Ok(p)) = (&body_json, &payload_json)
        && b.same_value(p)
    {
        message.push_str(&format!(
            " The two are the same JSON value written differently: {}. That is what an HTTP \
             library does when it re-serialises the JSON it was given. With the gateway's \
             default body_match = \"exact\" this is rejected ({rejected}): the client must send \
             exactly the bytes it signed (serialise the JSON once, base64 those bytes for \
             X-TXC-PAYLOAD, and send the same bytes as the body instead of handing the HTTP \
             library an object to serialise).",
            describe_reserialisation(body, decoded, b, p)
        ));
        out.problem(code::PAYLOAD_BODY_MISMATCH, message);
        out.note(
            code::PAYLOAD_BODY_SAME_JSON,
            "Only a gateway configured with body_match = \"json\" accepts a body that is the \
             same JSON value as the payload (it then forwards the payload's bytes, which are \
             what was signed)."
                .to_owned(),
        );
        return;
    }

    let mut hints = Vec::new();
    if body == payload_text.as_bytes() {
        hints.push(
            "the body is the base64 payload text itself; send the JSON as the body".to_owned(),
        );
    } else if base64_decode(decoded).as_deref() == Some(body) {
        hints.push("the payload is base64-encoded twice; encode the body once".to_owned());
    }
    match (&body_json, &payload_json) {
        (Err(e), _) => hints.push(format!("the body is not valid JSON ({e})")),
        (Ok(JsonValue::Object(b)), Ok(JsonValue::Object(p))) => {
            let differences = describe_field_differences(b, p, out);
            if !differences.is_empty() {
                hints.push(format!(
                    "the JSON values differ: {}",
                    differences.join("; ")
                ));
            }
        }
        _ => {}
    }
    if !hints.is_empty() {
        message.push_str(&format!(" Also, {}.", hints.join("; ")));
    }
    message.push_str(&format!(
        " The body is not what was signed ({rejected}). Build the body once and use exactly \
         those bytes both for X-TXC-PAYLOAD and as the body (a common cause is building the \
         JSON twice, for example with a fresh nonce)."
    ));
    out.problem(code::PAYLOAD_BODY_MISMATCH, message);
}

/// Top-level fields whose values differ between two objects (at most five).
fn describe_field_differences(
    body: &JsonObject<'_>,
    payload: &JsonObject<'_>,
    out: &Out<'_>,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (key, value) in payload.iter() {
        match body.get(key) {
            None => differences.push(format!("{key:?} is only in the payload")),
            Some(other) if !other.same_value(value) => differences.push(format!(
                "{key:?} is {} in the body but {} in the payload",
                out.show(other),
                out.show(value)
            )),
            Some(_) => {}
        }
    }
    for (key, _) in body.iter() {
        if payload.get(key).is_none() {
            differences.push(format!("{key:?} is only in the body"));
        }
    }
    let more = differences.len().saturating_sub(5);
    differences.truncate(5);
    if more > 0 {
        differences.push(format!("and {more} more"));
    }
    differences
}

/// Why two byte strings holding the same JSON value differ.
fn describe_reserialisation(
    body: &[u8],
    payload: &[u8],
    body_json: &JsonValue<'_>,
    payload_json: &JsonValue<'_>,
) -> String {
    let b = scan_style(body);
    let p = scan_style(payload);
    let mut reasons = Vec::new();
    if strip_insignificant_ws(body) == strip_insignificant_ws(payload) {
        reasons.push("the difference is only whitespace".to_owned());
    }
    for (side, style, other) in [("body", &b, &p), ("payload", &p, &b)] {
        if style.newlines && !other.newlines {
            if style.only_trailing_newline {
                reasons.push(format!("the {side} ends with a line break"));
            } else {
                reasons.push(format!(
                    "the {side} is pretty-printed (line breaks and indentation)"
                ));
            }
        }
        if style.spaces && !other.spaces {
            reasons.push(format!(
                "the {side} has spaces between tokens (like `\": \"` and `\", \"`)"
            ));
        }
        if style.escaped_slash && !other.escaped_slash {
            reasons.push(format!("the {side} writes `/` as `\\/`"));
        }
        if let Some(example) = &style.escaped_printable
            && other.escaped_printable.is_none()
        {
            reasons.push(format!(
                "the {side} escapes printable characters as `\\uXXXX` (e.g. `{example}`)"
            ));
        }
        if let Some(example) = &style.escaped_non_ascii
            && other.escaped_non_ascii.is_none()
        {
            reasons.push(format!(
                "the {side} escapes non-ASCII characters as `\\uXXXX` (e.g. `{example}`)"
            ));
        }
    }
    if let (JsonValue::Object(bo), JsonValue::Object(po)) = (body_json, payload_json) {
        let order_b: Vec<&str> = bo.iter().map(|(k, _)| k).collect();
        let order_p: Vec<&str> = po.iter().map(|(k, _)| k).collect();
        if order_b != order_p {
            reasons.push("the keys are in a different order".to_owned());
        }
    }
    if reasons.is_empty() {
        reasons.push("the formatting or escaping differs".to_owned());
    }
    reasons.join("; ")
}

/// Formatting features of a JSON text.
#[derive(Debug, Default)]
struct Style {
    /// Spaces or tabs outside strings.
    spaces: bool,
    /// Line breaks outside strings.
    newlines: bool,
    /// The only line breaks are at the very end.
    only_trailing_newline: bool,
    /// `\/` inside a string.
    escaped_slash: bool,
    /// First `\uXXXX` escape of a printable ASCII character.
    escaped_printable: Option<String>,
    /// First `\uXXXX` escape of a non-ASCII character.
    escaped_non_ascii: Option<String>,
}

impl Style {
    fn features(&self) -> Vec<String> {
        let mut features = Vec::new();
        if self.spaces {
            features.push("spaces between tokens (like `\": \"` or `\", \"`)".to_owned());
        }
        if self.newlines {
            features.push(if self.only_trailing_newline {
                "a trailing line break".to_owned()
            } else {
                "line breaks and indentation (pretty-printed)".to_owned()
            });
        }
        if self.escaped_slash {
            features.push("`\\/` for `/`".to_owned());
        }
        if let Some(example) = &self.escaped_printable {
            features.push(format!(
                "`\\uXXXX` escapes of printable characters (e.g. `{example}`)"
            ));
        }
        if let Some(example) = &self.escaped_non_ascii {
            features.push(format!(
                "`\\uXXXX` escapes of non-ASCII characters (e.g. `{example}`)"
            ));
        }
        features
    }
}

/// Scans a JSON text for formatting features (strings tracked, so whitespace inside
/// strings does not count).
fn scan_style(bytes: &[u8]) -> Style {
    let mut style = Style::default();
    let mut in_string = false;
    let mut last_non_ws = 0;
    let mut first_newline = None;
    let mut first_space = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => {
                    match bytes.get(i + 1) {
                        Some(b'/') => style.escaped_slash = true,
                        Some(b'u') => {
                            let hex = bytes.get(i + 2..i + 6).and_then(hex_decode);
                            if let Some(&[hi, lo]) = hex.as_deref() {
                                let cp = u16::from_be_bytes([hi, lo]);
                                let text = String::from_utf8_lossy(&bytes[i..i + 6]).into_owned();
                                if (0x20..=0x7e).contains(&cp) {
                                    style.escaped_printable.get_or_insert(text);
                                } else if cp >= 0x80 {
                                    style.escaped_non_ascii.get_or_insert(text);
                                }
                            }
                            i += 6;
                            continue;
                        }
                        _ => {}
                    }
                    i += 2;
                    continue;
                }
                b'"' => in_string = false,
                _ => {}
            }
            last_non_ws = i;
        } else {
            match b {
                b'"' => {
                    in_string = true;
                    last_non_ws = i;
                }
                b' ' | b'\t' => {
                    first_space.get_or_insert(i);
                }
                b'\n' | b'\r' => {
                    first_newline.get_or_insert(i);
                }
                _ => last_non_ws = i,
            }
        }
        i += 1;
    }
    style.newlines = first_newline.is_some();
    style.only_trailing_newline = first_newline.is_some_and(|at| at > last_non_ws);
    // Spaces count when they sit before the end of the value (between tokens or leading).
    style.spaces = first_space.is_some_and(|at| at < last_non_ws);
    style
}

/// The JSON text with whitespace outside strings removed.
fn strip_insignificant_ws(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            out.push(b);
        } else if !is_ws(b) {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
    out
}

/// A Note when the body is valid JSON written in a non-canonical style.
fn note_body_style(
    subject: &[u8],
    is_body: bool,
    decoded: Option<&[u8]>,
    body: Option<&[u8]>,
    out: &mut Out<'_>,
) {
    if json::parse(subject).is_err() {
        return;
    }
    let features = scan_style(subject).features();
    if features.is_empty() {
        return;
    }
    let what = if is_body { "body" } else { "decoded payload" };
    let status = match (decoded, body) {
        (Some(d), Some(b)) if d == b => " Here it is, so this is fine.",
        (Some(_), Some(_)) => " Here it is not (see payload-body-mismatch).",
        _ => " Make sure the body is sent exactly as signed, not re-serialised.",
    };
    out.note(
        code::BODY_NONCANONICAL_JSON,
        format!(
            "The {what} is JSON with {}. That is acceptable only if X-TXC-PAYLOAD is the base64 of \
             exactly these bytes and the body is sent unchanged.{status}",
            features.join(", ")
        ),
    );
}

// ---------------------------------------------------------------------------------------
// JSON document and fields
// ---------------------------------------------------------------------------------------

fn check_document(document: &[u8], source: Source, capture: &Capture<'_>, out: &mut Out<'_>) {
    let name = source.name();
    let rejected = answer(ApiError::InvalidPayload);
    let root = match json::parse(document) {
        Ok(root) => root,
        Err(e) => {
            if let JsonErrorKind::DuplicateKey(key) = &e.kind {
                out.problem(
                    code::JSON_DUPLICATE_KEY,
                    format!(
                        "The {name} has the key {key:?} twice in one object ({e}). Keys are \
                         compared after unescaping (\"nonce\" and \"\\u006eonce\" are the same \
                         key). Parsers disagree on which duplicate wins, so the gateway rejects \
                         them ({rejected})."
                    ),
                );
            } else {
                let mut message = format!("The {name} is not valid JSON: {e}.");
                if document.iter().all(|&b| is_ws(b)) {
                    message.push_str(" It is empty.");
                } else {
                    message.push_str(&format!(
                        " Around there: `{}`.",
                        out.context(document, e.offset)
                    ));
                    if !document.trim_ascii_start().starts_with(b"{") && document.contains(&b'=') {
                        message.push_str(
                            " It looks form-encoded (key=value&…); the body must be a JSON \
                             object.",
                        );
                    }
                }
                message.push_str(&format!(" ({rejected})."));
                out.problem(code::JSON_INVALID, message);
            }
            return;
        }
    };
    let JsonValue::Object(fields) = &root else {
        out.problem(
            code::JSON_NOT_OBJECT,
            format!(
                "The {name} is a JSON {} (`{}`), but it must be a JSON object such as \
                 {{\"request\":\"/api/v4/trade-account/balance\",\"nonce\":1700000000000}} \
                 ({rejected}).",
                root.type_name(),
                out.show(&root)
            ),
        );
        return;
    };
    check_request_field(fields, name, capture.path, out);
    let window = match fields.get("nonceWindow") {
        None => Window::Absent,
        Some(JsonValue::Bool(b)) => Window::Set(*b),
        Some(_) => Window::Invalid,
    };
    check_nonce(fields, name, window, capture.now_ms, out);
    check_nonce_window(fields, out);
}

/// What `nonceWindow` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Absent: strict mode.
    Absent,
    /// A boolean: `true` is window mode.
    Set(bool),
    /// Present but not a boolean (rejected).
    Invalid,
}

fn check_url_path(path: &str, out: &mut Out<'_>) {
    let mismatch = answer(ApiError::RequestPathMismatch);
    match normalize_path(path) {
        Ok(_) => {}
        Err(PathRejection::QueryOrFragment) => out.problem(
            code::PATH_HAS_QUERY,
            format!(
                "The URL path {path:?} has a query string or fragment. Private endpoints take \
                 every parameter in the signed JSON body, and a URL with a query never matches \
                 `request` ({mismatch}). Move the parameters into the body."
            ),
        ),
        Err(rejection) => out.problem(
            code::PATH_INVALID,
            format!("The URL path {path:?} cannot be used: {rejection} ({mismatch})."),
        ),
    }
}

fn check_request_field(fields: &JsonObject<'_>, name: &str, path: Option<&str>, out: &mut Out<'_>) {
    let mismatch = answer(ApiError::RequestPathMismatch);
    let request = match fields.get("request") {
        None | Some(JsonValue::Null) => {
            out.problem(
                code::REQUEST_MISSING,
                format!(
                    "The {name} has no \"request\" field (or it is null). It must be the \
                     endpoint path, e.g. \"/api/v4/trade-account/balance\" ({}).",
                    answer(ApiError::RequestNotProvided)
                ),
            );
            return;
        }
        Some(JsonValue::String(s)) => s.as_ref(),
        Some(other) => {
            out.problem(
                code::REQUEST_NOT_STRING,
                format!(
                    "\"request\" is a {} (`{}`), but it must be a string holding the endpoint \
                     path ({}).",
                    other.type_name(),
                    out.show(other),
                    answer(ApiError::RequestNotProvided)
                ),
            );
            return;
        }
    };
    let normalized = match normalize_path(request) {
        Ok(normalized) => normalized,
        Err(PathRejection::NotAbsolute) => {
            let hint = if request.starts_with("http://") || request.starts_with("https://") {
                "it is a full URL; use only its path, e.g. \"/api/v4/trade-account/balance\""
                    .to_owned()
            } else {
                format!("it must be the path starting with '/', e.g. \"/{request}\"")
            };
            out.problem(
                code::REQUEST_NOT_ABSOLUTE,
                format!("\"request\" is {request:?}, which does not start with '/': {hint} ({mismatch})."),
            );
            return;
        }
        Err(PathRejection::QueryOrFragment) => {
            let query = request
                .find(['?', '#'])
                .and_then(|at| request.get(at..))
                .unwrap_or_default();
            out.problem(
                code::REQUEST_HAS_QUERY,
                format!(
                    "\"request\" is {request:?}, which has a query string or fragment \
                     ({query:?}). Private endpoints take every parameter in the signed JSON \
                     body: put them into the body as fields and make \"request\" the bare path \
                     ({mismatch})."
                ),
            );
            return;
        }
        Err(rejection) => {
            out.problem(
                code::REQUEST_INVALID_PATH,
                format!("\"request\" is {request:?}, which is not an acceptable path: {rejection} ({mismatch})."),
            );
            return;
        }
    };
    let Some(path) = path else {
        out.ok(
            code::REQUEST_OK,
            format!(
                "\"request\" is {request:?}, a well-formed path (no URL path was given to \
                 compare it with)."
            ),
        );
        return;
    };
    let Ok(url) = normalize_path(path) else {
        // Already reported by check_url_path.
        return;
    };
    if url == normalized {
        let merged = if url.as_ref() != path || normalized.as_ref() != request {
            " (after merging repeated slashes)"
        } else {
            ""
        };
        out.ok(
            code::REQUEST_MATCHES_PATH,
            format!("\"request\" {request:?} matches the URL path{merged}."),
        );
        return;
    }
    let hint = if url.eq_ignore_ascii_case(&normalized) {
        " They differ only in letter case; paths are compared case-sensitively."
    } else if url.trim_end_matches('/') == normalized.trim_end_matches('/') {
        " They differ only in a trailing slash."
    } else if url.ends_with(normalized.as_ref()) {
        " \"request\" must be the full path, including the leading part (such as /api/v4)."
    } else {
        " The path signed in the body must be the path the request is sent to."
    };
    out.problem(
        code::REQUEST_PATH_MISMATCH,
        format!(
            "\"request\" is {request:?} but the request was sent to {path:?}.{hint} ({mismatch})."
        ),
    );
}

fn check_nonce_window(fields: &JsonObject<'_>, out: &mut Out<'_>) {
    let Some(value) = fields.get("nonceWindow") else {
        return;
    };
    let detail = match value {
        JsonValue::Bool(_) => return,
        JsonValue::String(s) if s == "true" || s == "false" => {
            format!("the string \"{s}\"; it must be the JSON boolean {s} (without quotes)")
        }
        JsonValue::Number(n) => {
            format!("the number {n}; it must be the JSON boolean true or false")
        }
        JsonValue::Null => {
            "null; leave the field out or send false (null is not accepted)".to_owned()
        }
        other => format!(
            "a {} (`{}`); it must be the JSON boolean true or false",
            other.type_name(),
            out.show(other)
        ),
    };
    out.problem(
        code::NONCE_WINDOW_NOT_BOOLEAN,
        format!(
            "\"nonceWindow\" is {detail} ({}).",
            answer(ApiError::InvalidNonceWindow)
        ),
    );
}

fn check_nonce(
    fields: &JsonObject<'_>,
    name: &str,
    window: Window,
    now_ms: Option<u64>,
    out: &mut Out<'_>,
) {
    let invalid = answer(ApiError::InvalidNonce);
    let value = match fields.get("nonce") {
        None | Some(JsonValue::Null) => {
            out.problem(
                code::NONCE_MISSING,
                format!(
                    "The {name} has no \"nonce\" field (or it is null). It must be the current \
                     Unix time in milliseconds as a JSON integer, e.g. 1700000000000 ({}).",
                    answer(ApiError::NonceNotProvided)
                ),
            );
            return;
        }
        Some(value) => value,
    };
    let (text, quoted) = match value {
        JsonValue::Number(text) => (*text, false),
        JsonValue::String(text) => (text.as_ref(), true),
        other => {
            out.problem(
                code::NONCE_INVALID,
                format!(
                    "\"nonce\" is a {} (`{}`); it must be a JSON integer of milliseconds \
                     ({invalid}).",
                    other.type_name(),
                    out.show(other)
                ),
            );
            return;
        }
    };
    let shown = if quoted {
        format!("the string {text:?}")
    } else {
        text.to_owned()
    };
    if text.is_empty() {
        out.problem(
            code::NONCE_INVALID,
            format!("\"nonce\" is the empty string ({invalid})."),
        );
        return;
    }
    let is_number_text = matches!(json::parse(text.as_bytes()), Ok(JsonValue::Number(_)));
    if is_number_text && text.contains(['.', 'e', 'E']) {
        let advice = match float_as_integer(text) {
            Some(integer) => format!(
                "Its value is {integer}: send that as an integer (in Python use \
                 time.time_ns() // 1_000_000 rather than time.time() * 1000)."
            ),
            None => "It has a fractional part: round down to whole milliseconds (in Python \
                     time.time_ns() // 1_000_000)."
                .to_owned(),
        };
        out.problem(
            code::NONCE_FLOAT,
            format!(
                "\"nonce\" is {shown}, a floating-point number. The nonce must be a whole \
                 number of milliseconds written as a JSON integer; floats are rejected \
                 ({invalid}). {advice}"
            ),
        );
        return;
    }
    if is_number_text && text.starts_with('-') {
        out.problem(
            code::NONCE_NEGATIVE,
            format!(
                "\"nonce\" is {shown}, which is negative. It must be a non-negative integer \
                 (Unix time in milliseconds) ({invalid})."
            ),
        );
        return;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        let why = if text.trim() != text {
            "it has surrounding whitespace"
        } else {
            "it is not a plain string of digits"
        };
        out.problem(
            code::NONCE_INVALID,
            format!("\"nonce\" is {shown}: {why}. It must be a JSON integer of milliseconds ({invalid})."),
        );
        return;
    }
    if quoted && text.len() > 1 && text.starts_with('0') {
        out.problem(
            code::NONCE_LEADING_ZERO,
            format!(
                "\"nonce\" is {shown}, which has a leading zero. A digit-string nonce must be \
                 canonical (\"0\" or no leading zero) ({invalid})."
            ),
        );
        return;
    }
    let Some(nonce) = parse_u64_digits(text) else {
        out.problem(
            code::NONCE_TOO_LARGE,
            format!(
                "\"nonce\" is {shown}, which does not fit in an unsigned 64-bit integer (the \
                 largest is 18446744073709551615) ({invalid})."
            ),
        );
        return;
    };
    if quoted {
        out.note(
            code::NONCE_STRING,
            format!(
                "\"nonce\" is a string of digits ({text:?}); that is accepted, though a JSON \
                 integer is the canonical form."
            ),
        );
    }
    let problems_before = out.problem_count();
    let mut plausible_ms = false;
    let digits = text.len();
    match digits {
        10 => out.problem(
            code::NONCE_SECONDS,
            format!(
                "\"nonce\" {nonce} has 10 digits: that is Unix time in seconds ({}), not \
                 milliseconds ({nonce}000). With \"nonceWindow\": true it fails the ±5 s window \
                 (as milliseconds it is decades in the past); in strict mode it caps the client \
                 at one request per second, because every request in the same second reuses the \
                 nonce and is rejected ({}). Use milliseconds (Date.now(), \
                 System.currentTimeMillis(), time.time_ns() // 1_000_000).",
                utc(nonce.saturating_mul(1000)),
                answer(ApiError::NonceNotIncreasing)
            ),
        ),
        16.. => {
            let (unit, ms) = match digits {
                16 => ("microseconds", nonce / 1_000),
                19 => ("nanoseconds", nonce / 1_000_000),
                _ => ("micro- or nanoseconds", nonce / 1_000),
            };
            let when = if digits == 16 || digits == 19 {
                format!(" (as {unit} that is {})", utc(ms))
            } else {
                String::new()
            };
            out.problem(
                code::NONCE_TOO_HIGH,
                format!(
                    "\"nonce\" {nonce} has {digits} digits: it looks like {unit}{when}, not \
                     milliseconds (13 digits). In strict mode the key's nonce high-water mark is \
                     raised to it and can never be lowered again: every later millisecond nonce \
                     is rejected as not increasing, and the only way out is to rotate the key's \
                     secret. With \"nonceWindow\": true it fails the ±5 s window. Use \
                     milliseconds."
                ),
            );
        }
        13 => plausible_ms = true,
        1..=9 => {
            out.note(
                code::NONCE_SMALL_COUNTER,
                format!(
                    "\"nonce\" {nonce} is a small counter, not a Unix time in milliseconds. \
                     Strict mode accepts that as long as every nonce is greater than the last \
                     one this key used, but the counter must survive restarts and never go \
                     back; window mode (\"nonceWindow\": true) always rejects it."
                ),
            );
            if window == Window::Set(true) && now_ms.is_none() {
                out.problem(
                    code::NONCE_OUTSIDE_WINDOW,
                    format!(
                        "\"nonceWindow\" is true, so the nonce must be the current Unix time in \
                         milliseconds (±5 s), but {nonce} is a small counter ({}).",
                        answer(ApiError::NonceTooOld)
                    ),
                );
            }
        }
        _ => {
            out.note(
                code::NONCE_UNUSUAL_MAGNITUDE,
                format!(
                    "\"nonce\" {nonce} has {digits} digits; a Unix time in milliseconds has 13 \
                     (read as milliseconds it is {}). Strict mode accepts it if it is greater \
                     than the key's last nonce, but it is probably not the intended unit.",
                    utc(nonce)
                ),
            );
            if window == Window::Set(true) && now_ms.is_none() {
                out.problem(
                    code::NONCE_OUTSIDE_WINDOW,
                    format!(
                        "\"nonceWindow\" is true, so the nonce must be within ±5 s of the \
                         gateway's clock, but {nonce} ({}) is nowhere near the present ({}).",
                        utc(nonce),
                        answer(if digits < 13 {
                            ApiError::NonceTooOld
                        } else {
                            ApiError::NonceTooNew
                        })
                    ),
                );
            }
        }
    }

    let mut timing = String::new();
    if let Some(now) = now_ms {
        let diff = i128::from(nonce) - i128::from(now);
        let distance = diff.unsigned_abs();
        let direction = if diff < 0 { "behind" } else { "ahead of" };
        if window == Window::Set(true) {
            if distance > u128::from(WINDOW_MS) {
                out.problem(
                    code::NONCE_OUTSIDE_WINDOW,
                    format!(
                        "\"nonceWindow\" is true, so the nonce must be within ±5 s of the \
                         gateway's clock, but it is {} {direction} the current time ({}) ({}). \
                         Check the client's clock (NTP) and take the nonce right before sending.",
                        duration(distance),
                        utc(now),
                        answer(if diff < 0 {
                            ApiError::NonceTooOld
                        } else {
                            ApiError::NonceTooNew
                        })
                    ),
                );
            } else {
                out.ok(
                    code::NONCE_IN_WINDOW,
                    format!(
                        "The nonce is {} {direction} the current time, inside the ±5 s window.",
                        duration(distance)
                    ),
                );
            }
        } else if plausible_ms && diff > 60_000 {
            out.note(
                code::NONCE_IN_FUTURE,
                format!(
                    "The nonce is {} ahead of the current time. In strict mode that is \
                     accepted, but it raises the key's high-water mark, so later requests \
                     using the real time are rejected until the clock catches up. Check the \
                     client's clock.",
                    duration(distance)
                ),
            );
        } else if plausible_ms {
            timing = format!(
                " It is {} {direction} the current time.",
                duration(distance)
            );
        }
    }

    if plausible_ms && out.problem_count() == problems_before {
        let mode = match window {
            Window::Invalid => {
                "Its mode cannot be told because \"nonceWindow\" is not a boolean (see \
                 nonce-window-not-boolean)."
            }
            Window::Set(true) => {
                if now_ms.is_some() {
                    "Window mode (\"nonceWindow\": true): it must be within ±5 s of the \
                     gateway's clock and used only once."
                } else {
                    "Window mode (\"nonceWindow\": true): it must be within ±5 s of the \
                     gateway's clock and used only once (no current time was given to check \
                     the window)."
                }
            }
            _ => {
                "Strict mode (\"nonceWindow\" absent or false): it must be greater than every \
                 nonce this key used before."
            }
        };
        out.ok(
            code::NONCE_OK,
            format!(
                "\"nonce\" {nonce} is a Unix time in milliseconds ({}). {mode}{timing}",
                utc(nonce)
            ),
        );
    }
}

/// For a JSON number with a fraction or exponent, the integer it equals, if it is one.
fn float_as_integer(text: &str) -> Option<String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest.get(at + 1..)?.parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = format!("{int}{frac}");
    let shift = exponent.checked_sub(i64::try_from(frac.len()).ok()?)?;
    if shift >= 0 {
        if shift > 40 {
            return None;
        }
        digits.extend(std::iter::repeat_n('0', usize::try_from(shift).ok()?));
    } else {
        let cut = usize::try_from(shift.unsigned_abs()).ok()?;
        let keep = digits.len().saturating_sub(cut);
        if !digits[keep..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits.truncate(keep);
    }
    let trimmed = digits.trim_start_matches('0');
    let value = if trimmed.is_empty() { "0" } else { trimmed };
    Some(if negative && value != "0" {
        format!("-{value}")
    } else {
        value.to_owned()
    })
}

// ---------------------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------------------

fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> Option<String> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
    mac.update(message);
    Some(hex_encode(&mac.finalize().into_bytes()))
}

fn sha512_hex(message: &[u8]) -> String {
    hex_encode(&Sha512::digest(message))
}

fn check_signature(
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
    if signature.is_empty() {
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
    let payload = capture.payload.filter(|p| !p.is_empty());
    // The correct signature, when it can be computed.
    let expected = match (secret, payload) {
        (Some(secret), Some(payload)) => Some(sign_payload(secret, payload.as_bytes())),
        _ => None,
    };

    if hex_decode_array::<64>(signature.as_bytes()).is_none() {
        diagnose_signature_format(signature, secret, payload, expected.as_deref(), out);
        return;
    }
    if signature.bytes().any(|b| b.is_ascii_uppercase()) {
        out.note(
            code::SIGNATURE_UPPERCASE,
            "X-TXC-SIGNATURE uses uppercase hex letters; that is fine and accepted (lowercase \
             is the canonical form)."
                .to_owned(),
        );
    }
    let given = signature.to_ascii_lowercase();

    let (Some(secret), Some(payload), Some(expected)) = (secret, payload, expected) else {
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

    if given == expected {
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
            && hex_decode_array::<64>(trimmed.as_bytes()).is_some()
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
fn check_secret_not_sent(
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

// ---------------------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------------------

/// Escapes bytes for a message: control characters as `\n`, `\r`, `\t` or `\xNN`, invalid
/// UTF-8 as `\xNN`, everything else as is.
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let code = u32::from(c);
                    if code <= 0xff {
                        out.push_str(&format!("\\x{code:02x}"));
                    } else {
                        out.push_str(&format!("\\u{{{code:x}}}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Up to [`CONTEXT`] bytes either side of `offset`, escaped, with `»` at `offset`.
fn context(bytes: &[u8], offset: usize) -> String {
    let offset = offset.min(bytes.len());
    let start = offset.saturating_sub(CONTEXT);
    let end = offset.saturating_add(CONTEXT).min(bytes.len());
    format!(
        "{}{}»{}{}",
        if start > 0 { "…" } else { "" },
        escape_bytes(&bytes[start..offset]),
        escape_bytes(&bytes[offset..end]),
        if end < bytes.len() { "…" } else { "" }
    )
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// A UTC timestamp for Unix milliseconds: `2023-11-14 22:13:20.000 UTC`.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX / 2));
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm). Public so every UTC date the project prints comes from one place.
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

/// A duration in milliseconds as seconds, with days or years for large values.
fn duration(ms: u128) -> String {
    const DAY: u128 = 86_400_000;
    const YEAR: u128 = 31_557_600_000;
    let secs = format!("{}.{:03} s", ms / 1000, ms % 1000);
    if ms >= YEAR {
        format!("{secs} (about {} years)", tenths(ms, YEAR))
    } else if ms >= DAY {
        format!("{secs} (about {} days)", tenths(ms, DAY))
    } else {
        secs
    }
}

/// `value / unit` rounded to tenths, as a display string.
fn tenths(value: u128, unit: u128) -> String {
    let t = (value * 10 + unit / 2) / unit;
    format!("{}.{}", t / 10, t % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::HmacSha512Key;
    use crate::sign::sign_body;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const SECRET: &str = "s3cr3t-Key-For-Doctor-Tests";
    const PATH: &str = "/api/v4/trade-account/balance";
    const NOW: u64 = 1_700_000_000_000;

    /// An owned capture, easy to tweak.
    #[derive(Clone, Default)]
    struct Case {
        body: Option<Vec<u8>>,
        payload: Option<String>,
        signature: Option<String>,
        secret: Option<Vec<u8>>,
        path: Option<String>,
        now_ms: Option<u64>,
    }

    fn window_body(nonce: &str) -> String {
        format!(r#"{{"request":"{PATH}","nonce":{nonce},"nonceWindow":true,"ticker":"BTC"}}"#)
    }

    fn strict_body(nonce: &str) -> String {
        format!(r#"{{"request":"{PATH}","nonce":{nonce},"ticker":"BTC"}}"#)
    }

    fn sig(secret: &[u8], message: &[u8]) -> String {
        sign_payload(secret, message)
    }

    impl Case {
        /// A complete capture of `body`, correctly signed with [`SECRET`].
        fn signed(body: &str) -> Self {
            let s = sign_body(
                body.as_bytes().to_vec(),
                &HmacSha512Key::new(SECRET.as_bytes()),
            );
            Case {
                body: Some(s.body),
                payload: Some(s.payload),
                signature: Some(s.signature),
                secret: Some(SECRET.as_bytes().to_vec()),
                path: Some(PATH.to_owned()),
                now_ms: Some(NOW),
            }
        }

        fn valid() -> Self {
            Self::signed(&window_body(&NOW.to_string()))
        }

        fn capture(&self) -> Capture<'_> {
            Capture {
                body: self.body.as_deref(),
                payload: self.payload.as_deref(),
                signature: self.signature.as_deref(),
                secret: self.secret.as_deref(),
                path: self.path.as_deref(),
                now_ms: self.now_ms,
            }
        }

        fn payload_text(&self) -> String {
            self.payload.clone().expect("case has a payload")
        }

        /// Replaces the body only (the payload and signature stay as signed).
        fn with_body(mut self, body: &str) -> Self {
            self.body = Some(body.as_bytes().to_vec());
            self
        }

        /// Replaces the payload and re-signs it correctly, so only the payload is at fault.
        fn with_payload_resigned(mut self, payload: &str) -> Self {
            self.signature = Some(sig(SECRET.as_bytes(), payload.as_bytes()));
            self.payload = Some(payload.to_owned());
            self
        }

        fn with_signature(mut self, signature: &str) -> Self {
            self.signature = Some(signature.to_owned());
            self
        }

        fn with_secret(mut self, secret: &[u8]) -> Self {
            self.secret = Some(secret.to_vec());
            self
        }

        fn with_path(mut self, path: &str) -> Self {
            self.path = Some(path.to_owned());
            self
        }

        fn run(&self) -> Vec<Finding> {
            let findings = diagnose(&self.capture());
            check_invariants(&findings, self.secret.as_deref());
            findings
        }
    }

    /// Properties every diagnosis has.
    fn check_invariants(findings: &[Finding], secret: Option<&[u8]>) {
        assert!(!findings.is_empty());
        for f in findings {
            assert!(code::ALL.contains(&f.code), "unknown code {}", f.code);
            assert!(!f.message.is_empty(), "{} has no message", f.code);
            if let Some(secret) = secret.and_then(|s| std::str::from_utf8(s).ok()) {
                let secret = secret.trim();
                // Not even a fragment of 8 characters or more.
                let n = secret.len();
                for len in 8.min(n).max(4)..=n {
                    for start in 0..=n - len {
                        let Some(fragment) = secret.get(start..start + len) else {
                            continue;
                        };
                        assert!(
                            !f.message.contains(fragment),
                            "{} leaks part of the secret ({fragment:?}): {}",
                            f.code,
                            f.message
                        );
                    }
                }
            }
        }
        let problems = findings.iter().any(Finding::is_problem);
        let summary = findings.iter().any(|f| f.code == code::LOOKS_CORRECT);
        assert_eq!(summary, !problems, "summary iff no problems: {findings:#?}");
    }

    fn get<'f>(findings: &'f [Finding], code: &str) -> &'f Finding {
        findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("no {code} in {findings:#?}"))
    }

    fn has(findings: &[Finding], code: &str) -> bool {
        findings.iter().any(|f| f.code == code)
    }

    fn problem_codes(findings: &[Finding]) -> Vec<&'static str> {
        findings
            .iter()
            .filter(|f| f.is_problem())
            .map(|f| f.code)
            .collect()
    }

    /// A body whose payload contains both '+' and '/'.
    fn body_with_plus_and_slash() -> String {
        let mut memo = String::from("???~~~");
        loop {
            let body = format!(
                r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"memo":"{memo}"}}"#
            );
            let payload = base64_encode(body.as_bytes());
            if payload.contains('+') && payload.contains('/') {
                return body;
            }
            memo.push('?');
        }
    }

    /// One realistic case per code, with the severity it must have.
    fn cases() -> Vec<(&'static str, Case, Severity)> {
        let valid = Case::valid();
        let vp = valid.payload_text();
        let body = valid.body.clone().expect("body");
        let spaced = format!(
            r#"{{"request": "{PATH}", "nonce": {NOW}, "nonceWindow": true, "ticker": "BTC"}}"#
        );
        let url_safe = {
            let c = Case::signed(&body_with_plus_and_slash());
            let p = c.payload_text().replace('+', "-").replace('/', "_");
            c.with_payload_resigned(&p)
        };
        let long_body = format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"market":"BTC_USDT","side":"buy","amount":"0.001","price":"40000"}}"#
        );
        let wrapped = {
            let c = Case::signed(&long_body);
            let p = c.payload_text();
            let lines: Vec<String> = p
                .as_bytes()
                .chunks(76)
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            c.with_payload_resigned(&lines.join("\n"))
        };
        let padded_body = (0..3)
            .map(|n| format!("{}{}", window_body(&NOW.to_string()), " ".repeat(n)))
            .find(|b| base64_encode(b.trim_end().as_bytes()).ends_with('='))
            .map(|b| b.trim_end().to_owned())
            .unwrap_or_else(|| window_body(&NOW.to_string()));
        let _ = padded_body;
        let with_pad = Case::signed(&format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"ticker":"BTC","x":"1"}}"#
        ));
        assert!(
            with_pad.payload_text().ends_with('='),
            "need a padded payload"
        );
        let bad_padding = {
            let p = format!("{}=", with_pad.payload_text());
            with_pad.clone().with_payload_resigned(&p)
        };
        let unpadded_header = {
            // The header was stripped of its padding after signing the padded text.
            let mut c = with_pad.clone();
            c.payload = Some(with_pad.payload_text().trim_end_matches('=').to_owned());
            c
        };
        let broken = {
            let p = vp.replacen('A', "*", 1).replacen('e', "*", 1);
            let p = if p == vp { format!("*{vp}") } else { p };
            valid.clone().with_payload_resigned(&p)
        };
        let tag = hex_decode(valid.signature.clone().expect("sig").as_bytes()).expect("hex");
        let hex_secret = b"a1b2c3d4e5f60718293a4b5c6d7e8f90".to_vec();
        let hex_secret_case = {
            let key = hex_decode(&hex_secret).expect("hex");
            let s = sig(&key, vp.as_bytes());
            valid.clone().with_secret(&hex_secret).with_signature(&s)
        };
        let secret_with_newline = {
            let mut s = SECRET.as_bytes().to_vec();
            s.push(b'\n');
            s
        };

        vec![
            ("nothing", Case::default(), Severity::Problem),
            (
                "body-not-given",
                {
                    let mut c = valid.clone();
                    c.body = None;
                    c
                },
                Severity::Note,
            ),
            (
                "payload-not-given",
                {
                    let mut c = valid.clone();
                    c.payload = None;
                    c
                },
                Severity::Note,
            ),
            (
                "payload-empty",
                valid.clone().with_payload_resigned(""),
                Severity::Problem,
            ),
            ("url-safe", url_safe, Severity::Problem),
            ("wrapped", wrapped, Severity::Problem),
            ("bad-padding", bad_padding, Severity::Problem),
            ("broken", broken, Severity::Problem),
            ("valid", valid.clone(), Severity::Ok),
            (
                "spaced-body",
                valid.clone().with_body(&spaced),
                Severity::Problem,
            ),
            (
                "spaced-body-same-json",
                valid.clone().with_body(&spaced),
                Severity::Note,
            ),
            ("spaced-signed", Case::signed(&spaced), Severity::Note),
            (
                "truncated-json",
                Case::signed(&format!(r#"{{"request":"{PATH}","nonce":{NOW}"#)),
                Severity::Problem,
            ),
            (
                "duplicate",
                Case::signed(&format!(
                    r#"{{"request":"{PATH}","nonce":{NOW},"nonce":{NOW}}}"#
                )),
                Severity::Problem,
            ),
            ("array", Case::signed("[1,2,3]"), Severity::Problem),
            (
                "no-request",
                Case::signed(&format!(r#"{{"nonce":{NOW}}}"#)),
                Severity::Problem,
            ),
            (
                "request-number",
                Case::signed(&format!(r#"{{"request":5,"nonce":{NOW}}}"#)),
                Severity::Problem,
            ),
            (
                "request-relative",
                Case::signed(&format!(
                    r#"{{"request":"api/v4/trade-account/balance","nonce":{NOW}}}"#
                )),
                Severity::Problem,
            ),
            (
                "request-query",
                Case::signed(&format!(
                    r#"{{"request":"{PATH}?ticker=BTC","nonce":{NOW}}}"#
                )),
                Severity::Problem,
            ),
            (
                "request-dots",
                Case::signed(&format!(
                    r#"{{"request":"/api/v4/../v4/trade-account/balance","nonce":{NOW}}}"#
                )),
                Severity::Problem,
            ),
            (
                "request-other-path",
                Case::signed(&format!(
                    r#"{{"request":"/api/v4/main-account/balance","nonce":{NOW}}}"#
                )),
                Severity::Problem,
            ),
            ("request-matches", valid.clone(), Severity::Ok),
            (
                "request-no-path",
                {
                    let mut c = valid.clone();
                    c.path = None;
                    c
                },
                Severity::Ok,
            ),
            (
                "path-query",
                valid.clone().with_path(&format!("{PATH}?ticker=BTC")),
                Severity::Problem,
            ),
            (
                "path-relative",
                valid.clone().with_path("api/v4/trade-account/balance"),
                Severity::Problem,
            ),
            (
                "nonce-missing",
                Case::signed(&format!(r#"{{"request":"{PATH}"}}"#)),
                Severity::Problem,
            ),
            (
                "nonce-float",
                Case::signed(&window_body("1.7e12")),
                Severity::Problem,
            ),
            (
                "nonce-negative",
                Case::signed(&strict_body("-1700000000000")),
                Severity::Problem,
            ),
            (
                "nonce-too-large",
                Case::signed(&strict_body("18446744073709551616")),
                Severity::Problem,
            ),
            (
                "nonce-leading-zero",
                Case::signed(&strict_body("\"01700000000000\"")),
                Severity::Problem,
            ),
            (
                "nonce-bool",
                Case::signed(&strict_body("true")),
                Severity::Problem,
            ),
            (
                "nonce-string",
                Case::signed(&window_body(&format!("\"{NOW}\""))),
                Severity::Note,
            ),
            (
                "nonce-seconds",
                Case::signed(&strict_body("1700000000")),
                Severity::Problem,
            ),
            (
                "nonce-micros",
                Case::signed(&strict_body("1700000000000000")),
                Severity::Problem,
            ),
            (
                "nonce-counter",
                Case::signed(&strict_body("42")),
                Severity::Note,
            ),
            (
                "nonce-12-digits",
                Case::signed(&strict_body("170000000000")),
                Severity::Note,
            ),
            (
                "nonce-old",
                Case::signed(&window_body(&(NOW - 12_345).to_string())),
                Severity::Problem,
            ),
            (
                "nonce-in-window",
                Case::signed(&window_body(&(NOW + 1_500).to_string())),
                Severity::Ok,
            ),
            (
                "nonce-future",
                Case::signed(&strict_body(&(NOW + 3_600_000).to_string())),
                Severity::Note,
            ),
            ("nonce-ok", valid.clone(), Severity::Ok),
            (
                "window-string",
                Case::signed(&format!(
                    r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":"true"}}"#
                )),
                Severity::Problem,
            ),
            (
                "signature-not-given",
                {
                    let mut c = valid.clone();
                    c.signature = None;
                    c
                },
                Severity::Note,
            ),
            (
                "signature-empty",
                valid.clone().with_signature(""),
                Severity::Problem,
            ),
            (
                "signature-not-hex",
                valid.clone().with_signature(&"g".repeat(128)),
                Severity::Problem,
            ),
            (
                "signature-base64",
                valid.clone().with_signature(&base64_encode(&tag)),
                Severity::Problem,
            ),
            (
                "signature-truncated",
                valid
                    .clone()
                    .with_signature(&valid.signature.clone().expect("sig")[..64]),
                Severity::Problem,
            ),
            (
                "signature-uppercase",
                valid
                    .clone()
                    .with_signature(&valid.signature.clone().expect("sig").to_uppercase()),
                Severity::Note,
            ),
            ("signature-valid", valid.clone(), Severity::Ok),
            (
                "signature-over-body",
                valid.clone().with_signature(&sig(SECRET.as_bytes(), &body)),
                Severity::Problem,
            ),
            (
                "signature-unpadded-header",
                unpadded_header,
                Severity::Problem,
            ),
            (
                "signature-newline",
                valid
                    .clone()
                    .with_signature(&sig(SECRET.as_bytes(), format!("{vp}\n").as_bytes())),
                Severity::Problem,
            ),
            ("signature-hex-secret", hex_secret_case, Severity::Problem),
            (
                "signature-secret-newline",
                valid.clone().with_secret(&secret_with_newline),
                Severity::Problem,
            ),
            (
                "signature-swapped",
                valid
                    .clone()
                    .with_signature(&sig(vp.as_bytes(), SECRET.as_bytes())),
                Severity::Problem,
            ),
            (
                "signature-sha512",
                valid.clone().with_signature(&sha512_hex(vp.as_bytes())),
                Severity::Problem,
            ),
            (
                "signature-wrong-secret",
                valid.clone().with_secret(b"another-secret-entirely"),
                Severity::Problem,
            ),
            (
                "signature-unchecked",
                {
                    let mut c = valid.clone();
                    c.secret = None;
                    c
                },
                Severity::Note,
            ),
            (
                "secret-empty",
                valid.clone().with_secret(b""),
                Severity::Note,
            ),
            (
                "secret-in-body",
                Case::signed(&format!(
                    r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"secret":"{SECRET}"}}"#
                )),
                Severity::Problem,
            ),
            ("looks-correct", valid, Severity::Ok),
        ]
    }

    /// The code each case above is about (same order).
    const CASE_CODES: &[&str] = &[
        code::NOTHING_GIVEN,
        code::BODY_NOT_GIVEN,
        code::PAYLOAD_NOT_GIVEN,
        code::PAYLOAD_EMPTY,
        code::PAYLOAD_URL_SAFE_BASE64,
        code::PAYLOAD_WHITESPACE,
        code::PAYLOAD_BAD_PADDING,
        code::PAYLOAD_NOT_BASE64,
        code::PAYLOAD_MATCHES_BODY,
        code::PAYLOAD_BODY_MISMATCH,
        code::PAYLOAD_BODY_SAME_JSON,
        code::BODY_NONCANONICAL_JSON,
        code::JSON_INVALID,
        code::JSON_DUPLICATE_KEY,
        code::JSON_NOT_OBJECT,
        code::REQUEST_MISSING,
        code::REQUEST_NOT_STRING,
        code::REQUEST_NOT_ABSOLUTE,
        code::REQUEST_HAS_QUERY,
        code::REQUEST_INVALID_PATH,
        code::REQUEST_PATH_MISMATCH,
        code::REQUEST_MATCHES_PATH,
        code::REQUEST_OK,
        code::PATH_HAS_QUERY,
        code::PATH_INVALID,
        code::NONCE_MISSING,
        code::NONCE_FLOAT,
        code::NONCE_NEGATIVE,
        code::NONCE_TOO_LARGE,
        code::NONCE_LEADING_ZERO,
        code::NONCE_INVALID,
        code::NONCE_STRING,
        code::NONCE_SECONDS,
        code::NONCE_TOO_HIGH,
        code::NONCE_SMALL_COUNTER,
        code::NONCE_UNUSUAL_MAGNITUDE,
        code::NONCE_OUTSIDE_WINDOW,
        code::NONCE_IN_WINDOW,
        code::NONCE_IN_FUTURE,
        code::NONCE_OK,
        code::NONCE_WINDOW_NOT_BOOLEAN,
        code::SIGNATURE_NOT_GIVEN,
        code::SIGNATURE_EMPTY,
        code::SIGNATURE_NOT_HEX,
        code::SIGNATURE_BASE64,
        code::SIGNATURE_WRONG_LENGTH,
        code::SIGNATURE_UPPERCASE,
        code::SIGNATURE_VALID,
        code::SIGNATURE_OVER_BODY,
        code::SIGNATURE_PAYLOAD_HEADER_DIFFERS,
        code::SIGNATURE_OVER_PAYLOAD_NEWLINE,
        code::SIGNATURE_SECRET_DECODED,
        code::SIGNATURE_SECRET_WHITESPACE,
        code::SIGNATURE_KEY_MESSAGE_SWAPPED,
        code::SIGNATURE_PLAIN_HASH,
        code::SIGNATURE_MISMATCH,
        code::SIGNATURE_UNCHECKED,
        code::SECRET_EMPTY,
        code::SECRET_IN_REQUEST,
        code::LOOKS_CORRECT,
    ];

    #[test]
    fn every_code_is_produced_by_a_realistic_case() {
        let cases = cases();
        assert_eq!(cases.len(), CASE_CODES.len());
        let mut covered = BTreeSet::new();
        for ((name, case, severity), &expected) in cases.iter().zip(CASE_CODES) {
            let findings = case.run();
            let finding = findings
                .iter()
                .find(|f| f.code == expected)
                .unwrap_or_else(|| panic!("case {name}: no {expected} in {findings:#?}"));
            assert_eq!(finding.severity, *severity, "case {name}: {finding:?}");
            covered.insert(expected);
        }
        let all: BTreeSet<&str> = code::ALL.iter().copied().collect();
        assert_eq!(covered, all, "codes without a case");
    }

    #[test]
    fn codes_are_unique_kebab_case() {
        let unique: BTreeSet<&str> = code::ALL.iter().copied().collect();
        assert_eq!(unique.len(), code::ALL.len());
        for c in code::ALL {
            assert!(
                !c.is_empty()
                    && !c.starts_with('-')
                    && !c.ends_with('-')
                    && !c.contains("--")
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{c}"
            );
        }
    }

    #[test]
    fn a_correct_request_passes_every_check() {
        let findings = Case::valid().run();
        assert_eq!(problem_codes(&findings), Vec::<&str>::new());
        for expected in [
            code::PAYLOAD_MATCHES_BODY,
            code::REQUEST_MATCHES_PATH,
            code::NONCE_IN_WINDOW,
            code::NONCE_OK,
            code::SIGNATURE_VALID,
            code::LOOKS_CORRECT,
        ] {
            assert_eq!(
                get(&findings, expected).severity,
                Severity::Ok,
                "{expected}"
            );
        }
        assert!(
            findings.iter().all(|f| f.severity == Severity::Ok),
            "{findings:#?}"
        );
        let summary = get(&findings, code::LOOKS_CORRECT);
        assert!(summary.message.starts_with("The request looks correct"));
        assert!(!summary.message.contains("Not checked"));
    }

    #[test]
    fn a_strict_mode_request_built_by_the_signer_is_correct() {
        let mut params = serde_json::Map::new();
        params.insert("ticker".into(), serde_json::json!("BTC"));
        let body =
            crate::sign::build_body(PATH, NOW - 86_400_000, Some(false), &params).expect("body");
        let case = Case::signed(std::str::from_utf8(&body).expect("utf8"));
        let findings = case.run();
        assert_eq!(problem_codes(&findings), Vec::<&str>::new());
        assert!(
            get(&findings, code::NONCE_OK)
                .message
                .contains("Strict mode")
        );
        assert!(has(&findings, code::LOOKS_CORRECT));
    }

    #[test]
    fn partial_captures_say_what_was_not_checked() {
        let valid = Case::valid();
        let only_body = Case {
            body: valid.body.clone(),
            ..Case::default()
        };
        let findings = only_body.run();
        let note = get(&findings, code::PAYLOAD_NOT_GIVEN);
        assert!(note.message.contains(&valid.payload_text()));
        assert!(has(&findings, code::SIGNATURE_NOT_GIVEN));
        let summary = get(&findings, code::LOOKS_CORRECT);
        assert!(
            summary.message.contains("Not checked"),
            "{}",
            summary.message
        );
        assert!(summary.message.contains("X-TXC-PAYLOAD"));

        let mut no_payload = valid.clone();
        no_payload.payload = None;
        let findings = no_payload.run();
        assert!(
            get(&findings, code::SIGNATURE_UNCHECKED)
                .message
                .contains("X-TXC-PAYLOAD")
        );
    }

    #[test]
    fn url_safe_payload_is_named_and_otherwise_decodes() {
        let c = Case::signed(&body_with_plus_and_slash());
        let p = c.payload_text().replace('+', "-").replace('/', "_");
        let findings = c.with_payload_resigned(&p).run();
        let f = get(&findings, code::PAYLOAD_URL_SAFE_BASE64);
        assert!(f.message.contains("URL-safe") && f.message.contains("'+' and '/'"));
        assert!(f.message.contains("Invalid payload."));
        // The cause is fully explained: no generic "broken base64" on top.
        assert!(!has(&findings, code::PAYLOAD_NOT_BASE64), "{findings:#?}");
        // The fields were still checked on the body.
        assert!(has(&findings, code::NONCE_OK));
        // The signature over the header as sent is right.
        assert!(has(&findings, code::SIGNATURE_VALID));
    }

    #[test]
    fn wrapped_payload_mentions_line_breaks() {
        let valid = Case::valid();
        let p = valid.payload_text();
        let (a, b) = p.split_at(40);
        let findings = valid
            .clone()
            .with_payload_resigned(&format!("{a}\r\n{b}"))
            .run();
        let f = get(&findings, code::PAYLOAD_WHITESPACE);
        assert!(f.message.contains("1 line break(s)"), "{}", f.message);
        assert!(f.message.contains("character 40"), "{}", f.message);
        assert!(!has(&findings, code::PAYLOAD_NOT_BASE64));

        let findings = valid.with_payload_resigned(&format!("{a} {b}")).run();
        let f = get(&findings, code::PAYLOAD_WHITESPACE);
        assert!(f.message.contains("1 space(s)"), "{}", f.message);
    }

    #[test]
    fn broken_base64_variants() {
        let valid = Case::valid();
        let p = valid.payload_text();
        // A character outside every alphabet.
        let star = format!("{}*{}", &p[..8], &p[8..]);
        let findings = valid.clone().with_payload_resigned(&star).run();
        let f = get(&findings, code::PAYLOAD_NOT_BASE64);
        assert!(f.message.contains("broken base64"));
        assert!(f.message.contains("'*' at character 8"), "{}", f.message);
        // The raw JSON sent as the payload.
        let json = String::from_utf8(valid.body.clone().expect("body")).expect("utf8");
        let findings = valid.clone().with_payload_resigned(&json).run();
        assert!(
            get(&findings, code::PAYLOAD_NOT_BASE64)
                .message
                .contains("raw JSON")
        );
        // One stray character: cut off.
        let unpadded = p.trim_end_matches('=');
        let stray = format!(
            "{unpadded}{}",
            if unpadded.len().is_multiple_of(4) {
                "A"
            } else {
                ""
            }
        );
        if stray.len() % 4 == 1 {
            let findings = valid.clone().with_payload_resigned(&stray).run();
            assert!(
                get(&findings, code::PAYLOAD_NOT_BASE64)
                    .message
                    .contains("cut off")
            );
        }
        // Non-zero trailing bits.
        let findings = valid.with_payload_resigned("YWJ=").run();
        assert!(
            get(&findings, code::PAYLOAD_NOT_BASE64)
                .message
                .contains("unused bits")
        );
    }

    #[test]
    fn padding_problems() {
        let c = Case::signed(&format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"ticker":"BTC","x":"1"}}"#
        ));
        let p = c.payload_text();
        let findings = c.clone().with_payload_resigned(&format!("{p}===")).run();
        assert!(
            get(&findings, code::PAYLOAD_BAD_PADDING)
                .message
                .contains("at most two")
        );
        let (a, b) = p.split_at(8);
        let findings = c.with_payload_resigned(&format!("{a}={b}")).run();
        assert!(
            get(&findings, code::PAYLOAD_BAD_PADDING)
                .message
                .contains("middle")
        );
        // Unpadded is fine.
        let findings = Case::signed(&format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"ticker":"BTC","x":"1"}}"#
        ))
        .with_payload_resigned(p.trim_end_matches('='))
        .run();
        assert_eq!(problem_codes(&findings), Vec::<&str>::new());
    }

    #[test]
    fn spaced_body_explains_reserialisation() {
        let valid = Case::valid();
        let spaced = format!(
            r#"{{"request": "{PATH}", "nonce": {NOW}, "nonceWindow": true, "ticker": "BTC"}}"#
        );
        let findings = valid.with_body(&spaced).run();
        let f = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert_eq!(f.severity, Severity::Problem);
        assert!(
            f.message.contains("first differ at byte 11"),
            "{}",
            f.message
        );
        assert!(
            f.message
                .contains(r#"body `{"request":» "/api/v4/trade-acco…`"#),
            "{}",
            f.message
        );
        assert!(
            f.message
                .contains(r#"decoded payload `{"request":»"/api/v4/trade-accou…`"#),
            "{}",
            f.message
        );
        assert!(f.message.contains("only whitespace"), "{}", f.message);
        assert!(f.message.contains("same JSON value"));
        assert!(f.message.contains("body_match = \"exact\""));
        assert!(f.message.contains("exactly the bytes it signed"));
        assert!(has(&findings, code::PAYLOAD_BODY_SAME_JSON));
        let note = get(&findings, code::BODY_NONCANONICAL_JSON);
        assert!(
            note.message.contains("spaces between tokens"),
            "{}",
            note.message
        );
        assert!(note.message.contains("Here it is not"));
    }

    #[test]
    fn pretty_printed_and_trailing_newline_bodies() {
        let valid = Case::valid();
        let pretty = format!(
            "{{\n  \"request\": \"{PATH}\",\n  \"nonce\": {NOW},\n  \"nonceWindow\": true,\n  \"ticker\": \"BTC\"\n}}"
        );
        let findings = valid.clone().with_body(&pretty).run();
        let f = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(f.message.contains("pretty-printed"), "{}", f.message);
        assert!(
            f.message.contains("{»\\n  \"request\""),
            "control characters are escaped: {}",
            f.message
        );

        let body = format!(
            "{}\n",
            String::from_utf8(valid.body.clone().expect("body")).expect("utf8")
        );
        let findings = valid.with_body(&body).run();
        let f = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(
            f.message.contains("ends with a line break"),
            "{}",
            f.message
        );
        assert!(f.message.contains("\"BTC\"}»\\n`"), "{}", f.message);
        assert!(f.message.contains("only whitespace"));
    }

    #[test]
    fn escaped_slashes_and_unicode_are_recognised() {
        let signed = Case::signed(&format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"memo":"café"}}"#
        ));
        let slashes = format!(
            r#"{{"request":"{}","nonce":{NOW},"nonceWindow":true,"memo":"café"}}"#,
            PATH.replace('/', "\\/")
        );
        let findings = signed.clone().with_body(&slashes).run();
        let f = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(f.message.contains("writes `/` as `\\/`"), "{}", f.message);
        assert!(!f.message.contains("only whitespace"));
        assert!(
            get(&findings, code::BODY_NONCANONICAL_JSON)
                .message
                .contains("`\\/`")
        );

        let ensure_ascii = format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"memo":"caf\u00e9"}}"#
        );
        let findings = signed.clone().with_body(&ensure_ascii).run();
        let f = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(
            f.message
                .contains("non-ASCII characters as `\\uXXXX` (e.g. `\\u00e9`)"),
            "{}",
            f.message
        );

        let printable = format!(
            r#"{{"request":"\u002fapi/v4/trade-account/balance","nonce":{NOW},"nonceWindow":true,"memo":"café"}}"#
        );
        let findings = signed.with_body(&printable).run();
        let f = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(
            f.message
                .contains("printable characters as `\\uXXXX` (e.g. `\\u002f`)"),
            "{}",
            f.message
        );

        // The same body, signed as sent: acceptable, just noted.
        let findings = Case::signed(&slashes).run();
        assert_eq!(problem_codes(&findings), Vec::<&str>::new());
        let note = get(&findings, code::BODY_NONCANONICAL_JSON);
        assert!(
            note.message
                .contains("acceptable only if X-TXC-PAYLOAD is the base64 of exactly these bytes")
        );
        assert!(note.message.contains("Here it is"));
    }

    #[test]
    fn reordered_keys_are_the_same_json_value() {
        let valid = Case::valid();
        let reordered =
            format!(r#"{{"nonce":{NOW},"request":"{PATH}","nonceWindow":true,"ticker":"BTC"}}"#);
        let findings = valid.with_body(&reordered).run();
        let f = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(f.message.contains("different order"), "{}", f.message);
        assert!(has(&findings, code::PAYLOAD_BODY_SAME_JSON));
    }

    #[test]
    fn a_different_body_names_the_fields_that_differ() {
        let valid = Case::valid();
        let rebuilt = window_body(&(NOW + 1).to_string());
        let findings = valid.clone().with_body(&rebuilt).run();
        let f = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(
            f.message.contains(
                r#""nonce" is 1700000000001 in the body but 1700000000000 in the payload"#
            ),
            "{}",
            f.message
        );
        assert!(f.message.contains("as long as the body"));
        assert!(f.message.contains("fresh nonce"));
        assert!(!has(&findings, code::PAYLOAD_BODY_SAME_JSON));

        // The body is the payload text itself.
        let p = valid.payload_text();
        let findings = valid.clone().with_body(&p).run();
        assert!(
            get(&findings, code::PAYLOAD_BODY_MISMATCH)
                .message
                .contains("base64 payload text itself")
        );

        // Double encoding.
        let twice = base64_encode(p.as_bytes());
        let findings = valid.clone().with_payload_resigned(&twice).run();
        assert!(
            get(&findings, code::PAYLOAD_BODY_MISMATCH)
                .message
                .contains("twice")
        );

        // A body that is not JSON at all.
        let findings = valid.with_body("ticker=BTC").run();
        let f = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(f.message.contains("not valid JSON"), "{}", f.message);
        assert!(f.message.contains("while the body is 10 bytes"));
    }

    #[test]
    fn json_problems() {
        let findings = Case::signed(&format!(r#"{{"request":"{PATH}","nonce":{NOW}"#)).run();
        let f = get(&findings, code::JSON_INVALID);
        assert!(
            f.message.contains("unexpected end of JSON"),
            "{}",
            f.message
        );
        assert!(f.message.contains("decoded payload"));

        let findings = Case::signed(&format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"\u006eonce":{NOW}}}"#
        ))
        .run();
        let f = get(&findings, code::JSON_DUPLICATE_KEY);
        assert!(f.message.contains(r#"key "nonce" twice"#), "{}", f.message);

        let findings = Case::signed("[1,2,3]").run();
        assert!(
            get(&findings, code::JSON_NOT_OBJECT)
                .message
                .contains("JSON array")
        );

        let findings = Case::signed("").run();
        // An empty payload header is an empty header.
        assert!(has(&findings, code::PAYLOAD_EMPTY));
        assert!(get(&findings, code::JSON_INVALID).message.contains("empty"));

        let only_body = Case {
            body: Some(b"ticker=BTC&nonce=1".to_vec()),
            ..Case::default()
        };
        let findings = only_body.run();
        let f = get(&findings, code::JSON_INVALID);
        assert!(f.message.contains("The body is not valid JSON"));
        assert!(f.message.contains("form-encoded"));
    }

    #[test]
    fn request_field_problems() {
        let findings = Case::signed(&format!(
            r#"{{"request":"https://whitebit.com{PATH}","nonce":{NOW}}}"#
        ))
        .run();
        assert!(
            get(&findings, code::REQUEST_NOT_ABSOLUTE)
                .message
                .contains("full URL")
        );

        let findings = Case::signed(&format!(
            r#"{{"request":"{PATH}?ticker=BTC","nonce":{NOW}}}"#
        ))
        .run();
        let f = get(&findings, code::REQUEST_HAS_QUERY);
        assert!(f.message.contains(r#""?ticker=BTC""#), "{}", f.message);
        assert!(
            f.message
                .contains("Request does not match the endpoint path.")
        );

        let findings = Case::signed(&format!(
            r#"{{"request":"/API/v4/trade-account/balance","nonce":{NOW}}}"#
        ))
        .run();
        assert!(
            get(&findings, code::REQUEST_PATH_MISMATCH)
                .message
                .contains("letter case")
        );

        let findings = Case::signed(&format!(r#"{{"request":"{PATH}/","nonce":{NOW}}}"#)).run();
        assert!(
            get(&findings, code::REQUEST_PATH_MISMATCH)
                .message
                .contains("trailing slash")
        );

        let findings = Case::signed(&format!(
            r#"{{"request":"/trade-account/balance","nonce":{NOW}}}"#
        ))
        .run();
        assert!(
            get(&findings, code::REQUEST_PATH_MISMATCH)
                .message
                .contains("full path")
        );

        // Repeated slashes are merged on both sides.
        let findings = Case::valid()
            .with_path("//api/v4//trade-account/balance")
            .run();
        assert!(
            get(&findings, code::REQUEST_MATCHES_PATH)
                .message
                .contains("merging")
        );
        assert!(has(&findings, code::LOOKS_CORRECT));

        let findings =
            Case::signed(&format!(r#"{{"request":"/api/v4/a%2Fb","nonce":{NOW}}}"#)).run();
        assert!(
            get(&findings, code::REQUEST_INVALID_PATH)
                .message
                .contains("percent escape")
        );
    }

    #[test]
    fn nonce_floats_name_the_integer() {
        let findings = Case::signed(&window_body("1.7e12")).run();
        let f = get(&findings, code::NONCE_FLOAT);
        assert!(
            f.message.contains("Its value is 1700000000000"),
            "{}",
            f.message
        );
        assert!(f.message.contains("Invalid nonce."));
        let findings = Case::signed(&window_body("1700000000000.0")).run();
        assert!(
            get(&findings, code::NONCE_FLOAT)
                .message
                .contains("Its value is 1700000000000")
        );
        let findings = Case::signed(&window_body("1700000000000.5")).run();
        assert!(
            get(&findings, code::NONCE_FLOAT)
                .message
                .contains("fractional part")
        );
        let findings = Case::signed(&window_body("\"1.7E12\"")).run();
        assert!(
            get(&findings, code::NONCE_FLOAT)
                .message
                .contains("the string \"1.7E12\"")
        );
    }

    #[test]
    fn float_as_integer_cases() {
        assert_eq!(float_as_integer("1.7e12").as_deref(), Some("1700000000000"));
        assert_eq!(
            float_as_integer("1700000000000.0").as_deref(),
            Some("1700000000000")
        );
        assert_eq!(float_as_integer("1.5").as_deref(), None);
        assert_eq!(float_as_integer("150e-2").as_deref(), None);
        assert_eq!(float_as_integer("1500e-2").as_deref(), Some("15"));
        assert_eq!(float_as_integer("0.0").as_deref(), Some("0"));
        assert_eq!(float_as_integer("-0.0").as_deref(), Some("0"));
        assert_eq!(float_as_integer("-2E+3").as_deref(), Some("-2000"));
        assert_eq!(float_as_integer("1e999").as_deref(), None);
        assert_eq!(float_as_integer("1e-999").as_deref(), None);
        assert_eq!(float_as_integer("0e-999").as_deref(), Some("0"));
    }

    #[test]
    fn other_bad_nonces() {
        let findings = Case::signed(&strict_body("\"\"")).run();
        assert!(
            get(&findings, code::NONCE_INVALID)
                .message
                .contains("empty string")
        );
        let findings = Case::signed(&strict_body("\" 1700000000000\"")).run();
        assert!(
            get(&findings, code::NONCE_INVALID)
                .message
                .contains("whitespace")
        );
        let findings = Case::signed(&strict_body("\"0x10\"")).run();
        assert!(has(&findings, code::NONCE_INVALID));
        let findings = Case::signed(&strict_body("[1]")).run();
        assert!(
            get(&findings, code::NONCE_INVALID)
                .message
                .contains("array")
        );
        let findings = Case::signed(&strict_body("null")).run();
        assert!(has(&findings, code::NONCE_MISSING));
        let findings = Case::signed(&strict_body("\"-5\"")).run();
        assert!(has(&findings, code::NONCE_NEGATIVE));
        let findings = Case::signed(&strict_body("\"99999999999999999999\"")).run();
        assert!(has(&findings, code::NONCE_TOO_LARGE));
        // The largest u64 is accepted (strict mode), though it is far too high.
        let findings = Case::signed(&strict_body("18446744073709551615")).run();
        assert!(!has(&findings, code::NONCE_TOO_LARGE));
        assert!(has(&findings, code::NONCE_TOO_HIGH));
        // A fresh key accepts 0 in strict mode.
        let findings = Case::signed(&strict_body("0")).run();
        assert_eq!(problem_codes(&findings), Vec::<&str>::new());
        assert!(has(&findings, code::NONCE_SMALL_COUNTER));
    }

    #[test]
    fn seconds_nonce_is_explained_in_both_modes() {
        let findings = Case::signed(&strict_body("1700000000")).run();
        let f = get(&findings, code::NONCE_SECONDS);
        assert!(f.message.contains("seconds"));
        assert!(
            f.message.contains("2023-11-14 22:13:20.000 UTC"),
            "{}",
            f.message
        );
        assert!(f.message.contains("one request per second"));
        assert!(f.message.contains("±5 s window"));
        assert!(f.message.contains("1700000000000"));

        let findings = Case::signed(&window_body("1700000000")).run();
        assert!(has(&findings, code::NONCE_SECONDS));
        let f = get(&findings, code::NONCE_OUTSIDE_WINDOW);
        assert!(f.message.contains("behind"));
        assert!(f.message.contains("years"), "{}", f.message);
        assert!(f.message.contains("5 seconds lesser"));
    }

    #[test]
    fn micro_and_nanosecond_nonces() {
        let findings = Case::signed(&strict_body("1700000000000000")).run();
        let f = get(&findings, code::NONCE_TOO_HIGH);
        assert!(f.message.contains("microseconds"));
        assert!(f.message.contains("never be lowered"));
        assert!(f.message.contains("2023-11-14"));
        let findings = Case::signed(&strict_body("1700000000000000000")).run();
        assert!(
            get(&findings, code::NONCE_TOO_HIGH)
                .message
                .contains("nanoseconds")
        );
    }

    #[test]
    fn window_nonces_against_now() {
        let findings = Case::signed(&window_body(&(NOW - 12_345).to_string())).run();
        let f = get(&findings, code::NONCE_OUTSIDE_WINDOW);
        assert!(f.message.contains("12.345 s behind"), "{}", f.message);
        assert!(f.message.contains("5 seconds lesser"));
        let findings = Case::signed(&window_body(&(NOW + 5_001).to_string())).run();
        let f = get(&findings, code::NONCE_OUTSIDE_WINDOW);
        assert!(f.message.contains("5.001 s ahead of"), "{}", f.message);
        assert!(f.message.contains("5 seconds greater"));
        // The edges are inclusive.
        for nonce in [NOW - 5_000, NOW + 5_000] {
            let findings = Case::signed(&window_body(&nonce.to_string())).run();
            assert!(has(&findings, code::NONCE_IN_WINDOW), "{nonce}");
            assert!(has(&findings, code::LOOKS_CORRECT));
        }
        // Without a current time the window cannot be checked, but a counter never fits.
        let mut c = Case::signed(&window_body("42"));
        c.now_ms = None;
        let findings = c.run();
        assert!(has(&findings, code::NONCE_OUTSIDE_WINDOW));
        let mut c = Case::valid();
        c.now_ms = None;
        let findings = c.run();
        assert!(
            get(&findings, code::NONCE_OK)
                .message
                .contains("no current time")
        );
        assert!(has(&findings, code::LOOKS_CORRECT));
        // Strict mode ignores the distance to now (apart from the future note).
        let findings = Case::signed(&strict_body(&(NOW - 86_400_000).to_string())).run();
        assert_eq!(problem_codes(&findings), Vec::<&str>::new());
        let findings = Case::signed(&strict_body(&(NOW + 3_600_000).to_string())).run();
        assert!(
            get(&findings, code::NONCE_IN_FUTURE)
                .message
                .contains("3600.000 s")
        );
    }

    #[test]
    fn nonce_window_must_be_boolean() {
        for (value, expected) in [
            ("\"true\"", "the string \"true\""),
            ("1", "the number 1"),
            ("null", "null"),
            ("[true]", "array"),
        ] {
            let findings = Case::signed(&format!(
                r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":{value}}}"#
            ))
            .run();
            let f = get(&findings, code::NONCE_WINDOW_NOT_BOOLEAN);
            assert!(f.message.contains(expected), "{value}: {}", f.message);
            assert!(f.message.contains("Invalid nonceWindow."));
        }
        let findings = Case::signed(&format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":false}}"#
        ))
        .run();
        assert!(!has(&findings, code::NONCE_WINDOW_NOT_BOOLEAN));
    }

    #[test]
    fn signature_format_problems() {
        let valid = Case::valid();
        let good = valid.signature.clone().expect("sig");

        let findings = valid.clone().with_signature(&format!("0x{good}")).run();
        let f = get(&findings, code::SIGNATURE_NOT_HEX);
        assert!(f.message.contains("0x"), "{}", f.message);

        let findings = valid
            .clone()
            .with_signature(&format!("sha512={good}"))
            .run();
        assert!(
            get(&findings, code::SIGNATURE_NOT_HEX)
                .message
                .contains("prefix")
        );

        let findings = valid.clone().with_signature(&format!("{good}\n")).run();
        assert!(
            get(&findings, code::SIGNATURE_NOT_HEX)
                .message
                .contains("whitespace")
        );

        let tag = hex_decode(good.as_bytes()).expect("hex");
        let findings = valid.clone().with_signature(&base64_encode(&tag)).run();
        let f = get(&findings, code::SIGNATURE_BASE64);
        assert!(f.message.contains("hex, not base64"));
        assert!(
            f.message
                .contains("correct HMAC-SHA512 of the payload, only encoded as base64")
        );
        // Without the secret it is still recognisably base64.
        let mut no_secret = valid.clone().with_signature(&base64_encode(&tag));
        no_secret.secret = None;
        let findings = no_secret.run();
        assert!(
            !get(&findings, code::SIGNATURE_BASE64)
                .message
                .contains("correct")
        );

        let findings = valid.clone().with_signature(&good[..64]).run();
        let f = get(&findings, code::SIGNATURE_WRONG_LENGTH);
        assert!(f.message.contains("64 hex characters"));
        assert!(f.message.contains("128 hex"));
        assert!(f.message.contains("SHA-256"));
        assert!(f.message.contains("truncated"));

        let sha256 =
            hmac_sha256_hex(SECRET.as_bytes(), valid.payload_text().as_bytes()).expect("mac");
        let findings = valid.clone().with_signature(&sha256).run();
        assert!(
            get(&findings, code::SIGNATURE_WRONG_LENGTH)
                .message
                .contains("It is HMAC-SHA256")
        );

        let findings = valid
            .clone()
            .with_signature(&hex_encode(good.as_bytes()))
            .run();
        assert!(
            get(&findings, code::SIGNATURE_WRONG_LENGTH)
                .message
                .contains("hex-encoded twice")
        );

        let findings = valid.clone().with_signature("q83vEjRWeJA=").run();
        assert!(
            get(&findings, code::SIGNATURE_BASE64)
                .message
                .contains("8 bytes")
        );

        let findings = valid.clone().with_signature(&good[..127]).run();
        assert!(
            get(&findings, code::SIGNATURE_WRONG_LENGTH)
                .message
                .contains("127 hex")
        );

        let findings = valid.with_signature(&good.to_uppercase()).run();
        let f = get(&findings, code::SIGNATURE_UPPERCASE);
        assert!(
            f.message.contains("fine, and accepted") || f.message.contains("fine and accepted")
        );
        assert!(has(&findings, code::SIGNATURE_VALID));
        assert!(has(&findings, code::LOOKS_CORRECT));
    }

    #[test]
    fn signature_mistakes_are_recognised() {
        let valid = Case::valid();
        let body = valid.body.clone().expect("body");
        let p = valid.payload_text();

        let findings = valid
            .clone()
            .with_signature(&sig(SECRET.as_bytes(), &body))
            .run();
        let f = get(&findings, code::SIGNATURE_OVER_BODY);
        assert!(
            f.message
                .contains("computed over the raw body instead of the payload")
        );
        assert!(f.message.contains("Unauthorized request."));

        let b64_secret = base64_encode(b"0123456789abcdef0123");
        let key = base64_decode(b64_secret.as_bytes()).expect("b64");
        let findings = valid
            .clone()
            .with_secret(b64_secret.as_bytes())
            .with_signature(&sig(&key, p.as_bytes()))
            .run();
        let f = get(&findings, code::SIGNATURE_SECRET_DECODED);
        assert!(f.message.contains("base64-decoded"));
        assert!(f.message.contains("UTF-8 text"));

        let hex_secret = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
        let key = hex_decode(hex_secret.as_bytes()).expect("hex");
        let findings = valid
            .clone()
            .with_secret(hex_secret.as_bytes())
            .with_signature(&sig(&key, p.as_bytes()))
            .run();
        assert!(
            get(&findings, code::SIGNATURE_SECRET_DECODED)
                .message
                .contains("hex-decoded")
        );

        // The client used the secret with a trailing line break.
        let mut key = SECRET.as_bytes().to_vec();
        key.push(b'\n');
        let findings = valid.clone().with_signature(&sig(&key, p.as_bytes())).run();
        assert!(
            get(&findings, code::SIGNATURE_SECRET_WHITESPACE)
                .message
                .contains("line break")
        );

        let findings = valid
            .clone()
            .with_signature(&sig(SECRET.as_bytes(), format!("{p}\r\n").as_bytes()))
            .run();
        assert!(has(&findings, code::SIGNATURE_OVER_PAYLOAD_NEWLINE));

        let findings = valid
            .clone()
            .with_signature(&sig(p.as_bytes(), SECRET.as_bytes()))
            .run();
        assert!(
            get(&findings, code::SIGNATURE_KEY_MESSAGE_SWAPPED)
                .message
                .contains("swapped")
        );

        let mut no_secret = valid.clone().with_signature(&sha512_hex(p.as_bytes()));
        no_secret.secret = None;
        let findings = no_secret.run();
        assert!(
            get(&findings, code::SIGNATURE_PLAIN_HASH)
                .message
                .contains("not an HMAC")
        );

        let findings = valid.clone().with_secret(b"the-wrong-secret").run();
        let f = get(&findings, code::SIGNATURE_MISMATCH);
        assert!(
            f.message
                .contains("either the secret is wrong or the payload header differs")
        );
        assert!(f.message.contains("cannot tell which"));
        assert!(!f.message.contains("the-wrong-secret"));

        let mut no_secret = valid;
        no_secret.secret = None;
        let findings = no_secret.run();
        assert!(
            get(&findings, code::SIGNATURE_UNCHECKED)
                .message
                .contains("WBAUTH_API_SECRET")
        );
        assert!(
            get(&findings, code::LOOKS_CORRECT)
                .message
                .contains("Not checked")
        );
    }

    #[test]
    fn payload_header_changed_after_signing() {
        let c = Case::signed(&format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"ticker":"BTC","x":"1"}}"#
        ));
        let mut unpadded = c.clone();
        unpadded.payload = Some(c.payload_text().trim_end_matches('=').to_owned());
        let findings = unpadded.run();
        assert!(has(&findings, code::PAYLOAD_MATCHES_BODY));
        let f = get(&findings, code::SIGNATURE_PAYLOAD_HEADER_DIFFERS);
        assert!(f.message.contains("exactly as received"));
    }

    #[test]
    fn the_secret_never_appears_in_messages() {
        // The body carries the secret and differs from the payload right next to it, so
        // the context snippet would quote it.
        let signed = Case::signed(&format!(
            r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"apiSecret":"{SECRET}"}}"#
        ));
        let findings = signed
            .clone()
            .with_body(&format!(
                r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"apiSecret": "{SECRET}"}}"#
            ))
            .run();
        assert!(has(&findings, code::SECRET_IN_REQUEST));
        let mismatch = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(
            mismatch.message.contains("\"apiSecret\":» \"*****"),
            "{}",
            mismatch.message
        );

        // A differing field that holds the secret is shown as <secret>.
        let findings = signed
            .clone()
            .with_body(&format!(
                r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"apiSecret":"{SECRET}x"}}"#
            ))
            .run();
        let mismatch = get(&findings, code::PAYLOAD_BODY_MISMATCH);
        assert!(
            mismatch.message.contains("<secret>"),
            "{}",
            mismatch.message
        );

        // Only the body: the expected payload (which would encode the secret) is not shown.
        let only_body = Case {
            body: signed.body.clone(),
            secret: Some(SECRET.as_bytes().to_vec()),
            ..Case::default()
        };
        let findings = only_body.run();
        assert!(
            get(&findings, code::PAYLOAD_NOT_GIVEN)
                .message
                .contains("not shown")
        );
        let f = get(&findings, code::SECRET_IN_REQUEST);
        assert!(f.message.contains("the body") && f.message.contains("rotate"));

        // The capture's Debug output redacts it too.
        let debug = format!("{:?}", signed.capture());
        assert!(!debug.contains(SECRET));
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn display_and_labels() {
        let f = Finding {
            severity: Severity::Problem,
            code: code::NONCE_FLOAT,
            message: "x".into(),
        };
        assert_eq!(f.to_string(), "[problem] nonce-float: x");
        assert_eq!(Severity::Ok.label(), "ok");
        assert_eq!(Severity::Note.to_string(), "note");
        assert!(Severity::Problem > Severity::Note && Severity::Note > Severity::Ok);
    }

    #[test]
    fn time_formatting() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(NOW), "2023-11-14 22:13:20.000 UTC");
        assert_eq!(utc(951_782_400_123), "2000-02-29 00:00:00.123 UTC");
        assert!(utc(u64::MAX).ends_with("UTC"));
        assert_eq!(duration(12_345), "12.345 s");
        assert_eq!(duration(2 * 86_400_000), "172800.000 s (about 2.0 days)");
        assert!(duration(53 * 31_557_600_000).contains("about 53.0 years"));
        assert_eq!(context(b"abcdef", 3), "abc»def");
        assert_eq!(context(b"a\nb\x01\xff", 1), "a»\\nb\\x01\\xff");
        let long = [b'x'; 50];
        assert_eq!(
            context(&long, 25),
            format!("…{}»{}…", "x".repeat(20), "x".repeat(20))
        );
    }

    fn arb_opt_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop_oneof![
            Just(None),
            proptest::collection::vec(any::<u8>(), 0..80).prop_map(Some),
            "[ -~]{0,80}".prop_map(|s| Some(s.into_bytes())),
        ]
    }

    fn arb_opt_text() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            any::<String>().prop_map(Some),
            "[A-Za-z0-9+/=_ -]{0,140}".prop_map(Some)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary captures never panic and keep the invariants.
        #[test]
        fn never_panics(
            body in arb_opt_bytes(),
            payload in arb_opt_text(),
            signature in arb_opt_text(),
            secret in arb_opt_bytes(),
            path in arb_opt_text(),
            now_ms in proptest::option::of(any::<u64>()),
        ) {
            let case = Case { body, payload, signature, secret, path, now_ms };
            let findings = diagnose(&case.capture());
            check_invariants(&findings, None);
        }

        /// Arbitrary JSON-ish bodies, signed correctly, never panic.
        #[test]
        fn signed_json_never_panics(
            nonce in "(-?[0-9]{0,22}(\\.[0-9]{0,3})?([eE][+-]?[0-9]{1,3})?|\"[0-9 a-z.-]{0,22}\"|true|null|\\[\\])",
            window in "(true|false|null|\"true\"|1|0)",
            request in "[/a-z0-9?#%.]{0,30}",
            now_ms in proptest::option::of(any::<u64>()),
        ) {
            let body = format!(r#"{{"request":"{request}","nonce":{nonce},"nonceWindow":{window}}}"#);
            let mut case = Case::signed(&body);
            case.now_ms = now_ms;
            let _ = case.run();
        }
    }
}
