//! More ways real requests reach rows 1, 3, 6, 8 and 12 (other methods, empty and repeated
//! headers, broken payloads and signatures, a query string), all carrying one nonce; then that
//! nonce is accepted once: none of the refusals consumed it.

use whitebit_auth::ApiError;
use whitebit_auth::mac::sign_payload;

use crate::Group;
use crate::http::Request;
use crate::report::{CaseReport, Expect};
use crate::target::Session;
use crate::wire::{Fields, signed};

/// A variant: its id, what it is, the answer due, and how it changes the valid request.
type Variant = (
    &'static str,
    &'static str,
    ApiError,
    fn(&mut Request, &Session<'_>),
);

const VARIANTS: &[Variant] = &[
    (
        "put",
        "PUT instead of POST",
        ApiError::MethodNotAllowed,
        |r, _| r.method = "PUT".into(),
    ),
    (
        "delete",
        "DELETE instead of POST",
        ApiError::MethodNotAllowed,
        |r, _| r.method = "DELETE".into(),
    ),
    (
        "options",
        "OPTIONS instead of POST",
        ApiError::MethodNotAllowed,
        |r, _| r.method = "OPTIONS".into(),
    ),
    (
        "empty-key",
        "an empty X-TXC-APIKEY",
        ApiError::ApiKeyNotProvided,
        |r, _| r.set_header("X-TXC-APIKEY", ""),
    ),
    (
        "empty-payload",
        "an empty X-TXC-PAYLOAD",
        ApiError::PayloadNotProvided,
        |r, _| r.set_header("X-TXC-PAYLOAD", ""),
    ),
    (
        "empty-signature",
        "an empty X-TXC-SIGNATURE",
        ApiError::SignatureNotProvided,
        |r, _| r.set_header("X-TXC-SIGNATURE", ""),
    ),
    (
        "payload-twice",
        "X-TXC-PAYLOAD sent twice",
        ApiError::InvalidPayload,
        |r, _| {
            let payload = r.header("X-TXC-PAYLOAD").unwrap_or_default().to_owned();
            r.headers.push(("X-TXC-PAYLOAD".into(), payload));
        },
    ),
    (
        "payload-not-base64",
        "an X-TXC-PAYLOAD that is not base64",
        ApiError::InvalidPayload,
        |r, s| {
            r.set_header("X-TXC-PAYLOAD", "not base64!");
            r.resign(&s.target.credentials);
        },
    ),
    (
        "payload-array",
        "a signed payload and body that are a JSON array",
        ApiError::InvalidPayload,
        |r, s| {
            let body = format!("[{}]", String::from_utf8_lossy(&r.body));
            *r = signed(&r.target, body.as_bytes(), &s.target.credentials);
        },
    ),
    (
        "body-trailing-space",
        "the body with a space after the signed payload's text",
        ApiError::InvalidPayload,
        |r, _| r.body.push(b' '),
    ),
    (
        "query-string",
        "a query string on the URL",
        ApiError::RequestPathMismatch,
        |r, _| r.target.push_str("?x=1"),
    ),
    (
        "unknown-key",
        "an unknown key (signed with the real secret)",
        ApiError::Unauthorized,
        |r, _| r.set_header("X-TXC-APIKEY", "conformance-no-such-key"),
    ),
    (
        "key-twice",
        "X-TXC-APIKEY sent twice",
        ApiError::Unauthorized,
        |r, _| {
            let key = r.header("X-TXC-APIKEY").unwrap_or_default().to_owned();
            r.headers.push(("X-TXC-APIKEY".into(), key));
        },
    ),
    (
        "signature-short",
        "a signature of 64 hex digits",
        ApiError::Unauthorized,
        |r, _| {
            let short: String = r
                .header("X-TXC-SIGNATURE")
                .unwrap_or_default()
                .chars()
                .take(64)
                .collect();
            r.set_header("X-TXC-SIGNATURE", &short);
        },
    ),
    (
        "signature-not-hex",
        "a signature with a non-hex character",
        ApiError::Unauthorized,
        |r, _| {
            let mut signature = r.header("X-TXC-SIGNATURE").unwrap_or_default().to_owned();
            signature.replace_range(0..1, "g");
            r.set_header("X-TXC-SIGNATURE", &signature);
        },
    ),
    (
        "other-secret",
        "signed with another secret",
        ApiError::Unauthorized,
        |r, _| {
            let payload = r.header("X-TXC-PAYLOAD").unwrap_or_default().to_owned();
            r.set_header(
                "X-TXC-SIGNATURE",
                &sign_payload(b"not the key's secret", payload.as_bytes()),
            );
        },
    ),
    (
        "signature-over-body",
        "the signature computed over the body, not the payload",
        ApiError::Unauthorized,
        |r, s| {
            let body = r.body.clone();
            r.set_header(
                "X-TXC-SIGNATURE",
                &sign_payload(s.target.credentials.secret(), &body),
            );
        },
    ),
];

pub(crate) fn run(session: &Session<'_>, out: &mut Vec<CaseReport>) {
    let target = session.target;
    let url = target.url_path(&target.path);
    let nonce = session.next_nonce();
    let body = Fields::window(&target.path, nonce).text();
    let valid = signed(&url, body.as_bytes(), &target.credentials);
    for (id, what, due, change) in VARIANTS {
        let mut request = valid.clone();
        change(&mut request, session);
        let answer = session.send(&request);
        out.push(CaseReport::checked(
            format!("errors.variant-{id}"),
            Group::Errors,
            format!("row {}: {what}", due.row()),
            &request,
            &Expect::error(*due),
            &answer,
        ));
    }
    let answer = session.send(&valid);
    out.push(CaseReport::checked(
        "errors.nothing-consumed",
        Group::Errors,
        "after those refusals their nonce is still unused: the request signed right is accepted",
        &valid,
        &Expect::accepted(),
        &answer,
    ));
    let answer = session.send(&valid);
    out.push(CaseReport::checked(
        "errors.nonce-now-used",
        Group::Errors,
        "row 16b: and once accepted, the same request again is refused",
        &valid,
        &Expect::error(ApiError::NonceReused),
        &answer,
    ));
}
