//! The suite against servers written for this test: a small reference server built from the
//! protocol crate, which must pass, and four copies of it each with one flaw, which the suite
//! must fail naming the cases that catch it.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use wbauth_conformance::{Credentials, Group, Options, Report, Target, Verdict, run};
use whitebit_auth::ApiError;
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::nonce::{NonceBook, NonceMode, check_window_time};
use whitebit_auth::verify::{BodyMatch, HeaderValue, Rejection, RequestParts, check_request};

const KEY: &str = "4e32e2ba2e3b4b0b9d6f5c1a7e8f9a0b";
const SECRET: &str = "a5f3c1e9d7b2460f8e1c3a5b7d9f0e2c";
const LIMIT: usize = 65_536;

/// What is wrong with a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// Nothing: the reference.
    None,
    /// Window-mode nonces are not remembered: a replay inside the window is accepted.
    AcceptsReplays,
    /// The signature is checked before the payload (row 12 before rows 6–11).
    SignatureFirst,
    /// "Unauthorized request" without its full stop.
    WrongMessage,
    /// A window of ±50 s instead of ±5 s.
    WideWindow,
}

struct Server {
    flaw: Flaw,
    book: Mutex<NonceBook>,
    key: HmacSha512Key,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Server {
    /// Starts on a free loopback port; serves until the test process ends.
    fn start(flaw: Flaw) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Arc::new(Server {
            flaw,
            book: Mutex::new(NonceBook::new()),
            key: HmacSha512Key::new(SECRET.as_bytes()),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        addr
    }

    fn serve(&self, stream: TcpStream) {
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        loop {
            let mut raw = Vec::new();
            if reader.read_until(b'\n', &mut raw).is_err() || raw == b"\r\n" || raw.is_empty() {
                break;
            }
            let text = String::from_utf8_lossy(&raw);
            if let Some((name, value)) = text.trim_end().split_once(':') {
                headers.push((
                    name.trim().to_ascii_lowercase(),
                    value.trim().as_bytes().to_vec(),
                ));
            }
        }
        let (status, extra, body) = self.answer(&method, &target, &headers, &mut reader);
        let body = if self.flaw == Flaw::WrongMessage {
            body.replace("Unauthorized request.", "Unauthorized request")
        } else {
            body
        };
        let _ = write!(
            writer,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            body.len()
        );
    }

    fn answer(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, Vec<u8>)],
        reader: &mut BufReader<TcpStream>,
    ) -> (u16, String, String) {
        let values = |name: &'static str| header_values(headers, name);
        let refuse = |e: ApiError| (e.status(), String::new(), e.body().to_owned());
        if method == "GET" && target == "/api/v4/public/time" {
            return (
                200,
                String::new(),
                format!("{{\"time\":{}}}", now_ms() / 1000),
            );
        }
        if method != "POST" {
            return (
                405,
                "Allow: POST\r\n".into(),
                ApiError::MethodNotAllowed.body().to_owned(),
            );
        }
        let length: usize = values("content-length")
            .next()
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0);
        if length > LIMIT {
            return refuse(ApiError::PayloadTooLarge);
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return refuse(ApiError::PayloadTooLarge);
        }
        if values("content-type").any(|v| {
            let text = String::from_utf8_lossy(v);
            !text
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        }) {
            return refuse(ApiError::UnsupportedMediaType);
        }
        let parts = RequestParts {
            api_key: HeaderValue::from_values(values("x-txc-apikey")),
            payload: HeaderValue::from_values(values("x-txc-payload")),
            signature: HeaderValue::from_values(values("x-txc-signature")),
            body: &body,
            path: target,
        };
        if let (
            Flaw::SignatureFirst,
            HeaderValue::Present(payload),
            HeaderValue::Present(signature),
        ) = (self.flaw, parts.payload, parts.signature)
        {
            let expected = whitebit_auth::mac::sign_payload(SECRET.as_bytes(), payload.as_bytes());
            if !expected.eq_ignore_ascii_case(signature) {
                return refuse(ApiError::Unauthorized);
            }
        }
        let checked = match check_request(&parts, BodyMatch::Exact) {
            Ok(checked) => checked,
            Err(Rejection::Api(e)) => return refuse(e),
            Err(Rejection::MissingFields { .. }) => return refuse(ApiError::InvalidPayload),
        };
        let key = (checked.api_key() == Some(KEY))
            .then_some(&self.key as &dyn whitebit_auth::mac::PayloadMac);
        if let Err(e) = checked.verify_signature(key) {
            return refuse(e);
        }
        let now = now_ms();
        let mode = checked.nonce_mode();
        let nonce = checked.nonce();
        let mut book = self.book.lock().expect("book");
        let decided = match (self.flaw, mode) {
            (Flaw::WideWindow, NonceMode::Window) => {
                if nonce.saturating_add(50_000) < now {
                    Err(ApiError::NonceTooOld)
                } else if nonce > now.saturating_add(50_000) {
                    Err(ApiError::NonceTooNew)
                } else {
                    // Uniqueness as usual; "now" is the nonce itself, so only the ±50 s
                    // above decides the time.
                    book.consume(nonce, mode, nonce)
                }
            }
            (Flaw::AcceptsReplays, NonceMode::Window) => check_window_time(nonce, now),
            _ => book.consume(nonce, mode, now),
        };
        match decided {
            Ok(()) => (200, String::new(), "{\"ok\":true}".into()),
            Err(e) => refuse(e),
        }
    }
}

/// Every value of header `name` (lower case).
fn header_values<'a>(
    headers: &'a [(String, Vec<u8>)],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> {
    headers
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn run_against(flaw: Flaw) -> Report {
    let addr = Server::start(flaw);
    let target = Target::parse(
        &format!("http://{addr}"),
        Credentials::new(KEY, SECRET),
        false,
    )
    .expect("target");
    let options = Options {
        groups: vec![Group::Errors, Group::Interop, Group::Nonces, Group::Replay],
        max_rps: 1_000,
        storm: 8,
    };
    run(&target, &options)
}

#[test]
fn the_reference_server_passes_every_case() {
    let report = run_against(Flaw::None);
    assert_eq!(report.failed(), 0, "{}", report.text());
    assert!(report.passed() > 140, "{}", report.summary());
    // Rows 13, 404 and 14 need keys and paths this server does not have; 15 is never
    // provoked. Nothing else is skipped.
    assert_eq!(
        report.skipped_ids(),
        [
            "errors.row-13",
            "errors.row-404",
            "errors.row-14",
            "errors.row-15"
        ]
    );
}

#[test]
fn a_server_that_accepts_replays_fails_the_replay_and_uniqueness_cases() {
    let report = run_against(Flaw::AcceptsReplays);
    let failed = report.failed_ids();
    assert!(failed.contains(&"replay.window"), "{failed:?}");
    assert!(failed.contains(&"nonces.window-unique-again"), "{failed:?}");
    assert!(!failed.contains(&"replay.strict"), "{failed:?}");
    let storm = report
        .cases
        .iter()
        .find(|c| c.id == "replay.window")
        .expect("case");
    assert!(
        matches!(&storm.verdict, Verdict::Fail(why) if why.contains("accepted 8 times")),
        "{storm:?}"
    );
}

#[test]
fn a_server_that_checks_the_signature_first_fails_the_order_cases() {
    let report = run_against(Flaw::SignatureFirst);
    let failed = report.failed_ids();
    // A wrong signature with a fault of rows 6–11 must get the earlier row.
    for id in [
        "errors.pair-6-12",
        "errors.pair-7-12",
        "errors.pair-8-12",
        "errors.pair-10-12",
        "errors.pair-11-12",
    ] {
        assert!(failed.contains(&id), "{id} not failed: {failed:?}");
    }
    // Alone, each fault still gets its own answer.
    assert!(
        failed.iter().all(|id| id.starts_with("errors.pair-")),
        "{failed:?}"
    );
}

#[test]
fn a_server_with_a_wrong_message_fails_every_row_12_case_and_shows_the_difference() {
    let report = run_against(Flaw::WrongMessage);
    let failed = report.failed_ids();
    assert!(failed.contains(&"errors.row-12"), "{failed:?}");
    assert!(
        failed.contains(&"nonces.refused-consumes-nothing-1"),
        "{failed:?}"
    );
    let case = report
        .cases
        .iter()
        .find(|c| c.id == "errors.row-12")
        .expect("case");
    assert!(
        case.expected
            .ends_with(r#"{"code":10,"message":"Unauthorized request."}"#),
        "{case:?}"
    );
    assert!(
        case.got
            .ends_with(r#"{"code":10,"message":"Unauthorized request"}"#),
        "{case:?}"
    );
    let text = report.text();
    assert!(
        text.contains("FAIL  errors.row-12") && text.contains(&report.summary()),
        "{text}"
    );
    assert!(!text.contains(SECRET), "the secret in the report");
}

#[test]
fn a_server_with_a_wide_window_fails_the_window_edge_cases() {
    let report = run_against(Flaw::WideWindow);
    let failed = report.failed_ids();
    assert_eq!(
        failed,
        ["nonces.window-outside-past", "nonces.window-outside-future"],
        "{}",
        report.text()
    );
}

#[test]
fn reports_come_as_json_and_junit_with_the_same_counts() {
    let report = run_against(Flaw::WrongMessage);
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("json");
    assert_eq!(json["failed"].as_u64(), Some(report.failed() as u64));
    assert_eq!(
        json["cases"].as_array().map(Vec::len),
        Some(report.cases.len())
    );
    let junit = report.junit();
    assert!(junit.starts_with("<?xml"), "{junit}");
    assert!(
        junit.contains(&format!("failures=\"{}\"", report.failed())),
        "{junit}"
    );
    assert_eq!(junit.matches("<testcase ").count(), report.cases.len());
}
