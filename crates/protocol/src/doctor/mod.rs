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
//!
//! The doctor and the verifier cannot disagree: every verdict the verifier makes (the payload's
//! base64, the JSON object and its repeated keys, `request` against the URL path, the nonce,
//! `nonceWindow`, the signature, the window-mode time check) comes from the verifier's own
//! functions ([`crate::verify`], [`crate::json::parse_object`],
//! [`crate::nonce::check_window_time`]); the doctor only looks further to explain why. Each
//! problem names the row of `docs/errors.md` the verifier answers with ([`Finding::row`],
//! [`code::row`]), and [`refused_at`] gives the row of a whole diagnosis.

mod capture;
pub mod code;
mod fields;
mod findings;
mod nonce;
mod payload;
mod report;
mod server;
mod signature;
mod style;

use crate::encoding::base64_encode;
use crate::error::ApiError;
use crate::verify::HeaderValue;

pub use capture::{Capture, KeyFacts};
pub use findings::{Finding, Severity};

use fields::{Source, check_document, check_url_path};
use payload::{check_payload_base64, compare_body_and_payload};
use report::{Out, answer, truncate};
use signature::{check_secret_not_sent, check_signature};
use style::note_body_style;

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
    if let Some(headers) = capture.headers {
        server::check_headers(headers, &mut out);
    }

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
        if HeaderValue::from_value(payload.as_bytes()) == HeaderValue::Missing {
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
        compare_body_and_payload(
            body,
            decoded,
            payload.unwrap_or_default(),
            capture.body_match,
            &mut out,
        );
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

    if let Some(key) = &capture.key {
        server::check_key(key, &mut out);
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

/// The row of `docs/errors.md` the verifier answers a request with, as the doctor sees it:
/// of the rows its problems name ([`Finding::row`]), the one checked first. `None` when no
/// problem is a refusal: the verifier accepts the request (given a key that is enabled and has
/// not used a higher nonce).
#[must_use]
pub fn refused_at(findings: &[Finding]) -> Option<&'static str> {
    findings
        .iter()
        .filter_map(Finding::row)
        .min_by_key(|row| ApiError::ALL.iter().position(|e| e.row() == *row))
}

#[cfg(test)]
mod tests;
