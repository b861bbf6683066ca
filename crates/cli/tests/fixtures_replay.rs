//! Stage-by-stage request fixtures (`tests/fixtures/requests/`, see its README): for every
//! captured client request, each stage is checked — `body.json` → `payload.b64` (base64 of the
//! body) → `signature.hex` (HMAC through the protocol's signing) → `request.http` (carries
//! exactly those headers and that body) — and then `request.http` is written raw over a TCP
//! connection to the real `wbauth serve`, whose status and body must equal `expected.json`
//! byte for byte. Accepted requests must reach the upstream as exactly the signed bytes;
//! refused ones must not reach it.

#![cfg(feature = "test-clock")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use whitebit_auth::encoding::base64_decode;
use whitebit_auth::mac::{HmacSha512Key, sign_payload};
use whitebit_auth::sign::sign_body;

use common::gateway::{T0, TOKEN, Upstream, spawn_serve, write_config};

/// The fixtures' credentials (also in the fixtures' README).
const KEY: &str = "1f6f9b4c2a7d8e0f3b5c7d9e1a2b4c6d";
const SECRET: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/requests")
}

/// A captured request, split into its parts.
struct Wire {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Wire {
    fn parse(raw: &[u8], case: &str) -> Self {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("{case}: request.http has no end of headers"));
        let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let request_line = lines.next().expect("request line").to_owned();
        let headers = lines
            .map(|line| {
                assert!(!line.contains('\n'), "{case}: bare LF in {line:?}");
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("{case}: header line {line:?}"));
                (name.to_owned(), value.trim().to_owned())
            })
            .collect();
        Self {
            request_line,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    /// Every value of the header `name` (any case).
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of `name`, `None` when absent; panics when repeated.
    fn one(&self, name: &str, case: &str) -> Option<&str> {
        let values = self.all(name);
        assert!(
            values.len() <= 1,
            "{case}: {name} sent {} times",
            values.len()
        );
        values.first().copied()
    }
}

/// Checks every stage of one case; returns the raw request to send.
fn check_stages(dir: &Path, expected: &Value) -> Vec<u8> {
    let case = dir
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let read = |name: &str| std::fs::read(dir.join(name));
    let body = read("body.json").expect("body.json");
    let payload = String::from_utf8(read("payload.b64").expect("payload.b64")).expect("ASCII");
    let signature = read("signature.hex")
        .ok()
        .map(|s| String::from_utf8(s).expect("ASCII"));
    let raw = read("request.http").expect("request.http");
    let flag = |name: &str| {
        expected[name]
            .as_bool()
            .unwrap_or_else(|| panic!("{case}: expected.json has a boolean {name}"))
    };

    // body.json → payload.b64: the payload decodes to exactly the body (or, where the case
    // says so, deliberately does not), and the protocol's own base64 of the body is the
    // payload (padding optional on the wire).
    let decoded = base64_decode(payload.as_bytes())
        .unwrap_or_else(|| panic!("{case}: payload.b64 is standard base64"));
    assert_eq!(
        decoded == body,
        flag("payload_is_body"),
        "{case}: payload vs body"
    );
    let signed = sign_body(decoded.clone(), &HmacSha512Key::new(SECRET.as_bytes()));
    assert_eq!(
        signed.payload.trim_end_matches('='),
        payload.trim_end_matches('='),
        "{case}: base64 of the signed bytes"
    );
    if flag("payload_is_body") {
        let of_body = sign_body(body.clone(), &HmacSha512Key::new(SECRET.as_bytes()));
        assert_eq!(
            of_body.payload.trim_end_matches('='),
            payload.trim_end_matches('='),
            "{case}: payload.b64 is the base64 of body.json"
        );
    }

    // payload.b64 → signature.hex: HMAC-SHA512 through the protocol's signing.
    let valid = signature.as_deref().is_some_and(|s| {
        s.eq_ignore_ascii_case(&sign_payload(SECRET.as_bytes(), payload.as_bytes()))
    });
    assert_eq!(valid, flag("signature_valid"), "{case}: signature");
    // Where the client sent the canonical forms, they are exactly what the protocol's signer
    // produces from the signed bytes.
    let lowercase = signature
        .as_deref()
        .is_some_and(|s| !s.bytes().any(|b| b.is_ascii_uppercase()));
    if valid && lowercase && payload == signed.payload {
        assert_eq!(
            signature.as_deref(),
            Some(signed.signature.as_str()),
            "{case}"
        );
    }

    // → request.http: exactly those headers and that body.
    let wire = Wire::parse(&raw, &case);
    assert!(
        wire.request_line.starts_with("POST ") && wire.request_line.ends_with(" HTTP/1.1"),
        "{case}: {}",
        wire.request_line
    );
    assert_eq!(wire.body, body, "{case}: request.http carries body.json");
    assert_eq!(
        wire.one("content-length", &case),
        Some(body.len().to_string().as_str()),
        "{case}: Content-Length"
    );
    assert_eq!(
        wire.one("x-txc-payload", &case),
        Some(payload.as_str()),
        "{case}: X-TXC-PAYLOAD is payload.b64"
    );
    assert_eq!(
        wire.one("x-txc-signature", &case),
        signature.as_deref(),
        "{case}: X-TXC-SIGNATURE is signature.hex"
    );
    let key = wire
        .one("x-txc-apikey", &case)
        .unwrap_or_else(|| panic!("{case}: X-TXC-APIKEY"));
    assert_eq!(key == KEY, flag("key_known"), "{case}: API key");
    raw
}

/// Writes `raw` over a fresh connection and reads one response: (status, content type, body).
async fn exchange(addr: &str, raw: &[u8]) -> (u16, Option<String>, Vec<u8>) {
    let io = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(raw).await.expect("request written");
        let mut buf = Vec::new();
        let split = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed before the response head");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..split].to_vec()).expect("ASCII head");
        let mut rest = buf[split + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let (mut length, mut content_type, mut chunked) = (None, None, false);
        for line in lines {
            let (name, value) = line.split_once(':').expect("header line");
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().expect("length"));
            } else if name.eq_ignore_ascii_case("content-type") {
                content_type = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        if chunked {
            // Read to the terminating chunk, then decode.
            while !rest.ends_with(b"0\r\n\r\n") {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed inside a chunked body");
                rest.extend_from_slice(&chunk[..n]);
            }
            let mut body = Vec::new();
            let mut at = 0;
            loop {
                let end = at
                    + rest[at..]
                        .windows(2)
                        .position(|w| w == b"\r\n")
                        .expect("size");
                let size = usize::from_str_radix(
                    std::str::from_utf8(&rest[at..end])
                        .expect("hex size")
                        .trim(),
                    16,
                )
                .expect("chunk size");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&rest[end + 2..end + 2 + size]);
                at = end + 2 + size + 2;
            }
            rest = body;
        } else {
            let length = length.expect("Content-Length or chunked");
            while rest.len() < length {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed inside the body");
                rest.extend_from_slice(&chunk[..n]);
            }
            rest.truncate(length);
        }
        (status, content_type, rest)
    };
    // A bound on a wait for a condition (the answer), never a sleep.
    tokio::time::timeout(Duration::from_secs(30), io)
        .await
        .expect("the gateway answered within 30 s")
}

/// Seeds the fixtures' key into `data_dir` with the sandbox's own seeding code, on a runtime
/// of its own that is gone (stores closed, locks released) before `wbauth serve` opens them.
fn seed(data_dir: PathBuf) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            use whitebit_gateway::open_stores;
            use whitebit_gateway::sandbox::{SandboxOptions, sandbox_config, seed_demo_key};
            let options = SandboxOptions {
                listen: "127.0.0.1:0".parse().expect("addr"),
                demo_key: Some(KEY.to_owned()),
                demo_secret: Some(SECRET.to_owned()),
                config_file: None,
                body_match: None,
                demo_kind: None,
                tls: None,
            };
            let config = sandbox_config(&options, &data_dir, &[]).expect("config");
            let stores = open_stores(&config, T0).await.expect("stores");
            seed_demo_key(&stores, &options, T0).await.expect("seeded");
        });
    })
    .join()
    .expect("seeding thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_stage_by_stage_then_byte_for_byte_against_the_gateway() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "{} fixture cases", cases.len());
    for shape in [
        "python-requests",
        "node-fetch",
        "php-curl",
        "window-mode",
        "params-typed",
    ] {
        assert!(
            cases.iter().any(|c| c.to_string_lossy().contains(shape)),
            "a {shape} case"
        );
    }

    // Every stage first, for every case: no gateway involved.
    let checked: Vec<(String, Value, Vec<u8>)> = cases
        .iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let expected: Value = serde_json::from_slice(
                &std::fs::read(dir.join("expected.json")).expect("expected.json"),
            )
            .expect("expected.json is JSON");
            let raw = check_stages(dir, &expected);
            (name, expected, raw)
        })
        .collect();

    // Then the real gateway: the key seeded, the clock frozen at T0, a recording upstream.
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        upstream.addr,
        "\n[[kind]]\nname = \"sandbox\"\npaths = [\"/*\"]\n",
    );
    seed(dir.path().join("data"));
    let t0 = T0.to_string();
    let gateway = spawn_serve(
        dir.path(),
        &config,
        &[("WBAUTH_ADMIN_TOKEN", TOKEN), ("WBAUTH_TEST_CLOCK_MS", &t0)],
        "stderr.log",
    )
    .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    let addr = gateway
        .base
        .strip_prefix("http://")
        .expect("http base")
        .to_owned();

    let mut accepted = 0;
    for (name, expected, raw) in &checked {
        let before = upstream.count();
        let (status, content_type, body) = exchange(&addr, raw).await;
        let want_status = expected["status"].as_u64().expect("status");
        let want_body = expected["body"].as_str().expect("body");
        assert_eq!(
            (u64::from(status), String::from_utf8_lossy(&body).as_ref()),
            (want_status, want_body),
            "{name}: status and body"
        );
        if status == 200 {
            accepted += 1;
            assert_eq!(upstream.count(), before + 1, "{name}: forwarded once");
            let wire = Wire::parse(raw, name);
            let payload = wire.one("x-txc-payload", name).expect("payload");
            assert_eq!(
                upstream.last().body,
                base64_decode(payload.as_bytes()).expect("base64"),
                "{name}: the upstream got exactly the signed bytes"
            );
        } else {
            assert_eq!(content_type.as_deref(), Some("application/json"), "{name}");
            assert_eq!(
                upstream.count(),
                before,
                "{name}: a refusal reaches no upstream"
            );
        }
    }
    println!(
        "fixtures: {} cases replayed byte for byte, {accepted} accepted, {} refused as expected",
        checked.len(),
        checked.len() - accepted
    );
    assert!(accepted >= 19, "{accepted} accepted cases");
    drop(gateway);
}
