//! The check table of `docs/errors.md`: every row a client can provoke, alone and in pairs of
//! faults in one request (the earlier row must answer, which proves the order of the checks).

use whitebit_auth::ApiError;
use whitebit_auth::encoding::base64_encode;

use crate::Group;
use crate::http::Request;
use crate::report::{CaseReport, Expect};
use crate::target::{Credentials, Session};
use crate::wire::{Fields, json_string, signed};

/// One fault, in the order of the checks: a request with several answers the first one's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Method,
    TooLarge,
    MediaType,
    NoKey,
    NoPayload,
    NoSignature,
    PayloadMismatch,
    NoRequest,
    PathMismatch,
    NoNonce,
    BadNonce,
    BadWindow,
    BadSignature,
    OldNonce,
}

const FAULTS: [Fault; 14] = [
    Fault::Method,
    Fault::TooLarge,
    Fault::MediaType,
    Fault::NoKey,
    Fault::NoPayload,
    Fault::NoSignature,
    Fault::PayloadMismatch,
    Fault::NoRequest,
    Fault::PathMismatch,
    Fault::NoNonce,
    Fault::BadNonce,
    Fault::BadWindow,
    Fault::BadSignature,
    Fault::OldNonce,
];

impl Fault {
    /// The answer the fault alone gets.
    fn answer(self) -> ApiError {
        match self {
            Fault::Method => ApiError::MethodNotAllowed,
            Fault::TooLarge => ApiError::PayloadTooLarge,
            Fault::MediaType => ApiError::UnsupportedMediaType,
            Fault::NoKey => ApiError::ApiKeyNotProvided,
            Fault::NoPayload => ApiError::PayloadNotProvided,
            Fault::NoSignature => ApiError::SignatureNotProvided,
            Fault::PayloadMismatch => ApiError::InvalidPayload,
            Fault::NoRequest => ApiError::RequestNotProvided,
            Fault::PathMismatch => ApiError::RequestPathMismatch,
            Fault::NoNonce => ApiError::NonceNotProvided,
            Fault::BadNonce => ApiError::InvalidNonce,
            Fault::BadWindow => ApiError::InvalidNonceWindow,
            Fault::BadSignature => ApiError::Unauthorized,
            Fault::OldNonce => ApiError::NonceTooOld,
        }
    }

    /// What the fault is, for the report.
    fn what(self) -> &'static str {
        match self {
            Fault::Method => "GET instead of POST",
            Fault::TooLarge => "Content-Length of 100 MiB",
            Fault::MediaType => "Content-Type: text/plain",
            Fault::NoKey => "no X-TXC-APIKEY",
            Fault::NoPayload => "no X-TXC-PAYLOAD",
            Fault::NoSignature => "no X-TXC-SIGNATURE",
            Fault::PayloadMismatch => "a signed payload that is not the body",
            Fault::NoRequest => "no `request`",
            Fault::PathMismatch => "`request` names another path",
            Fault::NoNonce => "no `nonce`",
            Fault::BadNonce => "`nonce` -1",
            Fault::BadWindow => "`nonceWindow` \"true\" (a string)",
            Fault::BadSignature => "a wrong signature",
            Fault::OldNonce => "a window nonce 60 s old",
        }
    }

    /// Edits the body's members.
    fn edit_body(self, fields: &mut Fields, original_nonce: &str, now_ms: u64) {
        let nonce_untouched = fields.get("nonce") == Some(original_nonce);
        match self {
            Fault::NoRequest => fields.remove("request"),
            Fault::PathMismatch if fields.get("request").is_some() => {
                fields.set("request", &json_string("/api/v4/main-account/address"));
            }
            Fault::NoNonce => fields.remove("nonce"),
            Fault::BadNonce if nonce_untouched => fields.set("nonce", "-1"),
            Fault::BadWindow => fields.set("nonceWindow", "\"true\""),
            Fault::OldNonce if nonce_untouched => {
                fields.set("nonce", &now_ms.saturating_sub(60_000).to_string());
            }
            _ => {}
        }
    }

    /// Edits the signed request.
    fn edit_request(self, request: &mut Request, session: &Session<'_>) {
        match self {
            Fault::Method => request.method = "GET".into(),
            Fault::TooLarge => {
                request.body.clear();
                request.set_header("Content-Length", "104857600");
            }
            Fault::MediaType => request.set_header("Content-Type", "text/plain"),
            Fault::NoKey => request.remove_header("X-TXC-APIKEY"),
            Fault::NoPayload => request.remove_header("X-TXC-PAYLOAD"),
            Fault::NoSignature => request.remove_header("X-TXC-SIGNATURE"),
            Fault::PayloadMismatch if request.header("X-TXC-PAYLOAD").is_some() => {
                let mut other = request.body.clone();
                other.push(b' ');
                request.set_header("X-TXC-PAYLOAD", &base64_encode(&other));
                request.resign(&session.target.credentials);
            }
            Fault::BadSignature => {
                if let Some(signature) = request.header("X-TXC-SIGNATURE") {
                    let flipped: String = signature
                        .char_indices()
                        .map(|(i, c)| {
                            if i == 0 {
                                if c == '0' { '1' } else { '0' }
                            } else {
                                c
                            }
                        })
                        .collect();
                    request.set_header("X-TXC-SIGNATURE", &flipped);
                }
            }
            _ => {}
        }
    }
}

/// A request with `faults`, and the answer due (the first fault's row).
fn faulty(session: &Session<'_>, faults: &[Fault]) -> (Request, ApiError) {
    let path = &session.target.path;
    let mut fields = Fields::window(path, session.next_nonce());
    let nonce = fields.get("nonce").unwrap_or_default().to_owned();
    let now = session.now_ms();
    for fault in faults {
        fault.edit_body(&mut fields, &nonce, now);
    }
    let mut request = signed(
        &session.target.url_path(path),
        fields.text().as_bytes(),
        &session.target.credentials,
    );
    for fault in faults {
        fault.edit_request(&mut request, session);
    }
    let first = faults
        .iter()
        .min()
        .map_or(ApiError::Unauthorized, |f| f.answer());
    (request, first)
}

/// Every fault alone, then every pair of faults.
pub(crate) fn run(session: &Session<'_>, out: &mut Vec<CaseReport>) {
    for fault in FAULTS {
        let (request, due) = faulty(session, &[fault]);
        let answer = session.send(&request);
        let expect = Expect::error(due);
        let mut case = CaseReport::checked(
            format!("errors.row-{}", due.row()),
            Group::Errors,
            format!("row {}: {}", due.row(), fault.what()),
            &request,
            &expect,
            &answer,
        );
        if fault == Fault::Method
            && matches!(&answer, Ok(a) if expect.matches(a) && a.header("allow") != Some("POST"))
        {
            case.verdict = crate::report::Verdict::Fail("405 without `Allow: POST`".into());
        }
        out.push(case);
    }
    for (i, first) in FAULTS.iter().enumerate() {
        for second in &FAULTS[i + 1..] {
            let (request, due) = faulty(session, &[*first, *second]);
            let answer = session.send(&request);
            out.push(CaseReport::checked(
                format!(
                    "errors.pair-{}-{}",
                    first.answer().row(),
                    second.answer().row()
                ),
                Group::Errors,
                format!(
                    "order: {} and {} → row {}",
                    first.what(),
                    second.what(),
                    due.row()
                ),
                &request,
                &Expect::error(due),
                &answer,
            ));
        }
    }
    super::variants::run(session, out);
    privileged(session, out);
}

/// Rows that need more than the main key or depend on the server's configuration: 13 (a
/// disabled key), 404 (a path no route serves) and 14 (a key that may not call the path), each
/// skipped, saying what it needs, unless given; 15 (rate limits) is never provoked.
fn privileged(session: &Session<'_>, out: &mut Vec<CaseReport>) {
    let target = session.target;
    let path = &target.path;
    /// Id, rule, the answer due, the key and path when given, what it needs otherwise.
    type Case<'a> = (
        &'a str,
        &'a str,
        ApiError,
        Option<(&'a Credentials, &'a str)>,
        &'a str,
    );
    let cases: [Case<'_>; 3] = [
        (
            "errors.row-13",
            "row 13: a key the server has disabled",
            ApiError::KeyDisabled,
            target.disabled.as_ref().map(|k| (k, path.as_str())),
            "needs --disabled-key/--disabled-secret, a key the server has disabled",
        ),
        (
            "errors.row-404",
            "404: a path no route serves (checked after row 13, before row 14)",
            ApiError::EndpointNotFound,
            target
                .unrouted_path
                .as_deref()
                .map(|p| (&target.credentials, p)),
            "needs --unrouted-path, a path no route of the server serves",
        ),
        (
            "errors.row-14",
            "row 14: a key whose kind does not open the path",
            ApiError::EndpointForbidden,
            target.restricted.as_ref().map(|k| (k, path.as_str())),
            "needs --key2/--secret2, a key that may not call the path",
        ),
    ];
    for (id, rule, due, given, needs) in cases {
        let Some((credentials, path)) = given else {
            out.push(CaseReport::skipped(id, Group::Errors, rule, needs));
            continue;
        };
        let body = Fields::window(path, session.next_nonce()).text();
        let request = signed(&target.url_path(path), body.as_bytes(), credentials);
        let answer = session.send(&request);
        out.push(CaseReport::checked(
            id,
            Group::Errors,
            rule,
            &request,
            &Expect::error(due),
            &answer,
        ));
    }
    out.push(CaseReport::skipped(
        "errors.row-15",
        Group::Errors,
        "row 15: the per-key rate limit",
        "depends on the server's rate-limit configuration; not provoked",
    ));
}
