//! The doctor and the verifier agree: the doctor reports a refusal exactly when the verifier
//! refuses the request, and names the row of `docs/errors.md` the verifier answers with.
//!
//! The verifier here is [`check_request`] (rows 3–11, the body compared byte for byte), then
//! [`CheckedRequest::verify_signature`](crate::verify::CheckedRequest::verify_signature) with
//! the key the request was meant for (row 12), then, in window mode, the time check of
//! row 16a. The key is taken to be enabled and never to have had a nonce accepted, so rows 13
//! to 16 pass otherwise. The token endpoint, which reports rows 7 and 9 together before row 8,
//! is not generated: the doctor does not model it.

use proptest::prelude::*;

use super::*;
use crate::doctor::refused_at;
use crate::json::write_string;
use crate::nonce::{NonceMode, check_window_time};
use crate::verify::{BodyMatch, HeaderValue, Rejection, RequestParts, check_request};

/// The row the verifier answers `case` with; `None` when it accepts it.
fn verifier_row(case: &Case) -> Option<&'static str> {
    let payload = case.payload.as_deref().expect("a payload");
    let signature = case.signature.as_deref().expect("a signature");
    let parts = RequestParts {
        api_key: HeaderValue::Present("public-key"),
        payload: HeaderValue::from_value(payload.as_bytes()),
        signature: HeaderValue::from_value(signature.as_bytes()),
        body: case.body.as_deref().expect("a body"),
        path: case.path.as_deref().expect("a path"),
    };
    let checked = match check_request(&parts, BodyMatch::Exact) {
        Ok(checked) => checked,
        Err(Rejection::Api(refusal)) => return Some(refusal.row()),
        Err(rejection @ Rejection::MissingFields { .. }) => {
            panic!("the token endpoint is not generated: {rejection:?}")
        }
    };
    let key = HmacSha512Key::new(case.secret.as_deref().expect("a secret"));
    if let Err(refusal) = checked.verify_signature(Some(&key)) {
        return Some(refusal.row());
    }
    if checked.nonce_mode() == NonceMode::Window {
        let now = case.now_ms.expect("the current time");
        if let Err(refusal) = check_window_time(checked.nonce(), now) {
            return Some(refusal.row());
        }
    }
    None
}

/// Whether `case` captured everything the verifier sees.
fn is_complete(case: &Case) -> bool {
    case.body.is_some()
        && case.payload.is_some()
        && case.signature.is_some()
        && case.secret.as_ref().is_some_and(|s| !s.is_empty())
        && case.path.is_some()
        && case.now_ms.is_some()
        // What only a server knows (headers, keys, its last nonce) is beyond the pure verifier.
        && case.headers.is_none()
        && case.key.is_none()
        && case.last_nonce.is_none()
}

/// The doctor's findings for `case`, after checking that they name the verifier's row and
/// that every other problem is advisory.
fn assert_agreement(case: &Case) -> Vec<Finding> {
    let findings = case.run();
    assert_eq!(
        refused_at(&findings),
        verifier_row(case),
        "the doctor and the verifier disagree: {findings:#?}"
    );
    for finding in findings.iter().filter(|f| f.is_problem()) {
        assert!(
            finding.row().is_some() || code::ADVISORY.contains(&finding.code),
            "a problem that is neither a refusal nor advisory: {finding:?}"
        );
    }
    findings
}

#[test]
fn every_code_names_a_row_or_is_advisory() {
    for c in code::ADVISORY {
        assert!(code::ALL.contains(c), "{c}");
        assert_eq!(code::row(c), None, "{c}");
    }
    let rows: Vec<&str> = ApiError::ALL.iter().map(|e| e.row()).collect();
    for c in code::ALL {
        if let Some(row) = code::row(c) {
            assert!(
                rows.contains(&row),
                "{c} names no row of the catalogue: {row}"
            );
        }
    }
    // Every code that a realistic case reports as a problem is one or the other.
    for ((name, _, severity), &c) in cases().iter().zip(CASE_CODES) {
        if *severity == Severity::Problem {
            assert!(
                code::row(c).is_some() != code::ADVISORY.contains(&c),
                "case {name}: {c} must name a row or be advisory, not both or neither"
            );
        } else {
            assert_eq!(code::row(c), None, "case {name}: {c} is not a problem");
        }
    }
    assert_eq!(code::row(code::PAYLOAD_NOT_BASE64), Some("6"));
    assert_eq!(code::row(code::NONCE_OUTSIDE_WINDOW), Some("16a"));
    assert_eq!(code::row(code::SIGNATURE_OVER_BODY), Some("12"));
}

#[test]
fn refused_at_is_the_row_checked_first() {
    let finding = |severity, code: &'static str| Finding {
        severity,
        code,
        message: "x".into(),
    };
    let findings = [
        finding(Severity::Problem, code::SIGNATURE_MISMATCH),
        finding(Severity::Problem, code::NONCE_FLOAT),
        finding(Severity::Problem, code::PATH_HAS_QUERY),
        finding(Severity::Problem, code::NONCE_SECONDS),
        finding(Severity::Note, code::PAYLOAD_BODY_SAME_JSON),
    ];
    assert_eq!(refused_at(&findings), Some("8"));
    assert_eq!(refused_at(&findings[..1]), Some("12"));
    assert_eq!(refused_at(&findings[3..]), None);
    let window = [
        finding(Severity::Problem, code::NONCE_OUTSIDE_WINDOW),
        finding(Severity::Problem, code::SIGNATURE_EMPTY),
    ];
    assert_eq!(refused_at(&window), Some("5"));
    assert_eq!(refused_at(&window[..1]), Some("16a"));
}

#[test]
fn realistic_cases_agree_with_the_verifier() {
    let mut compared = 0;
    for (name, case, _) in cases() {
        if !is_complete(&case) {
            continue;
        }
        let findings = case.run();
        assert_eq!(
            refused_at(&findings),
            verifier_row(&case),
            "case {name}: {findings:#?}"
        );
        compared += 1;
    }
    assert!(compared >= 40, "only {compared} complete cases");
}

// ---------------------------------------------------------------------------------------
// Generated requests
// ---------------------------------------------------------------------------------------

/// The URL paths requests are built for (never the token endpoint).
const PATHS: [&str; 3] = [PATH, "/api/v4/order/new", "/api/v4/main-account/withdraw"];

/// A correct request before any fault: its fields in order, as JSON text.
#[derive(Debug, Clone)]
struct Request {
    path: &'static str,
    fields: Vec<(String, String)>,
    secret: String,
}

/// One way of breaking a request, or of writing it differently but acceptably.
#[derive(Debug, Clone)]
enum Fault {
    /// The field's JSON value replaced, or the field removed (`None`).
    Field(&'static str, Option<String>),
    /// The field written twice, its second name escaped when `true`.
    DuplicateField(&'static str, bool),
    /// A field the verifier does not know (accepted).
    UnknownField,
    /// The whole body replaced by this text (before signing).
    Document(&'static str),
    /// The URL path replaced.
    UrlPath(&'static str),
    /// `+` and `/` of the payload written as `-` and `_`.
    PayloadUrlSafe,
    /// A character inserted into the payload.
    PayloadChar(usize, char),
    /// Characters cut from the end of the payload.
    PayloadCut(usize),
    /// The payload's `=` padding removed (accepted when re-signed).
    PayloadUnpadded,
    /// The payload is the JSON text itself.
    PayloadRaw,
    /// The payload base64-encoded twice.
    PayloadTwice,
    /// An empty payload.
    PayloadEmpty,
    /// The signature recomputed over the payload as it now is.
    Resign,
    /// The body changed after signing.
    BodyAppend(&'static str),
    /// A hex digit of the signature changed.
    SignatureFlip(usize),
    /// The signature in upper-case hex (accepted).
    SignatureUpper,
    /// The signature computed over the body instead of the payload.
    SignatureOverBody,
    /// The signature computed with another secret.
    SignatureOtherSecret,
    /// The signature as base64 of the tag instead of hex.
    SignatureBase64,
    /// Characters cut from the end of the signature.
    SignatureCut(usize),
    /// A character inserted into the signature.
    SignatureChar(usize, char),
    /// A plain SHA-512 of the payload.
    SignaturePlainHash,
    /// An empty signature.
    SignatureEmpty,
}

fn json_string(text: &str) -> String {
    let mut out = String::new();
    write_string(text, &mut out);
    out
}

impl Request {
    fn body(&self) -> String {
        let members: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    fn field(&self, name: &str) -> Option<&String> {
        let key = json_string(name);
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The faults that change what is signed.
    fn apply_to_fields(&mut self, fault: &Fault) -> Option<String> {
        match fault {
            Fault::Field(name, value) => {
                let key = json_string(name);
                let at = self.fields.iter().position(|(k, _)| *k == key);
                match (at, value) {
                    (Some(at), Some(value)) => self.fields[at].1.clone_from(value),
                    (Some(at), None) => {
                        self.fields.remove(at);
                    }
                    (None, Some(value)) => self.fields.push((key, value.clone())),
                    (None, None) => {}
                }
            }
            Fault::DuplicateField(name, escaped) => {
                let value = self.field(name).cloned().unwrap_or_else(|| "1".to_owned());
                let key = if *escaped {
                    let mut chars = name.chars();
                    let first = chars.next().map_or(0, u32::from);
                    format!("\"\\u{first:04x}{}\"", chars.as_str())
                } else {
                    json_string(name)
                };
                if self.field(name).is_none() {
                    self.fields.push((json_string(name), value.clone()));
                }
                self.fields.push((key, value));
            }
            Fault::UnknownField => self
                .fields
                .push((json_string("clientOrderId"), json_string("o-1"))),
            Fault::Document(text) => return Some((*text).to_owned()),
            _ => {}
        }
        None
    }
}

/// Inserts `c` before the character at `at` (taken modulo the length, plus one).
fn insert(text: &mut String, at: usize, c: char) {
    let at = at % (text.chars().count() + 1);
    let byte = text.char_indices().nth(at).map_or(text.len(), |(i, _)| i);
    text.insert(byte, c);
}

/// Removes up to `n` characters from the end of `text`.
fn cut(text: &mut String, n: usize) {
    for _ in 0..n {
        text.pop();
    }
}

/// Builds the capture: fields faults first, then the body is signed, then the faults of the
/// payload, the signature, the body and the URL path, in their order.
fn build(mut request: Request, faults: &[Fault]) -> Case {
    let mut document = None;
    for fault in faults {
        if let Some(text) = request.apply_to_fields(fault) {
            document = Some(text);
        }
    }
    let body = document.unwrap_or_else(|| request.body());
    let secret = request.secret.as_bytes();
    let mut payload = base64_encode(body.as_bytes());
    let mut signature = sig(secret, payload.as_bytes());
    let mut body = body.into_bytes();
    let mut path = request.path.to_owned();
    for fault in faults {
        match fault {
            Fault::UrlPath(other) => (*other).clone_into(&mut path),
            Fault::PayloadUrlSafe => payload = payload.replace('+', "-").replace('/', "_"),
            Fault::PayloadChar(at, c) => insert(&mut payload, *at, *c),
            Fault::PayloadCut(n) => cut(&mut payload, n % 4 + 1),
            Fault::PayloadUnpadded => payload = payload.trim_end_matches('=').to_owned(),
            Fault::PayloadRaw => payload = String::from_utf8_lossy(&body).into_owned(),
            Fault::PayloadTwice => payload = base64_encode(payload.as_bytes()),
            Fault::PayloadEmpty => payload.clear(),
            Fault::Resign => signature = sig(secret, payload.as_bytes()),
            Fault::BodyAppend(text) => body.extend_from_slice(text.as_bytes()),
            Fault::SignatureFlip(at) => {
                let chars: Vec<char> = signature.chars().collect();
                if !chars.is_empty() {
                    let at = at % chars.len();
                    let flipped = if chars[at] == '0' { '1' } else { '0' };
                    signature = chars[..at]
                        .iter()
                        .chain(std::iter::once(&flipped))
                        .chain(&chars[at + 1..])
                        .collect();
                }
            }
            Fault::SignatureUpper => signature = signature.to_ascii_uppercase(),
            Fault::SignatureOverBody => signature = sig(secret, &body),
            Fault::SignatureOtherSecret => {
                signature = sig(b"another-secret-entirely", payload.as_bytes());
            }
            Fault::SignatureBase64 => {
                if let Some(tag) = hex_decode(signature.as_bytes()) {
                    signature = base64_encode(&tag);
                }
            }
            Fault::SignatureCut(n) => cut(&mut signature, n % 70 + 1),
            Fault::SignatureChar(at, c) => insert(&mut signature, *at, *c),
            Fault::SignaturePlainHash => signature = sha512_hex(payload.as_bytes()),
            Fault::SignatureEmpty => signature.clear(),
            _ => {}
        }
    }
    Case {
        body: Some(body),
        payload: Some(payload),
        signature: Some(signature),
        secret: Some(secret.to_vec()),
        path: Some(path),
        now_ms: Some(NOW),
        ..Case::default()
    }
}

fn arb_request() -> impl Strategy<Value = Request> {
    let nonce = prop_oneof![
        (-8_000i64..8_000).prop_map(|d| (NOW as i64 + d).to_string()),
        (-8_000i64..8_000).prop_map(|d| format!("\"{}\"", NOW as i64 + d)),
    ];
    let window = prop_oneof![Just(None), Just(Some("true")), Just(Some("false"))];
    let memo = proptest::option::of("[ -~é/\\\\]{0,12}");
    (0..PATHS.len(), nonce, window, memo, "[A-Za-z0-9]{12,40}").prop_map(
        |(path, nonce, window, memo, secret)| {
            let path = PATHS[path];
            let mut fields = vec![
                (json_string("request"), json_string(path)),
                (json_string("nonce"), nonce),
            ];
            if let Some(window) = window {
                fields.push((json_string("nonceWindow"), window.to_owned()));
            }
            fields.push((json_string("ticker"), json_string("BTC")));
            if let Some(memo) = memo {
                fields.push((json_string("memo"), json_string(&memo)));
            }
            Request {
                path,
                fields,
                secret,
            }
        },
    )
}

/// A fault that sets the field `name` to one of `values` (JSON texts), or removes it.
fn field_values(name: &'static str, values: &[&str]) -> impl Strategy<Value = Fault> + use<> {
    let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    prop_oneof![Just(None), prop::sample::select(values).prop_map(Some)]
        .prop_map(move |value| Fault::Field(name, value))
}

fn arb_field() -> impl Strategy<Value = Fault> {
    let paths = [
        "/api/v4/order/new",
        "/api/v4/trade-account/balance/",
        "/API/V4/trade-account/balance",
        "/api/v4/trade-account/balance?ticker=BTC",
        "/api/v4/trade-account/balance#f",
        "/api/v4/trade-account%2Fbalance",
        "/api/v4/%74rade-account/balance",
        "api/v4/trade-account/balance",
        "https://whitebit.com/api/v4/trade-account/balance",
        "//api//v4/trade-account/balance",
        "/api/v4/trade-account/../balance",
        "/api/v4/trade-account;balance",
        "/api/v4/trade-accoünt/balance",
        "/trade-account/balance",
    ]
    .map(json_string);
    let mut requests = vec!["null", "5", "[\"/api/v4/order/new\"]"];
    requests.extend(paths.iter().map(String::as_str));
    let request = field_values("request", &requests);
    let nonce = prop_oneof![
        field_values(
            "nonce",
            &[
                "null",
                "1.7e12",
                "1700000000000.0",
                "1700000000000.5",
                "1E3",
                "-1",
                "-0",
                "-1700000000000",
                "18446744073709551616",
                "99999999999999999999999",
                "1700000000",
                "\"1700000000\"",
                "1700000000000000",
                "1700000000000000000",
                "17000000000",
                "5",
                "0",
                "\"1700000000000\"",
                "\"01\"",
                "\"\"",
                "\" 1700000000000\"",
                "\"+1\"",
                "\"0x10\"",
                "\"18446744073709551616\"",
                "true",
                "[1]",
                "{}",
            ]
        ),
        any::<u64>().prop_map(|n| Fault::Field("nonce", Some(n.to_string()))),
    ];
    let window = field_values(
        "nonceWindow",
        &[
            "true",
            "false",
            "\"true\"",
            "\"false\"",
            "1",
            "0",
            "null",
            "[]",
            "{}",
        ],
    );
    prop_oneof![
        request,
        nonce,
        window,
        (
            prop::sample::select(vec!["nonce", "request", "nonceWindow", "ticker"]),
            any::<bool>()
        )
            .prop_map(|(name, escaped)| Fault::DuplicateField(name, escaped)),
        Just(Fault::UnknownField),
        prop::sample::select(vec![
            "[1,2]",
            "\"text\"",
            "null",
            "",
            "{\"request\":",
            "request=/api/v4/order/new&nonce=1",
            "{\"a\":1}x",
        ])
        .prop_map(Fault::Document),
    ]
}

fn arb_header_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        prop::sample::select(vec![
            "/api/v4/order/new",
            "/api/v4/trade-account/balance?ticker=BTC",
            "/api/v4/trade-account/balance/",
            "//api/v4//trade-account/balance",
            "/api/v4/trade-account%2Fbalance",
            "/api/v4/trade-account/./balance",
            "/api/v4/trade-account/balance;x",
        ])
        .prop_map(Fault::UrlPath),
        Just(Fault::PayloadUrlSafe),
        (
            any::<usize>(),
            prop::sample::select(vec!['\n', ' ', '\t', '*', '=', '-', '_', 'é', 'A'])
        )
            .prop_map(|(at, c)| Fault::PayloadChar(at, c)),
        any::<usize>().prop_map(Fault::PayloadCut),
        Just(Fault::PayloadUnpadded),
        Just(Fault::PayloadRaw),
        Just(Fault::PayloadTwice),
        Just(Fault::PayloadEmpty),
        Just(Fault::Resign),
        prop::sample::select(vec!["\n", " ", "x"]).prop_map(Fault::BodyAppend),
        any::<usize>().prop_map(Fault::SignatureFlip),
        Just(Fault::SignatureUpper),
        Just(Fault::SignatureOverBody),
        Just(Fault::SignatureOtherSecret),
        Just(Fault::SignatureBase64),
        any::<usize>().prop_map(Fault::SignatureCut),
        (
            any::<usize>(),
            prop::sample::select(vec![' ', '\n', 'g', '0', 'x'])
        )
            .prop_map(|(at, c)| Fault::SignatureChar(at, c)),
        Just(Fault::SignaturePlainHash),
        Just(Fault::SignatureEmpty),
    ]
}

fn arb_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![arb_field(), arb_header_fault()]
}

fn base_request() -> Request {
    let path = PATH;
    Request {
        path,
        fields: vec![
            (json_string("request"), json_string(path)),
            (json_string("nonce"), NOW.to_string()),
            (json_string("nonceWindow"), "true".to_owned()),
            (json_string("ticker"), json_string("BTC")),
        ],
        secret: SECRET.to_owned(),
    }
}

/// Each fault alone, with the row both must name.
#[test]
fn each_fault_alone_is_named_by_both() {
    let some = |v: &str| Some(v.to_owned());
    let table: Vec<(Fault, Option<&str>)> = vec![
        (Fault::Resign, None),
        (Fault::UnknownField, None),
        (Fault::PayloadChar(7, '*'), Some("6")),
        (Fault::PayloadUrlSafe, None),
        (Fault::PayloadChar(76, '\n'), Some("6")),
        (Fault::PayloadChar(usize::MAX, '='), Some("6")),
        (Fault::PayloadRaw, Some("6")),
        (Fault::PayloadTwice, Some("6")),
        (Fault::PayloadEmpty, Some("4")),
        (Fault::BodyAppend("\n"), Some("6")),
        (Fault::DuplicateField("nonce", false), Some("6")),
        (Fault::DuplicateField("nonce", true), Some("6")),
        (Fault::Document("[1,2]"), Some("6")),
        (Fault::Document("{\"request\":"), Some("6")),
        (Fault::Field("request", None), Some("7")),
        (Fault::Field("request", some("5")), Some("7")),
        (
            Fault::Field("request", some("\"/api/v4/order/new\"")),
            Some("8"),
        ),
        (
            Fault::Field("request", some("\"/api/v4/trade-account/balance?x=1\"")),
            Some("8"),
        ),
        (
            Fault::Field("request", some("\"/api/v4/trade-account%2Fbalance\"")),
            Some("8"),
        ),
        (
            Fault::Field("request", some("\"//api//v4/trade-account/balance\"")),
            None,
        ),
        (
            Fault::UrlPath("/api/v4/trade-account/balance?ticker=BTC"),
            Some("8"),
        ),
        (Fault::UrlPath("/api/v4/%74rade-account/balance"), Some("8")),
        (Fault::Field("nonce", None), Some("9")),
        (Fault::Field("nonce", some("null")), Some("9")),
        (Fault::Field("nonce", some("1.7e12")), Some("10")),
        (Fault::Field("nonce", some("-1")), Some("10")),
        (
            Fault::Field("nonce", some("18446744073709551616")),
            Some("10"),
        ),
        (Fault::Field("nonce", some("\"01\"")), Some("10")),
        (Fault::Field("nonce", some("\"1700000000000\"")), None),
        (Fault::Field("nonce", some("1700000000")), Some("16a")),
        (Fault::Field("nonce", some("1700000000000000")), Some("16a")),
        (Fault::Field("nonce", some("1700000006000")), Some("16a")),
        (Fault::Field("nonceWindow", some("\"true\"")), Some("11")),
        (Fault::Field("nonceWindow", some("null")), Some("11")),
        (Fault::SignatureFlip(3), Some("12")),
        (Fault::SignatureUpper, None),
        (Fault::SignatureOverBody, Some("12")),
        (Fault::SignatureOtherSecret, Some("12")),
        (Fault::SignatureBase64, Some("12")),
        (Fault::SignatureCut(63), Some("12")),
        (Fault::SignatureChar(0, ' '), Some("12")),
        (Fault::SignaturePlainHash, Some("12")),
        (Fault::SignatureEmpty, Some("5")),
    ];
    for (fault, row) in table {
        let case = build(base_request(), std::slice::from_ref(&fault));
        assert_eq!(verifier_row(&case), row, "the verifier, for {fault:?}");
        assert_agreement(&case);
    }
    // Strict mode lets a nonce in seconds or microseconds through; the doctor still warns.
    for nonce in ["1700000000", "1700000000000000"] {
        let faults = [
            Fault::Field("nonceWindow", None),
            Fault::Field("nonce", Some(nonce.to_owned())),
        ];
        let findings = assert_agreement(&build(base_request(), &faults));
        assert_eq!(refused_at(&findings), None, "{nonce}");
        assert!(
            findings
                .iter()
                .any(|f| f.is_problem() && code::ADVISORY.contains(&f.code))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(768))]

    /// Requests broken in up to three ways at once: the doctor reports a refusal exactly
    /// when the verifier refuses, naming the row it answers with.
    #[test]
    fn the_doctor_names_the_row_the_verifier_refuses_at(
        request in arb_request(),
        faults in proptest::collection::vec(arb_fault(), 0..4),
    ) {
        assert_agreement(&build(request, &faults));
    }
}
