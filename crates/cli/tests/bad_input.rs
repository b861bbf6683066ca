//! The bad-input table: malformed, hostile and borderline requests sent as raw bytes to a
//! real `wbauth serve` (test clock, frozen) in front of a recording upstream. Every case
//! asserts the status and the exact body of the first failing check of `docs/errors.md`
//! (status only for failures of the HTTP layer itself, `docs/design-decisions.md` 9) and that nothing
//! changed: the upstream saw nothing, and afterwards a valid request with the key's next
//! strict nonce and one with the case's window nonce are both accepted (the bad request
//! consumed no nonce). Then the slow clients (header and body timeouts) and thousands of idle
//! connections (`[listen] max_connections`).

#![cfg(feature = "test-clock")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::catalogue::*;
use common::gateway::{Gateway, T0, TOKEN, UPSTREAM_ANSWER, Upstream, spawn_serve, write_config};
use common::raw::{self, RawResponse, Reply};
use serde_json::json;
use whitebit_auth::encoding::{base64_encode, hex_decode};
use whitebit_auth::mac::sign_payload;

/// `[verify] max_body_bytes` of the table's gateway: large enough for the 100,000-level
/// document (200,000 bytes), so that case reaches the JSON parser instead of row 2.
const LIMIT: usize = 262_144;

// ---------------------------------------------------------------------------------------------
// Requests as bytes
// ---------------------------------------------------------------------------------------------

/// How the body is framed.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// `Content-Length` of the body.
    Length,
    /// `Transfer-Encoding: chunked`, in chunks of this size.
    Chunked(usize),
    /// `Content-Length: N` and no body at all (the server must answer without it).
    Declared(u64),
    /// Nothing added: the case writes its own framing headers.
    AsIs,
}

/// A request to be written byte for byte.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    framing: Framing,
    /// The nonce it carries, when the case expects it to be accepted (bookkeeping).
    nonce: Option<u64>,
}

impl Req {
    fn target(mut self, target: &str) -> Self {
        target.clone_into(&mut self.target);
        self
    }

    fn method(mut self, method: &str) -> Self {
        method.clone_into(&mut self.method);
        self
    }

    /// Replaces every header called `name` (any case) by one with `value`, in place.
    fn set(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        let value = value.into();
        match self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        {
            Some(i) => {
                self.headers[i].1 = value;
                let mut seen = 0;
                self.headers.retain(|(n, _)| {
                    if n.eq_ignore_ascii_case(name.as_bytes()) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.headers.push((name.as_bytes().to_vec(), value)),
        }
        self
    }

    /// Appends a header (a duplicate when the name is already there).
    fn add(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.as_bytes().to_vec(), value.into()));
        self
    }

    /// Removes every header called `name`.
    fn remove(mut self, name: &str) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
        self
    }

    fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn accepted_nonce(mut self, nonce: u64) -> Self {
        self.nonce = Some(nonce);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            self.method, self.target
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        match self.framing {
            Framing::Length => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n", self.body.len()).as_bytes(),
                );
            }
            Framing::Chunked(_) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            Framing::Declared(n) => {
                out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
            }
            Framing::AsIs => {}
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        match self.framing {
            Framing::Length | Framing::AsIs => out.extend_from_slice(&self.body),
            Framing::Chunked(size) => {
                for chunk in self.body.chunks(size.max(1)) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            Framing::Declared(_) => {}
        }
        out
    }
}

/// What the cases build from.
#[derive(Debug, Clone)]
struct Ctx {
    addr: String,
    key: String,
    secret: String,
    /// A second key of another account.
    other_key: String,
    other_secret: String,
    /// The gateway's (frozen) time.
    now: u64,
    /// The key's next strict nonce: last accepted + 1.
    next: u64,
    /// This case's window-mode nonce (unused so far, within ±5 s of `now`).
    wn: u64,
}

impl Ctx {
    /// A `trade` key of account `account` made on `gw`, then the clock set an hour after
    /// [`T0`]; no second key.
    async fn provisioned(gw: &Gateway, account: &str) -> Self {
        let (key, secret) = gw.provision_key(account, "trade", &[]).await;
        let now = gw.clock(json!({"set_ms": T0 + 3_600_000})).await;
        Self {
            addr: addr_of(gw),
            key,
            secret,
            other_key: String::new(),
            other_secret: String::new(),
            now,
            next: 1,
            wn: now,
        }
    }

    /// `template` with `{order}` (the path), `{next}`, `{next+1}` (the next strict nonce and the
    /// one after) and `{wn}` (the case's window nonce) filled in.
    fn fill(&self, template: &str) -> String {
        template
            .replace("{order}", ORDER)
            .replace("{next}", &self.next.to_string())
            .replace("{next+1}", &(self.next + 1).to_string())
            .replace("{wn}", &self.wn.to_string())
    }

    /// The standard body with `nonce` given as JSON text.
    fn body_with(&self, nonce: &str) -> String {
        format!(r#"{{"request":"{ORDER}","nonce":{nonce},"ticker":"BTC"}}"#)
    }

    /// A request whose body is `body`, `payload` in `X-TXC-PAYLOAD`, signed with `secret`
    /// over the payload header exactly as sent (`docs/design-decisions.md` 3).
    fn raw_signed(&self, body: &[u8], payload: &str, secret: &str) -> Req {
        Req {
            method: "POST".into(),
            target: ORDER.into(),
            headers: vec![
                (b"Content-Type".to_vec(), b"application/json".to_vec()),
                (b"X-TXC-APIKEY".to_vec(), self.key.clone().into_bytes()),
                (b"X-TXC-PAYLOAD".to_vec(), payload.as_bytes().to_vec()),
                (
                    b"X-TXC-SIGNATURE".to_vec(),
                    sign_payload(secret.as_bytes(), payload.as_bytes()).into_bytes(),
                ),
            ],
            body: body.to_vec(),
            framing: Framing::Length,
            nonce: None,
        }
    }

    /// `body` as body and payload, correctly signed with the key's secret.
    fn signed(&self, body: impl AsRef<[u8]>) -> Req {
        let body = body.as_ref();
        self.raw_signed(body, &base64_encode(body), &self.secret)
    }

    /// The standard body with this JSON nonce text, signed.
    fn with_nonce(&self, nonce: &str) -> Req {
        self.signed(self.body_with(nonce))
    }

    /// A valid strict-mode request with the next nonce.
    fn valid(&self) -> Req {
        self.with_nonce(&self.next.to_string())
            .accepted_nonce(self.next)
    }

    /// A valid window-mode request body with `nonce`.
    fn window_body(&self, nonce: u64) -> String {
        format!(r#"{{"request":"{ORDER}","nonce":{nonce},"nonceWindow":true}}"#)
    }

    /// A window-mode request with `nonce`, signed.
    fn window(&self, nonce: u64) -> Req {
        self.signed(self.window_body(nonce)).accepted_nonce(nonce)
    }

    /// The standard body with the next strict nonce.
    fn standard(&self) -> String {
        self.body_with(&self.next.to_string())
    }

    /// `body` with the payload `payload` makes of its base64, signed with the key's secret.
    fn with_payload(&self, body: &str, payload: impl FnOnce(String) -> String) -> Req {
        let payload = payload(base64_encode(body.as_bytes()));
        self.raw_signed(body.as_bytes(), &payload, &self.secret)
    }

    /// A valid request with the signature `signature` makes of the valid one.
    fn with_signature(&self, signature: impl FnOnce(String) -> String) -> Req {
        self.valid()
            .set("X-TXC-SIGNATURE", signature(self.valid_signature()))
    }

    /// A valid request whose signature has byte `at` replaced by `byte`.
    fn with_signature_byte(&self, at: usize, byte: u8) -> Req {
        let mut signature = self.valid_signature().into_bytes();
        signature[at] = byte;
        self.valid().set("X-TXC-SIGNATURE", signature)
    }

    /// A valid request whose signature is computed over `text` (not the payload sent).
    fn signed_over(&self, text: &str) -> Req {
        self.valid().set(
            "X-TXC-SIGNATURE",
            sign_payload(self.secret.as_bytes(), text.as_bytes()),
        )
    }

    /// The standard body as body and payload, signed with `secret`.
    fn signed_with(&self, secret: &str) -> Req {
        let body = self.standard();
        self.raw_signed(body.as_bytes(), &base64_encode(body.as_bytes()), secret)
    }

    /// The signature header of a valid request with the next nonce.
    fn valid_signature(&self) -> String {
        let body = self.body_with(&self.next.to_string());
        sign_payload(
            self.secret.as_bytes(),
            base64_encode(body.as_bytes()).as_bytes(),
        )
    }
}

/// What a case must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A catalogue answer: status and exact JSON body.
    Api(u16, &'static str),
    /// A failure of the HTTP layer: status only (`docs/design-decisions.md` 9).
    Transport(u16),
    /// Accepted: 200 with the upstream's answer, and the upstream got exactly the body.
    Accepted,
}

struct Case {
    name: &'static str,
    build: Build,
    expect: Expect,
}

/// How a case makes its request.
#[derive(Clone, Copy)]
enum Build {
    /// Any request.
    With(fn(&Ctx) -> Req),
    /// This body (a template, [`Ctx::fill`]) as body and payload, correctly signed.
    Body(&'static str),
    /// The standard body with this JSON nonce text (a template), signed.
    Nonce(&'static str),
    /// A valid request without these headers.
    Remove(&'static [&'static str]),
    /// A valid request with this header set to this value.
    Set(&'static str, &'static str),
    /// A valid request with this header added.
    Add(&'static str, &'static str),
}

impl Case {
    fn request(&self, ctx: &Ctx) -> Req {
        match self.build {
            Build::With(build) => build(ctx),
            Build::Body(template) => ctx.signed(ctx.fill(template)),
            Build::Nonce(template) => ctx.with_nonce(&ctx.fill(template)),
            Build::Remove(names) => names.iter().fold(ctx.valid(), |req, name| req.remove(name)),
            Build::Set(name, value) => ctx.valid().set(name, value),
            Build::Add(name, value) => ctx.valid().add(name, value),
        }
    }
}

/// A case whose request `build` makes (a group of one).
fn case(name: &'static str, build: fn(&Ctx) -> Req, expect: Expect) -> Vec<Case> {
    row(name, Build::With(build), expect)
}

/// A case whose request is made as `build` says (a group of one).
fn row(name: &'static str, build: Build, expect: Expect) -> Vec<Case> {
    vec![Case {
        name,
        build,
        expect,
    }]
}

/// Cases that all expect `expect`: (name, template) rows made into requests as `build` says
/// ([`Build::Body`] or [`Build::Nonce`]).
fn each(
    expect: Expect,
    build: fn(&'static str) -> Build,
    rows: &[(&'static str, &'static str)],
) -> Vec<Case> {
    rows.iter()
        .map(|&(name, template)| Case {
            name,
            build: build(template),
            expect,
        })
        .collect()
}

use Build::{Add, Body, Nonce, Remove, Set};
use Expect::{Accepted, Api, Transport};

/// A body whose standard base64 contains `+` or `/` (so the URL-safe alphabet differs).
fn body_with_url_unsafe_base64(ctx: &Ctx) -> String {
    for pad in 0..64 {
        let body = format!(
            r#"{{"request":"{ORDER}","nonce":{},"note":"{}???~~~"}}"#,
            ctx.next,
            "x".repeat(pad)
        );
        let b64 = base64_encode(body.as_bytes());
        if b64.contains('+') && b64.contains('/') {
            return body;
        }
    }
    panic!("no body with + and / in its base64");
}

/// A standard body whose length is 1 modulo 3 (its base64 ends in `X==`).
fn body_len_one_mod_three(ctx: &Ctx) -> String {
    let mut body = ctx.body_with(&ctx.next.to_string());
    while body.len() % 3 != 1 {
        body = body.replacen("\"ticker\":\"", "\"ticker\":\"X", 1);
    }
    body
}

/// A body of exactly `len` bytes (padded in a string parameter).
fn body_of_len(ctx: &Ctx, len: usize) -> String {
    let head = format!(r#"{{"request":"{ORDER}","nonce":{},"note":""#, ctx.next);
    let fill = len - head.len() - 2;
    format!("{head}{}\"}}", "x".repeat(fill))
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    [
        // --- Missing and empty headers (rows 3-5; empty counts as missing) ---------------
        row(
            "apikey missing",
            Remove(&["X-TXC-APIKEY"]),
            Api(401, KEY_MISSING),
        ),
        row(
            "payload missing",
            Remove(&["X-TXC-PAYLOAD"]),
            Api(401, PAYLOAD_MISSING),
        ),
        row(
            "signature missing",
            Remove(&["X-TXC-SIGNATURE"]),
            Api(401, SIGNATURE_MISSING),
        ),
        row(
            "all three missing: row 3 first",
            Remove(&["X-TXC-APIKEY", "X-TXC-PAYLOAD", "X-TXC-SIGNATURE"]),
            Api(401, KEY_MISSING),
        ),
        row(
            "payload and signature missing: row 4 first",
            Remove(&["X-TXC-PAYLOAD", "X-TXC-SIGNATURE"]),
            Api(401, PAYLOAD_MISSING),
        ),
        row(
            "apikey empty",
            Set("X-TXC-APIKEY", ""),
            Api(401, KEY_MISSING),
        ),
        row(
            "payload empty",
            Set("X-TXC-PAYLOAD", ""),
            Api(401, PAYLOAD_MISSING),
        ),
        row(
            "signature empty",
            Set("X-TXC-SIGNATURE", ""),
            Api(401, SIGNATURE_MISSING),
        ),
        // Surrounding whitespace is not part of a field value (RFC 9110 5.5): empty.
        row(
            "apikey only spaces",
            Set("X-TXC-APIKEY", "   "),
            Api(401, KEY_MISSING),
        ),
        case(
            // Row 5 is checked before the payload is looked at (row 6).
            "signature missing, payload not base64",
            |c| {
                c.valid()
                    .remove("X-TXC-SIGNATURE")
                    .set("X-TXC-PAYLOAD", "!!!!")
            },
            Api(401, SIGNATURE_MISSING),
        ),
        // --- Duplicated headers (docs/design-decisions.md 2) ----------------------------------------
        case(
            "apikey sent twice",
            |c| c.valid().add("X-TXC-APIKEY", c.key.clone()),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "apikey twice, names in other case",
            |c| c.valid().add("x-txc-apikey", c.key.clone()),
            Api(401, UNAUTHORIZED),
        ),
        row(
            "apikey twice, second empty",
            Add("X-TXC-APIKEY", ""),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "payload sent twice",
            |c| {
                let p = base64_encode(c.body_with(&c.next.to_string()).as_bytes());
                c.valid().add("X-TXC-PAYLOAD", p)
            },
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "signature sent twice",
            |c| c.valid().add("X-TXC-SIGNATURE", c.valid_signature()),
            Api(401, UNAUTHORIZED),
        ),
        // --- Oversized headers --------------------------------------------------------------
        case(
            "apikey of 10 KiB",
            |c| c.valid().set("X-TXC-APIKEY", "k".repeat(10 * 1024)),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature of 10 KiB of hex",
            |c| c.valid().set("X-TXC-SIGNATURE", "ab".repeat(5 * 1024)),
            Api(401, UNAUTHORIZED),
        ),
        case(
            // docs/design-decisions.md 9: headers over the limit are refused by the HTTP layer.
            "header block over the limit (500 KB header)",
            |c| c.valid().add("X-Pad", "p".repeat(500_000)),
            Transport(431),
        ),
        case(
            "payload header over the limit (500 KB)",
            |c| c.valid().set("X-TXC-PAYLOAD", "QUFB".repeat(125_000)),
            Transport(431),
        ),
        // --- Non-UTF-8 and non-visible-ASCII values (docs/design-decisions.md 2) ---------------------
        case(
            "apikey not UTF-8",
            |c| c.valid().set("X-TXC-APIKEY", b"key\xff\xfe".to_vec()),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "apikey UTF-8 but not ASCII",
            |c| c.valid().set("X-TXC-APIKEY", "ключ".as_bytes().to_vec()),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "apikey with an inner space",
            |c| c.valid().set("X-TXC-APIKEY", format!("{} x", c.key)),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "apikey with a tab inside",
            |c| c.valid().set("X-TXC-APIKEY", format!("{}\tx", c.key)),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "payload not UTF-8",
            |c| {
                let mut p = base64_encode(c.body_with(&c.next.to_string()).as_bytes()).into_bytes();
                p.push(0xe9);
                c.valid().set("X-TXC-PAYLOAD", p)
            },
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "signature not UTF-8",
            |c| c.with_signature_byte(0, 0xff),
            Api(401, UNAUTHORIZED),
        ),
        // --- CR / LF / control bytes in values ------------------------------------------
        case(
            "bare CR inside the apikey",
            |c| c.valid().set("X-TXC-APIKEY", format!("{}\rx", c.key)),
            Transport(400),
        ),
        case(
            // The LF ends the line; what follows is not a header line.
            "bare LF inside the apikey",
            |c| c.valid().set("X-TXC-APIKEY", format!("{}\nx", c.key)),
            Transport(400),
        ),
        case(
            "NUL inside the signature",
            |c| c.with_signature_byte(10, 0),
            Transport(400),
        ),
        case(
            "obsolete line folding in the payload",
            |c| {
                let p = base64_encode(c.body_with(&c.next.to_string()).as_bytes());
                let (a, b) = p.split_at(8);
                c.valid().set("X-TXC-PAYLOAD", format!("{a}\r\n {b}"))
            },
            Transport(400),
        ),
        case(
            // CRLF injected into the value adds a second signature header: a duplicate.
            "CRLF in the signature injects a second one",
            |c| c.with_signature(|s| format!("{s}\r\nX-TXC-SIGNATURE: {s}")),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "CRLF in the payload injects a second one",
            |c| {
                let p = base64_encode(c.body_with(&c.next.to_string()).as_bytes());
                c.valid()
                    .set("X-TXC-PAYLOAD", format!("{p}\r\nX-TXC-PAYLOAD: {p}"))
            },
            Api(400, BAD_PAYLOAD),
        ),
        row(
            "space before the colon of a header name",
            Add("X-TXC-Extra ", "1"),
            Transport(400),
        ),
        case(
            "not a request line",
            |_| Req {
                method: "GARBAGE".into(),
                target: "\u{1}".into(),
                headers: Vec::new(),
                body: Vec::new(),
                framing: Framing::AsIs,
                nonce: None,
            },
            Transport(400),
        ),
        // --- Signature (row 12) -------------------------------------------------------------
        case(
            "signature truncated by one character",
            |c| c.with_signature(|s| s[..127].to_owned()),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature truncated to 256 bits",
            |c| c.with_signature(|s| s[..64].to_owned()),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature one character too long",
            |c| c.with_signature(|s| format!("{s}0")),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature twice over, concatenated",
            |c| c.with_signature(|s| format!("{s}{s}")),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature not hex (g in place of a digit)",
            |c| c.with_signature(|s| format!("g{}", &s[1..])),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature with a 0x prefix",
            |c| c.with_signature(|s| format!("0x{}", &s[2..])),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature in base64 instead of hex",
            |c| {
                c.with_signature(|s| {
                    let raw = hex_decode(s.as_bytes()).expect("hex");
                    base64::engine::general_purpose::STANDARD.encode(raw)
                })
            },
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature computed over the body instead of the payload",
            |c| c.signed_over(&c.standard()),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature valid for another key",
            |c| c.signed_with(&c.other_secret),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "another key's id with this key's signature",
            |c| c.valid().set("X-TXC-APIKEY", c.other_key.clone()),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature of another payload",
            |c| {
                let other = c.body_with(&(c.next + 1).to_string());
                c.signed_over(&base64_encode(other.as_bytes()))
            },
            Api(401, UNAUTHORIZED),
        ),
        case(
            "signature keyed with the secret's hex",
            |c| c.signed_with(&whitebit_auth::encoding::hex_encode(c.secret.as_bytes())),
            Api(401, UNAUTHORIZED),
        ),
        row(
            "unknown key",
            Set("X-TXC-APIKEY", "no-such-key"),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "known key with a trailing character",
            |c| c.valid().set("X-TXC-APIKEY", format!("{}x", c.key)),
            Api(401, UNAUTHORIZED),
        ),
        // --- Payload (row 6) ----------------------------------------------------------------
        case(
            "payload not base64",
            |c| c.with_payload(&c.standard(), |_| "!!not*base64!!".to_owned()),
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "payload in the URL-safe alphabet",
            |c| {
                c.with_payload(&body_with_url_unsafe_base64(c), |p| {
                    p.replace('+', "-").replace('/', "_")
                })
            },
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "payload of a different body",
            |c| {
                let other = c.body_with(&(c.next + 1).to_string());
                c.with_payload(&c.standard(), |_| base64_encode(other.as_bytes()))
            },
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "body with a trailing newline the payload lacks",
            |c| {
                let payload = base64_encode(c.standard().as_bytes());
                c.with_payload(&format!("{}\n", c.standard()), |_| payload)
            },
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "empty body, valid payload",
            |c| c.with_payload("", |_| base64_encode(c.standard().as_bytes())),
            Api(400, BAD_PAYLOAD),
        ),
        case(
            // docs/design-decisions.md 3: trailing bits must be zero.
            "payload with non-zero trailing bits",
            |c| {
                c.with_payload(&body_len_one_mod_three(c), |p| {
                    let alphabet =
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                    let last = p.trim_end_matches('=');
                    let ch = last.chars().last().expect("a char");
                    let i = alphabet.find(ch).expect("in alphabet");
                    let tweaked = alphabet.as_bytes()[i + 1] as char;
                    format!("{}{tweaked}==", &last[..last.len() - 1])
                })
            },
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "payload with padding in the middle",
            |c| c.with_payload(&c.standard(), |p| format!("{}={}", &p[..4], &p[4..])),
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "payload with too much padding",
            |c| c.with_payload(&body_len_one_mod_three(c), |p| format!("{p}=")),
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "payload with a space inside",
            |c| c.with_payload(&c.standard(), |p| format!("{} {}", &p[..8], &p[8..])),
            Api(400, BAD_PAYLOAD),
        ),
        // --- JSON (row 6) -------------------------------------------------------------------
        each(
            Api(400, BAD_PAYLOAD),
            Body,
            &[
                (
                    "JSON array",
                    r#"[{"request":"/api/v4/order/new","nonce":1}]"#,
                ),
                ("JSON string", r#""/api/v4/order/new""#),
                ("JSON number", "12345"),
                ("JSON null", "null"),
                ("JSON true", "true"),
                (
                    "form encoding instead of JSON",
                    "request=%2Fapi%2Fv4%2Forder%2Fnew&nonce={next}",
                ),
            ],
        ),
        case(
            "100,000 levels of nesting",
            |c| {
                let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
                c.signed(format!(
                    r#"{{"request":"{ORDER}","nonce":{},"deep":{deep}}}"#,
                    c.next
                ))
            },
            Api(400, BAD_PAYLOAD),
        ),
        each(
            Api(400, BAD_PAYLOAD),
            Body,
            &[
                (
                    "duplicate nonce key",
                    r#"{"request":"{order}","nonce":{next},"nonce":{next+1}}"#,
                ),
                (
                    "duplicate request key",
                    r#"{"request":"{order}","request":"{order}","nonce":{next}}"#,
                ),
                // docs/design-decisions.md 4: keys are compared after unescaping.
                (
                    "duplicate key spelled with an escape",
                    r#"{"request":"{order}","nonce":{next},"\u006eonce":{next+1}}"#,
                ),
                (
                    "duplicate key in a nested object",
                    r#"{"request":"{order}","nonce":{next},"p":{"a":1,"a":2}}"#,
                ),
                ("trailing comma", r#"{"request":"{order}","nonce":{next},}"#),
                ("single quotes", "{'request':'{order}','nonce':{next}}"),
            ],
        ),
        case(
            "trailing garbage after the object",
            |c| c.signed(format!("{}x", c.body_with(&c.next.to_string()))),
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "two objects",
            |c| {
                let b = c.body_with(&c.next.to_string());
                c.signed(format!("{b}{b}"))
            },
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "invalid UTF-8 inside a string",
            |c| {
                let mut b = c.body_with(&c.next.to_string()).into_bytes();
                let at = b.windows(3).position(|w| w == b"BTC").expect("BTC");
                b[at] = 0xff;
                c.signed(b)
            },
            Api(400, BAD_PAYLOAD),
        ),
        each(
            Api(400, BAD_PAYLOAD),
            Body,
            &[
                (
                    "a comment in the JSON",
                    r#"{"request":"{order}",/* x */"nonce":{next}}"#,
                ),
                (
                    "NaN as a value",
                    r#"{"request":"{order}","nonce":{next},"p":NaN}"#,
                ),
            ],
        ),
        case(
            // Numbers are kept as their text (docs/design-decisions.md 4, 24): forwarded byte for byte.
            "huge number in a parameter (5,000 digits) is forwarded as is",
            |c| {
                let body = format!(
                    r#"{{"request":"{ORDER}","nonce":{},"amount":{}}}"#,
                    c.next,
                    "9".repeat(5_000)
                );
                c.signed(body).accepted_nonce(c.next)
            },
            Accepted,
        ),
        case(
            "huge exponent in a parameter is forwarded as is",
            |c| {
                let body = format!(
                    r#"{{"request":"{ORDER}","nonce":{},"amount":1e999999999}}"#,
                    c.next
                );
                c.signed(body).accepted_nonce(c.next)
            },
            Accepted,
        ),
        // --- request (rows 7, 8) ----------------------------------------------------------
        each(
            Api(400, REQUEST_MISSING),
            Body,
            &[
                ("empty object", "{}"),
                ("request missing", r#"{"nonce":{next}}"#),
                // docs/design-decisions.md 5.
                ("request null", r#"{"request":null,"nonce":{next}}"#),
                ("request a number", r#"{"request":1,"nonce":{next}}"#),
                (
                    "request an array",
                    r#"{"request":["{order}"],"nonce":{next}}"#,
                ),
                (
                    "request missing and nonce invalid: row 7 first",
                    r#"{"nonce":-1}"#,
                ),
            ],
        ),
        each(
            Api(400, PATH_MISMATCH),
            Body,
            &[
                (
                    "request with a query",
                    r#"{"request":"{order}?market=BTC_USDT","nonce":{next}}"#,
                ),
                (
                    "request with a fragment",
                    r#"{"request":"{order}#x","nonce":{next}}"#,
                ),
                // docs/design-decisions.md 1: no percent decoding.
                (
                    "request percent-encoded",
                    r#"{"request":"/api/v4/order/%6Eew","nonce":{next}}"#,
                ),
                (
                    "request with a trailing slash",
                    r#"{"request":"{order}/","nonce":{next}}"#,
                ),
                // docs/design-decisions.md 1: no case folding.
                (
                    "request in other case",
                    r#"{"request":"/API/v4/Order/New","nonce":{next}}"#,
                ),
                (
                    "request without the leading slash",
                    r#"{"request":"api/v4/order/new","nonce":{next}}"#,
                ),
                (
                    "request as a full URL",
                    r#"{"request":"http://127.0.0.1{order}","nonce":{next}}"#,
                ),
                // docs/design-decisions.md 1: dot segments get row 8.
                (
                    "request with a dot segment",
                    r#"{"request":"/api/v4/./order/new","nonce":{next}}"#,
                ),
                ("request empty string", r#"{"request":"","nonce":{next}}"#),
                (
                    "request mismatch and nonce missing: row 8 first",
                    r#"{"request":"/api/v4/order/other"}"#,
                ),
            ],
        ),
        case(
            // docs/design-decisions.md 1: the URL may carry no query either.
            "URL with a query, request without",
            |c| c.valid().target("/api/v4/order/new?market=BTC_USDT"),
            Api(400, PATH_MISMATCH),
        ),
        case(
            // docs/design-decisions.md 1: an encoded slash gets row 8 even when `request` spells it too.
            "URL and request with an encoded slash",
            |c| {
                c.signed(format!(
                    r#"{{"request":"/api/v4/order%2Fnew","nonce":{}}}"#,
                    c.next
                ))
                .target("/api/v4/order%2Fnew")
            },
            Api(400, PATH_MISMATCH),
        ),
        case(
            "URL with a dot-dot segment",
            |c| c.valid().target("/api/v4/x/../order/new"),
            Api(400, PATH_MISMATCH),
        ),
        case(
            // Rows 1-13 pass (same text both sides); no route matches another case: 404.
            "URL and request both in other case",
            |c| {
                c.signed(format!(
                    r#"{{"request":"/API/v4/order/new","nonce":{}}}"#,
                    c.next
                ))
                .target("/API/v4/order/new")
            },
            Api(404, NOT_FOUND),
        ),
        case(
            // docs/design-decisions.md 1: repeated slashes are merged on both sides, so this one is fine.
            "request with repeated slashes is the same path",
            |c| {
                c.signed(format!(
                    r#"{{"request":"/api/v4//order/new","nonce":{}}}"#,
                    c.next
                ))
                .accepted_nonce(c.next)
            },
            Accepted,
        ),
        // --- nonce (rows 9, 10) -----------------------------------------------------------
        row(
            "nonce missing",
            Body(r#"{"request":"{order}"}"#),
            Api(400, NONCE_MISSING),
        ),
        row("nonce null", Nonce("null"), Api(400, NONCE_MISSING)),
        each(
            Api(400, BAD_NONCE),
            Nonce,
            &[
                ("nonce negative", "-1"),
                ("nonce minus zero", "-0"),
                ("nonce float", "{next}.5"),
                ("nonce integral float", "{next}.0"),
                ("nonce with an exponent", "1e3"),
                ("nonce with a capital exponent", "17E11"),
            ],
        ),
        // RFC 8259 numbers have no leading zeros: not JSON at all, so row 6 comes first.
        row(
            "nonce with leading zeros as a number",
            Nonce("00{next}"),
            Api(400, BAD_PAYLOAD),
        ),
        // docs/design-decisions.md 5: digit strings must be canonical.
        row(
            "nonce with leading zeros as a string",
            Nonce("\"00{next}\""),
            Api(400, BAD_NONCE),
        ),
        case(
            // Not JSON: row 6.
            "nonce in hex as a number",
            |c| c.with_nonce(&format!("0x{:x}", c.next)),
            Api(400, BAD_PAYLOAD),
        ),
        case(
            "nonce in hex as a string",
            |c| c.with_nonce(&format!("\"0x{:x}\"", c.next)),
            Api(400, BAD_NONCE),
        ),
        each(
            Api(400, BAD_NONCE),
            Nonce,
            &[
                ("nonce above u64", "18446744073709551616"),
                ("nonce above u64 as a string", "\"18446744073709551616\""),
            ],
        ),
        case(
            "nonce of 1,000 digits",
            |c| c.with_nonce(&"9".repeat(1_000)),
            Api(400, BAD_NONCE),
        ),
        each(
            Api(400, BAD_NONCE),
            Nonce,
            &[
                ("nonce true", "true"),
                ("nonce false", "false"),
                ("nonce an array", "[{next}]"),
                ("nonce an object", "{}"),
                ("nonce empty string", "\"\""),
                ("nonce string with a space", "\" {next}\""),
                ("nonce string with a plus", "\"+{next}\""),
            ],
        ),
        case(
            // Row 10 comes before row 12.
            "nonce invalid and signature wrong: row 10 first",
            |c| c.with_nonce("-5").set("X-TXC-SIGNATURE", "0".repeat(128)),
            Api(400, BAD_NONCE),
        ),
        // --- nonceWindow (row 11) ---------------------------------------------------------
        each(
            Api(400, BAD_WINDOW),
            Body,
            &[
                (
                    "nonceWindow as a string",
                    r#"{"request":"{order}","nonce":{wn},"nonceWindow":"true"}"#,
                ),
                (
                    "nonceWindow as the number 1",
                    r#"{"request":"{order}","nonce":{wn},"nonceWindow":1}"#,
                ),
                (
                    "nonceWindow as the number 0",
                    r#"{"request":"{order}","nonce":{wn},"nonceWindow":0}"#,
                ),
                // docs/design-decisions.md 5.
                (
                    "nonceWindow null",
                    r#"{"request":"{order}","nonce":{wn},"nonceWindow":null}"#,
                ),
                (
                    "nonceWindow an array",
                    r#"{"request":"{order}","nonce":{wn},"nonceWindow":[true]}"#,
                ),
            ],
        ),
        case(
            "nonce and nonceWindow both invalid: row 10 first",
            |c| {
                c.signed(format!(
                    r#"{{"request":"{ORDER}","nonce":-1,"nonceWindow":"yes"}}"#
                ))
            },
            Api(400, BAD_NONCE),
        ),
        case(
            "nonceWindow invalid and key unknown: row 11 first",
            |c| {
                c.signed(format!(
                    r#"{{"request":"{ORDER}","nonce":{},"nonceWindow":1}}"#,
                    c.wn
                ))
                .set("X-TXC-APIKEY", "no-such-key")
            },
            Api(400, BAD_WINDOW),
        ),
        case(
            "window mode, signature wrong",
            |c| c.window(c.wn).set("X-TXC-SIGNATURE", "0".repeat(128)),
            Api(401, UNAUTHORIZED),
        ),
        case(
            "window mode, payload of another body",
            |c| {
                let body = c.window_body(c.wn);
                let other = c.window_body(c.wn + 1);
                c.raw_signed(body.as_bytes(), &base64_encode(other.as_bytes()), &c.secret)
            },
            Api(400, BAD_PAYLOAD),
        ),
        // --- Other rows and orders ------------------------------------------------------
        case(
            "GET: row 1 before everything",
            |c| c.valid().method("GET").remove("X-TXC-APIKEY"),
            Api(405, METHOD),
        ),
        case("PUT", |c| c.valid().method("PUT"), Api(405, METHOD)),
        case(
            "Content-Type text/plain, apikey missing: the 415 first",
            |c| {
                c.valid()
                    .set("Content-Type", "text/plain")
                    .remove("X-TXC-APIKEY")
            },
            Api(415, MEDIA),
        ),
        row(
            "a second, wrong Content-Type",
            Add("Content-Type", "text/plain"),
            Api(415, MEDIA),
        ),
        case(
            "path of another kind",
            |c| {
                c.signed(format!(
                    r#"{{"request":"/api/v4/main-account/balance","nonce":{}}}"#,
                    c.next
                ))
                .target("/api/v4/main-account/balance")
            },
            Api(403, FORBIDDEN),
        ),
        case(
            "path no route serves",
            |c| {
                c.signed(format!(
                    r#"{{"request":"/other/thing","nonce":{}}}"#,
                    c.next
                ))
                .target("/other/thing")
            },
            Api(404, NOT_FOUND),
        ),
        // --- Nonce state (row 16c) -------------------------------------------------------
        case(
            "strict nonce equal to the last accepted",
            |c| c.with_nonce(&(c.next - 1).to_string()),
            Api(429, TOO_MANY),
        ),
        row(
            "strict nonce zero after others",
            Nonce("0"),
            Api(429, TOO_MANY),
        ),
        // --- Framing and the body limit (row 2) ----------------------------------------
        case(
            "Content-Length over the limit, body never sent",
            |c| c.valid().framing(Framing::Declared(LIMIT as u64 + 1)),
            Api(413, TOO_LARGE),
        ),
        case(
            "Content-Length of a terabyte, headers missing: row 2 first",
            |c| {
                c.valid()
                    .remove("X-TXC-APIKEY")
                    .framing(Framing::Declared(1 << 40))
            },
            Api(413, TOO_LARGE),
        ),
        case(
            "signed body one byte over the limit, Content-Length",
            |c| c.signed(body_of_len(c, LIMIT + 1)),
            Api(413, TOO_LARGE),
        ),
        case(
            "body one byte over the limit, chunked",
            |c| {
                c.signed(body_of_len(c, LIMIT + 1))
                    .framing(Framing::Chunked(16 * 1024))
            },
            Api(413, TOO_LARGE),
        ),
        case(
            "body twice the limit in small chunks",
            |c| {
                c.valid()
                    .body(body_of_len(c, 2 * LIMIT))
                    .framing(Framing::Chunked(1000))
            },
            Api(413, TOO_LARGE),
        ),
        case(
            "body exactly at the limit is accepted",
            |c| c.signed(body_of_len(c, LIMIT)).accepted_nonce(c.next),
            Accepted,
        ),
        case(
            "chunked body within the limit is accepted",
            |c| c.valid().framing(Framing::Chunked(7)),
            Accepted,
        ),
        case(
            "Content-Length not a number",
            |c| {
                let body = c.body_with(&c.next.to_string());
                c.valid()
                    .add("Content-Length", "abc")
                    .body(body)
                    .framing(Framing::AsIs)
            },
            Transport(400),
        ),
        case(
            "two different Content-Lengths",
            |c| {
                let body = c.body_with(&c.next.to_string());
                let n = body.len();
                c.valid()
                    .add("Content-Length", n.to_string())
                    .add("Content-Length", (n + 1).to_string())
                    .body(body)
                    .framing(Framing::AsIs)
            },
            Transport(400),
        ),
        case(
            // RFC 9112 6.1: with both framings the request is read by Transfer-Encoding alone
            // (and the connection closed after): the lying Content-Length of 5 does not cut the
            // body short, so the whole signed body arrives and nothing is left over to be read
            // as a second request.
            "Content-Length and chunked together: chunked wins",
            |c| {
                c.valid()
                    .add("Content-Length", "5")
                    .framing(Framing::Chunked(16))
            },
            Accepted,
        ),
        case(
            "200 extra headers",
            |c| (0..200).fold(c.valid(), |r, i| r.add(&format!("X-Extra-{i}"), "1")),
            Transport(431),
        ),
        case(
            "invalid chunk size",
            |c| {
                c.valid()
                    .add("Transfer-Encoding", "chunked")
                    .body("zz\r\n{}\r\n0\r\n\r\n")
                    .framing(Framing::AsIs)
            },
            Transport(400),
        ),
        // --- Window edges (row 16a, 16b), last: they move the high-water mark -------------
        case(
            "window nonce 5001 ms old",
            |c| c.window(c.now - 5_001),
            Api(429, TOO_OLD),
        ),
        case(
            "window nonce 5001 ms ahead",
            |c| c.window(c.now + 5_001),
            Api(429, TOO_NEW),
        ),
        case(
            "window nonce u64::MAX",
            |c| c.window(u64::MAX),
            Api(429, TOO_NEW),
        ),
        case(
            "window nonce exactly 5000 ms old is accepted",
            |c| c.window(c.now - 5_000),
            Accepted,
        ),
        case(
            "window nonce exactly 5000 ms ahead is accepted",
            |c| c.window(c.now + 5_000),
            Accepted,
        ),
        case(
            "window nonce replayed (16b)",
            |c| c.window(c.now + 5_000),
            Api(429, TOO_MANY),
        ),
        case(
            "window nonce 5000 ms old replayed (16b)",
            |c| c.window(c.now - 5_000),
            Api(429, TOO_MANY),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

// ---------------------------------------------------------------------------------------------
// The gateway for the table
// ---------------------------------------------------------------------------------------------

/// Starts `wbauth serve` with `listen` lines added to `[listen]` and `extra` TOML appended;
/// the test clock frozen at T0.
async fn start(upstream: &Upstream, listen: &str, extra: &str) -> Gateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), upstream.addr, extra);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen(
        "[listen]\naddr = \"127.0.0.1:0\"\n",
        &format!("[listen]\naddr = \"127.0.0.1:0\"\n{listen}"),
        1,
    );
    assert!(text.contains(listen), "{text}");
    std::fs::write(&config, text).expect("config written");
    let mut gateway = spawn_serve(
        dir.path(),
        Path::new(&config),
        &[("WBAUTH_ADMIN_TOKEN", TOKEN)],
        "stderr.log",
    )
    .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    gateway._dir_guard = Some(dir);
    gateway.clock(json!({"set_ms": T0})).await;
    gateway
}

fn addr_of(gw: &Gateway) -> String {
    gw.base.trim_start_matches("http://").to_owned()
}

async fn send(addr: &str, req: &Req) -> Reply {
    let (addr, bytes) = (addr.to_owned(), req.bytes());
    tokio::task::spawn_blocking(move || raw::exchange(&addr, bytes))
        .await
        .expect("exchange")
}

/// Checks `reply` against `expect`; `Err(why)` when it differs.
fn check(reply: &Reply, expect: Expect) -> Result<(), String> {
    let Reply::Response(r) = reply else {
        return Err(format!("closed without an answer: {reply:?}"));
    };
    let shown = || format!("{} {:?} {}", r.status, r.headers, r.body_text());
    match expect {
        Api(status, body) => {
            if r.status != status || r.body_text() != body {
                return Err(format!("want {status} {body}, got {}", shown()));
            }
            if r.header("content-type") != Some("application/json") {
                return Err(format!("not application/json: {}", shown()));
            }
            if status == 405 && r.header("allow") != Some("POST") {
                return Err(format!("405 without Allow: POST: {}", shown()));
            }
        }
        Transport(status) => {
            if r.status != status {
                return Err(format!("want {status}, got {}", shown()));
            }
        }
        Accepted => {
            if r.status != 200 || r.body_text() != UPSTREAM_ANSWER {
                return Err(format!("want 200 {UPSTREAM_ANSWER}, got {}", shown()));
            }
        }
    }
    Ok(())
}

fn ok_response(reply: &Reply) -> Result<&RawResponse, String> {
    match reply {
        Reply::Response(r) if r.status == 200 && r.body_text() == UPSTREAM_ANSWER => Ok(r),
        other => Err(format!("a valid request was not accepted: {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_input_table() {
    let started = Instant::now();
    let upstream = Upstream::start().await;
    let gw = start(
        &upstream,
        "",
        &format!("\n[verify]\nmax_body_bytes = {LIMIT}\n"),
    )
    .await;
    let (other_key, other_secret) = gw.provision_key("table-b", "trade", &[]).await;
    let mut ctx = Ctx {
        other_key,
        other_secret,
        wn: 0,
        ..Ctx::provisioned(&gw, "table-a").await
    };
    // One accepted request first, so the key has a high-water mark.
    let first = ctx.valid();
    ok_response(&send(&ctx.addr, &first).await).expect("the first valid request");
    ctx.next += 1;

    let cases = cases();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        // Distinct window nonces, 10 ms apart, well inside the window, below the edges.
        ctx.wn = ctx.now - 4_000 + 10 * i as u64;
        let req = case.request(&ctx);
        let before = upstream.count();
        let reply = send(&ctx.addr, &req).await;
        let mut problems = Vec::new();
        if let Err(e) = check(&reply, case.expect) {
            problems.push(e);
        }
        let forwarded = upstream.count() - before;
        if matches!(case.expect, Accepted) {
            if forwarded != 1 {
                problems.push(format!("forwarded {forwarded} requests, want 1"));
            } else if upstream.last().body != req.body {
                problems.push("the upstream got another body".to_owned());
            }
            let nonce = req.nonce.expect("accepted cases say their nonce");
            ctx.next = ctx.next.max(nonce + 1);
        } else if forwarded != 0 {
            problems.push(format!("the upstream saw {forwarded} request(s)"));
        }

        // Nothing changed: the next strict nonce and this case's window nonce still work.
        let strict = ctx.valid();
        match ok_response(&send(&ctx.addr, &strict).await) {
            Ok(_) => ctx.next += 1,
            Err(e) => problems.push(format!("afterwards, strict nonce {}: {e}", ctx.next)),
        }
        let window = ctx.window(ctx.wn);
        match ok_response(&send(&ctx.addr, &window).await) {
            Ok(_) => ctx.next = ctx.next.max(ctx.wn + 1),
            Err(e) => problems.push(format!("afterwards, window nonce {}: {e}", ctx.wn)),
        }
        if upstream.count() != before + forwarded + 2 {
            problems.push("the follow-up requests were not both forwarded".to_owned());
        }
        if !problems.is_empty() {
            failures.push(format!("case {i} '{}': {}", case.name, problems.join("; ")));
        }
    }
    println!(
        "bad-input table: {} cases in {:?}",
        cases.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 80, "only {} cases", cases.len());
}

// ---------------------------------------------------------------------------------------------
// Slow clients
// ---------------------------------------------------------------------------------------------

/// A client far slower than the timeouts: one byte every 250 ms against 1 s timeouts, so a
/// request of a few hundred bytes would take over a minute to arrive.
const TRICKLE: Duration = Duration::from_millis(250);

fn cut_off(reply: &Reply) -> bool {
    match reply {
        Reply::Closed { partial } => partial.is_empty(),
        Reply::Response(r) => r.status == 408,
    }
}

/// Sends `bytes[..at]` at once, then the rest one byte every [`TRICKLE`].
async fn trickle(addr: &str, bytes: &[u8], at: usize) -> raw::Trickled {
    let (addr, prefix, rest) = (addr.to_owned(), bytes[..at].to_vec(), bytes[at..].to_vec());
    tokio::task::spawn_blocking(move || raw::trickle(&addr, &prefix, rest, TRICKLE))
        .await
        .expect("trickle")
}

/// The slow client was cut off (408 or closed) before it had sent everything.
fn assert_cut_off(what: &str, slow: &raw::Trickled) {
    println!(
        "{what}: cut off after {:?}, {} of {} bytes sent",
        slow.elapsed, slow.written, slow.total
    );
    assert!(cut_off(&slow.reply), "{what}: {:?}", slow.reply);
    assert!(
        slow.written < slow.total,
        "{what}: cut off before all was sent: {slow:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_unfinished_bodies_time_out() {
    let upstream = Upstream::start().await;
    let gw = start(
        &upstream,
        "header_timeout_ms = 1000\nbody_timeout_ms = 1000\n",
        "",
    )
    .await;
    let ctx = Ctx::provisioned(&gw, "slow").await;
    let request = ctx.valid().bytes();
    let head_len = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers")
        + 4;

    // Headers one byte at a time: cut off (408 or closed) long before they are complete.
    let slow = trickle(&ctx.addr, &request[..head_len], 10).await;
    assert_cut_off("slow headers", &slow);

    // All headers, then the body one byte at a time: the body timeout.
    let slow = trickle(&ctx.addr, &request, head_len).await;
    assert_cut_off("slow body", &slow);

    // A body that never finishes: the last 10 bytes are never sent.
    let truncated = request[..request.len() - 10].to_vec();
    let reply = send_bytes(&ctx.addr, truncated).await;
    assert!(cut_off(&reply), "unfinished body: {reply:?}");

    // Chunked, and the last chunk never comes.
    let chunked = ctx.valid().framing(Framing::Chunked(16)).bytes();
    let unfinished = chunked[..chunked.len() - 5].to_vec();
    let reply = send_bytes(&ctx.addr, unfinished).await;
    assert!(cut_off(&reply), "unfinished chunked body: {reply:?}");

    // Nothing reached the upstream and nothing was consumed: the same nonce is accepted.
    assert_eq!(upstream.count(), 0);
    let reply = send(&ctx.addr, &ctx.valid()).await;
    ok_response(&reply).expect("the same nonce afterwards");
    assert_eq!(upstream.count(), 1);
}

async fn send_bytes(addr: &str, bytes: Vec<u8>) -> Reply {
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || raw::exchange(&addr, bytes))
        .await
        .expect("exchange")
}

// ---------------------------------------------------------------------------------------------
// Idle connections and the connection limit
// ---------------------------------------------------------------------------------------------

/// The soft limit on open files of this process (the gateway inherits it).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn open_idle(addr: &str, n: usize) -> Vec<std::net::TcpStream> {
    (0..n).map(|_| raw::connect(addr)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_leave_the_gateway_responsive() {
    // 3000 idle connections, unless the open-file limit (shared by both processes' needs,
    // each holding one descriptor per connection) is too low for that.
    let limit = open_file_limit().unwrap_or(1024);
    let max = 3_000.min(limit.saturating_sub(300));
    assert!(max >= 500, "open-file limit {limit} too low for this test");
    if max < 3_000 {
        println!("open-file limit {limit}: {max} idle connections instead of 3000");
    }
    let upstream = Upstream::start().await;
    // Idle connections are not cut off by the header timeout during the test.
    let gw = start(
        &upstream,
        &format!("header_timeout_ms = 300000\nmax_connections = {max}\n"),
        "",
    )
    .await;
    let mut ctx = Ctx::provisioned(&gw, "idle").await;

    // 1. `max - 100` idle connections, opened in batches of 100 (so the listen queue never
    // overflows); after each batch a signed request on a fresh connection is served, and
    // served promptly (bounded by the read timeout; the slowest is printed).
    let t0 = Instant::now();
    let mut idle = Vec::new();
    let mut slowest = Duration::ZERO;
    while idle.len() < max - 100 {
        let batch = 100.min(max - 100 - idle.len());
        let addr = ctx.addr.clone();
        let more = tokio::task::spawn_blocking(move || open_idle(&addr, batch))
            .await
            .expect("connect");
        idle.extend(more);
        let started = Instant::now();
        let reply = send(&ctx.addr, &ctx.valid()).await;
        slowest = slowest.max(started.elapsed());
        ok_response(&reply).unwrap_or_else(|e| {
            panic!("with {} idle connections: {e}", idle.len());
        });
        ctx.next += 1;
    }
    println!(
        "{} idle connections opened in {:?}; signed requests between the batches answered in {slowest:?} at most",
        idle.len(),
        t0.elapsed()
    );

    // 2. Up to the limit, then one more: closed at once, no answer (documented behaviour of
    // `[listen] max_connections`). A request served instead means one of ours was refused
    // while the last request's connection still held its slot: replace it and try again.
    let mut refused = None;
    for _attempt in 0..10 {
        let missing = max - idle.len();
        let addr = ctx.addr.clone();
        let more = tokio::task::spawn_blocking(move || open_idle(&addr, missing))
            .await
            .expect("connect");
        idle.extend(more);
        let probe = ctx.valid();
        let reply = send(&ctx.addr, &probe).await;
        match reply {
            Reply::Closed { ref partial } if partial.is_empty() => {
                refused = Some(reply);
                break;
            }
            Reply::Response(ref r) if r.status == 200 => {
                ctx.next += 1;
                let before = idle.len();
                idle.retain(|s| !raw::is_closed_by_peer(s));
                assert!(idle.len() < before, "served beyond the limit: {reply:?}");
            }
            other => panic!("beyond the limit: {other:?}"),
        }
    }
    assert!(
        refused.is_some(),
        "a connection beyond the limit was closed"
    );
    println!(
        "limit {max} reached after {:?}: the next connection was closed",
        t0.elapsed()
    );
    let still_open = idle.iter().filter(|s| !raw::is_closed_by_peer(s)).count();
    assert_eq!(
        still_open, max,
        "the idle connections within the limit stay open"
    );
    let served_before = upstream.count();

    // 3. Free some slots: new requests are served again (bounded wait for the gateway to
    // notice the closed connections).
    idle.truncate(max - 100);
    let mut attempts = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        attempts += 1;
        let reply = send(&ctx.addr, &ctx.valid()).await;
        if ok_response(&reply).is_ok() {
            ctx.next += 1;
            break;
        }
        assert!(
            matches!(reply, Reply::Closed { .. }),
            "refused connections are closed, nothing else: {reply:?}"
        );
        assert!(Instant::now() < deadline, "no slot came free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.count(), served_before + 1);
    println!(
        "slots freed: served again after {:?} ({attempts} attempts)",
        t0.elapsed()
    );
    drop(idle);
}
