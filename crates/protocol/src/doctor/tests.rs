//! Tests of the doctor: one realistic case per finding code, and properties.

use super::nonce::{float_as_integer, utc};
use super::report::{context, duration};
use super::signature::{hmac_sha256_hex, sha512_hex};
use super::*;
use crate::encoding::{base64_decode, base64_encode, hex_decode, hex_encode};
use crate::mac::{HmacSha512Key, sign_payload};
use crate::sign::sign_body;
use proptest::prelude::*;
use std::collections::BTreeSet;

mod agreement;
mod server;

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
    headers: Option<Vec<(&'static str, &'static [u8])>>,
    key: Option<KeyFacts<'static>>,
    last_nonce: Option<u64>,
    body_match: crate::verify::BodyMatch,
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
            ..Case::default()
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
            headers: self.headers.as_deref(),
            key: self.key,
            last_nonce: self.last_nonce,
            body_match: self.body_match,
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
        let body =
            format!(r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"memo":"{memo}"}}"#);
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
    let spaced =
        format!(r#"{{"request": "{PATH}", "nonce": {NOW}, "nonceWindow": true, "ticker": "BTC"}}"#);
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
    // The valid case with one part of the capture missing.
    let without = |clear: fn(&mut Case)| {
        let mut c = valid.clone();
        clear(&mut c);
        c
    };
    let secret_with_newline = {
        let mut s = SECRET.as_bytes().to_vec();
        s.push(b'\n');
        s
    };

    vec![
        ("nothing", Case::default(), Severity::Problem),
        ("body-not-given", without(|c| c.body = None), Severity::Note),
        (
            "payload-not-given",
            without(|c| c.payload = None),
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
        ("request-no-path", without(|c| c.path = None), Severity::Ok),
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
            without(|c| c.signature = None),
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
            without(|c| c.secret = None),
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
        (
            "content-type-not-json",
            Case {
                headers: Some(vec![("Content-Type", b"text/plain; charset=utf-8")]),
                ..valid.clone()
            },
            Severity::Problem,
        ),
        (
            "payload-header-repeated",
            Case {
                headers: Some(vec![("x-txc-payload", b"e30="), ("X-TXC-PAYLOAD", b"e30=")]),
                ..valid.clone()
            },
            Severity::Problem,
        ),
        (
            "header-repeated",
            Case {
                headers: Some(vec![("X-TXC-APIKEY", b"k"), ("x-txc-apikey", b"k")]),
                ..valid.clone()
            },
            Severity::Problem,
        ),
        (
            "key-unknown",
            Case {
                secret: None,
                key: Some(KeyFacts {
                    sent: "typo-key",
                    known: false,
                    example: Some("demo-key"),
                }),
                ..valid.clone()
            },
            Severity::Problem,
        ),
        (
            "nonce-not-increasing",
            Case {
                last_nonce: Some(NOW + 10),
                ..Case::signed(&strict_body(&NOW.to_string()))
            },
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
    code::CONTENT_TYPE_NOT_JSON,
    code::PAYLOAD_HEADER_REPEATED,
    code::HEADER_REPEATED,
    code::KEY_UNKNOWN,
    code::NONCE_NOT_INCREASING,
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
    let body = crate::sign::build_body(PATH, NOW - 86_400_000, Some(false), &params).expect("body");
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
    let spaced =
        format!(r#"{{"request": "{PATH}", "nonce": {NOW}, "nonceWindow": true, "ticker": "BTC"}}"#);
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

    let ensure_ascii =
        format!(r#"{{"request":"{PATH}","nonce":{NOW},"nonceWindow":true,"memo":"caf\u00e9"}}"#);
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
        f.message
            .contains(r#""nonce" is 1700000000001 in the body but 1700000000000 in the payload"#),
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

    let findings = Case::signed(&format!(r#"{{"request":"/api/v4/a%2Fb","nonce":{NOW}}}"#)).run();
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

    let sha256 = hmac_sha256_hex(SECRET.as_bytes(), valid.payload_text().as_bytes()).expect("mac");
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
    assert!(f.message.contains("fine, and accepted") || f.message.contains("fine and accepted"));
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
    assert_eq!(utc(951_782_400_123), "2000-02-29 00:00:00.123 UTC");
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
        let case = Case { body, payload, signature, secret, path, now_ms, ..Case::default() };
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
