//! What real clients send (`docs/interop.md`): every accepted variant must be accepted, and
//! the near misses refused at their row.

use whitebit_auth::ApiError;
use whitebit_auth::encoding::base64_encode;

use crate::Group;
use crate::http::Request;
use crate::report::{CaseReport, Expect};
use crate::target::Session;
use crate::wire::{Fields, json_string, signed};

/// A variant: its id, what it is, and how it changes a fresh valid request.
struct Variant {
    id: &'static str,
    what: &'static str,
    build: fn(&Session<'_>, u64) -> Request,
    expect: Option<ApiError>,
}

fn with_body(session: &Session<'_>, body: &str) -> Request {
    let path = &session.target.path;
    signed(
        &session.target.url_path(path),
        body.as_bytes(),
        &session.target.credentials,
    )
}

fn window(session: &Session<'_>, nonce: u64) -> Fields {
    Fields::window(&session.target.path, nonce)
}

const VARIANTS: &[Variant] = &[
    Variant {
        id: "string-nonce",
        what: "nonce as a JSON string of digits",
        expect: None,
        build: |s, n| {
            let mut f = window(s, n);
            f.set("nonce", &json_string(&n.to_string()));
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "key-order",
        what: "members in another order (nonceWindow, nonce, request)",
        expect: None,
        build: |s, n| {
            let mut f = window(s, n);
            f.0.reverse();
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "spaced-json",
        what: "pretty-printed body with \", \" and newlines",
        expect: None,
        build: |s, n| {
            with_body(
                s,
                &format!(
                    "{{\n  \"request\": {},\n  \"nonce\": {n},\n  \"nonceWindow\": true\n}}",
                    json_string(&s.target.path)
                ),
            )
        },
    },
    Variant {
        id: "escaped-slashes",
        what: "`request` written with \\/",
        expect: None,
        build: |s, n| {
            let mut f = window(s, n);
            f.set("request", &json_string(&s.target.path).replace('/', "\\/"));
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "unicode",
        what: "an extra member with non-ASCII raw and as \\u escapes",
        expect: None,
        build: |s, n| {
            let mut f = window(s, n);
            f.set("note", "\"Grüße \\u00e9\\ud83d\\ude00\"");
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "no-padding",
        what: "X-TXC-PAYLOAD without = padding",
        expect: None,
        build: |s, n| {
            let mut f = window(s, n);
            f.set("pad", "\"x\"");
            let body = pad_needing(&f);
            let mut r = with_body(s, &body);
            let p = base64_encode(body.as_bytes())
                .trim_end_matches('=')
                .to_owned();
            r.set_header("X-TXC-PAYLOAD", &p);
            r.resign(&s.target.credentials);
            r
        },
    },
    Variant {
        id: "upper-hex",
        what: "signature in upper-case hex",
        expect: None,
        build: |s, n| {
            let mut r = with_body(s, &window(s, n).text());
            let sig = r
                .header("X-TXC-SIGNATURE")
                .unwrap_or_default()
                .to_ascii_uppercase();
            r.set_header("X-TXC-SIGNATURE", &sig);
            r
        },
    },
    Variant {
        id: "header-case",
        what: "header names in lower case",
        expect: None,
        build: |s, n| {
            let mut r = with_body(s, &window(s, n).text());
            for h in &mut r.headers {
                h.0 = h.0.to_ascii_lowercase();
            }
            r
        },
    },
    Variant {
        id: "charset",
        what: "Content-Type: application/json; charset=utf-8",
        expect: None,
        build: |s, n| {
            let mut r = with_body(s, &window(s, n).text());
            r.set_header("Content-Type", "application/json; charset=utf-8");
            r
        },
    },
    Variant {
        id: "no-content-type",
        what: "no Content-Type at all",
        expect: None,
        build: |s, n| {
            let mut r = with_body(s, &window(s, n).text());
            r.remove_header("Content-Type");
            r
        },
    },
    Variant {
        id: "double-slashes",
        what: "repeated slashes in the URL path",
        expect: None,
        build: |s, n| {
            let mut r = with_body(s, &window(s, n).text());
            r.target = s.target.url_path(&format!(
                "/{}",
                s.target.path.replacen("/api/", "/api//", 1)
            ));
            r
        },
    },
    Variant {
        id: "window-absent",
        what: "no nonceWindow (strict mode)",
        expect: None,
        build: |s, _| {
            let mut f = Fields::strict(&s.target.path, s.next_strict_nonce());
            f.remove("nonceWindow");
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "window-false",
        what: "nonceWindow false (strict mode)",
        expect: None,
        build: |s, _| {
            with_body(
                s,
                &Fields::strict(&s.target.path, s.next_strict_nonce()).text(),
            )
        },
    },
    Variant {
        id: "seconds-nonce",
        what: "a nonce in seconds in window mode (a quick-start mistake)",
        expect: Some(ApiError::NonceTooOld),
        build: |s, n| {
            let mut f = window(s, n);
            f.set("nonce", &(n / 1000).to_string());
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "nonce-2^63",
        what: "window nonce 2^63 (read as an integer, not a double)",
        expect: Some(ApiError::NonceTooNew),
        build: |s, n| {
            let mut f = window(s, n);
            f.set("nonce", "9223372036854775808");
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "nonce-2^64-1",
        what: "window nonce 2^64 − 1, the largest valid",
        expect: Some(ApiError::NonceTooNew),
        build: |s, n| {
            let mut f = window(s, n);
            f.set("nonce", "18446744073709551615");
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "nonce-2^64",
        what: "nonce 2^64, one too many",
        expect: Some(ApiError::InvalidNonce),
        build: |s, n| {
            let mut f = window(s, n);
            f.set("nonce", "18446744073709551616");
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "nonce-float",
        what: "nonce with a fraction (N.0)",
        expect: Some(ApiError::InvalidNonce),
        build: |s, n| {
            let mut f = window(s, n);
            f.set("nonce", &format!("{n}.0"));
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "nonce-leading-zero",
        what: "nonce string with a leading zero",
        expect: Some(ApiError::InvalidNonce),
        build: |s, n| {
            let mut f = window(s, n);
            f.set("nonce", &json_string(&format!("0{n}")));
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "window-null",
        what: "nonceWindow null",
        expect: Some(ApiError::InvalidNonceWindow),
        build: |s, n| {
            let mut f = window(s, n);
            f.set("nonceWindow", "null");
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "window-one",
        what: "nonceWindow 1",
        expect: Some(ApiError::InvalidNonceWindow),
        build: |s, n| {
            let mut f = window(s, n);
            f.set("nonceWindow", "1");
            with_body(s, &f.text())
        },
    },
    Variant {
        id: "url-safe-base64",
        what: "X-TXC-PAYLOAD in URL-safe base64",
        expect: Some(ApiError::InvalidPayload),
        build: |s, n| {
            let body = url_unsafe(&window(s, n));
            let mut r = with_body(s, &body);
            let p = base64_encode(body.as_bytes())
                .replace('+', "-")
                .replace('/', "_");
            r.set_header("X-TXC-PAYLOAD", &p);
            r.resign(&s.target.credentials);
            r
        },
    },
    Variant {
        id: "duplicate-key",
        what: "`nonce` twice in the body",
        expect: Some(ApiError::InvalidPayload),
        build: |s, n| {
            let f = window(s, n);
            let body = format!("{},\"nonce\":{n}}}", f.text().trim_end_matches('}'));
            with_body(s, &body)
        },
    },
];

/// A body whose standard base64 has a `+` or a `/` (so its URL-safe form differs).
fn url_unsafe(fields: &Fields) -> String {
    let mut fields = fields.clone();
    let mut filler = String::from("?");
    loop {
        fields.set("q", &json_string(&filler));
        let text = fields.text();
        if base64_encode(text.as_bytes()).contains(['+', '/']) {
            return text;
        }
        filler.push_str("?>~");
    }
}

/// A body whose base64 ends in `=` (its length is not a multiple of 3).
fn pad_needing(fields: &Fields) -> String {
    let mut fields = fields.clone();
    let mut filler = String::from("x");
    loop {
        fields.set("pad", &json_string(&filler));
        let text = fields.text();
        if !text.len().is_multiple_of(3) {
            return text;
        }
        filler.push('x');
    }
}

pub(crate) fn run(session: &Session<'_>, out: &mut Vec<CaseReport>) {
    for variant in VARIANTS {
        let request = (variant.build)(session, session.next_nonce());
        let answer = session.send(&request);
        let (expect, rule) = match variant.expect {
            Some(error) => (
                Expect::error(error),
                format!("refused at row {}: {}", error.row(), variant.what),
            ),
            None => (Expect::accepted(), format!("accepted: {}", variant.what)),
        };
        out.push(CaseReport::checked(
            format!("interop.{}", variant.id),
            Group::Interop,
            rule,
            &request,
            &expect,
            &answer,
        ));
    }
}
