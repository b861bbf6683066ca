//! Faults on demand: `X-Sandbox-Fault` per request and `--faults … --seed N` at random, each
//! answered with the live service's exact body and headers and marked `injected-…`; a request
//! that met a fault recorded no nonce. The Rust client's retry policy recovers from injected
//! rate limits and nonce rejections with re-signed requests, and does not retry a
//! non-idempotent call after an injected 503. No assertion depends on timing.

use std::time::Duration;

use serde_json::Value;
use whitebit_client::{Client, ErrorKind, RetryPolicy};

use crate::common::catalogue::{BALANCE, BUSY, TOO_MANY};
use crate::common::{Answer, Sandbox, assert_answer, now_ms, signed_headers};
use crate::config::{RATE_LIMITED, TRADE_BALANCE, demo};
use crate::diagnosis::{assert_plain, codes};

/// Sends the request signed over `body`, with `X-Sandbox-Fault: fault` when given.
async fn send(
    sb: &Sandbox,
    http: &reqwest::Client,
    body: &str,
    fault: Option<&str>,
) -> reqwest::Result<Answer> {
    let s = sb.sign(body);
    let mut request = http.post(sb.url(BALANCE)).body(body.to_owned());
    for (name, value) in signed_headers(&sb.key, &s.payload, &s.signature) {
        request = request.header(name, value);
    }
    if let Some(fault) = fault {
        request = request.header("x-sandbox-fault", fault);
    }
    Ok(Answer::read(request.send().await?).await)
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers.get(name).and_then(|v| v.to_str().ok())
}

async fn request_log(sb: &Sandbox) -> Vec<Value> {
    let text = reqwest::get(sb.url("/sandbox/requests"))
        .await
        .expect("log")
        .text()
        .await
        .expect("text");
    let page: Value = serde_json::from_str(&text).expect("json");
    page["requests"].as_array().expect("array").clone()
}

#[tokio::test]
async fn each_fault_on_request_then_the_same_request_succeeds() {
    let sb = Sandbox::start();
    let http = reqwest::Client::new();
    let body = format!(r#"{{"request":"{BALANCE}","nonce":{}}}"#, now_ms());

    let a = send(&sb, &http, &body, Some("rate_limit"))
        .await
        .expect("answer");
    assert_answer(&a, 429, RATE_LIMITED);
    assert_eq!(header(&a, "retry-after"), Some("1"));
    assert_eq!(codes(&a), ["injected-rate-limit"]);

    let a = send(&sb, &http, &body, Some("nonce"))
        .await
        .expect("answer");
    assert_answer(&a, 429, TOO_MANY);
    assert_eq!(codes(&a), ["injected-nonce"]);

    let a = send(&sb, &http, &body, Some("unavailable"))
        .await
        .expect("answer");
    assert_answer(&a, 503, BUSY);
    assert_eq!(header(&a, "retry-after"), Some("1"));
    assert_eq!(codes(&a), ["injected-unavailable"]);

    // A dropped connection: no answer at all.
    let e = send(&sb, &http, &body, Some("reset"))
        .await
        .expect_err("no answer");
    assert!(!e.is_timeout() && e.status().is_none(), "{e:?}");

    // A timeout: the client's own timeout fires (the sandbox holds the request far longer).
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let e = send(&sb, &impatient, &body, Some("timeout"))
        .await
        .expect_err("times out");
    assert!(e.is_timeout(), "{e:?}");

    // None of them recorded the nonce: the very same request is accepted now, plainly.
    let a = send(&sb, &http, &body, None).await.expect("answer");
    assert_answer(&a, 200, TRADE_BALANCE);
    assert_plain(&a);

    // A slow body: processed as usual, its answer arrives whole, in pieces.
    let next = format!(r#"{{"request":"{BALANCE}","nonce":{}}}"#, now_ms() + 1);
    let a = send(&sb, &http, &next, Some("slow_body"))
        .await
        .expect("answer");
    assert_answer(&a, 200, TRADE_BALANCE);
    assert_eq!(codes(&a), ["injected-slow-body"]);
    // It was accepted: its nonce is spent.
    let a = send(&sb, &http, &next, None)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_answer(&a, 429, TOO_MANY);

    // An unknown fault is named, with the names that work.
    let a = send(&sb, &http, &body, Some("flaky"))
        .await
        .expect("answer");
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.body.contains("\\\"flaky\\\"") && a.body.contains("slow_body"),
        "{a:?}"
    );

    let log = request_log(&sb).await;
    let seen: Vec<&str> = log
        .iter()
        .map(|e| {
            e["codes"]
                .get(0)
                .and_then(Value::as_str)
                .unwrap_or("accepted")
        })
        .collect();
    assert_eq!(
        seen,
        [
            "injected-rate-limit",
            "injected-nonce",
            "injected-unavailable",
            "injected-reset",
            "injected-timeout",
            "accepted",
            "injected-slow-body",
            "nonce-not-increasing",
            "unknown-fault",
        ]
    );
    assert_eq!(log[3]["status"], Value::Null);
    // The held timeout does not keep the sandbox from shutting down cleanly.
    let status = sb.terminate().expect("exits");
    assert!(status.success(), "{status:?}");
}

fn client(sb: &Sandbox, retries: u32) -> Client {
    Client::builder()
        .credentials(sb.key.clone(), sb.secret.clone())
        .base_url(sb.base.as_str())
        .retry(
            RetryPolicy::new(retries)
                .base_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(5)),
        )
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_client_recovers_from_random_rate_limits_and_nonce_rejections() {
    let sb = Sandbox::start_with(&demo(&[
        "--faults",
        "rate_limit=0.3,nonce=0.3,latency=0ms..2ms",
        "--seed",
        "18",
    ]));
    let client = client(&sb, 30);
    for _ in 0..10 {
        let balance = client.post(BALANCE, ()).await.expect("recovered");
        assert_eq!(balance["USDT"]["available"], "1000");
    }
    let log = request_log(&sb).await;
    let count = |code: &str| {
        log.iter()
            .filter(|e| e["codes"].get(0).and_then(Value::as_str) == Some(code))
            .count()
    };
    assert_eq!(
        count("injected-rate-limit") + count("injected-nonce") + 10,
        log.len()
    );
    assert!(
        count("injected-rate-limit") > 0 && count("injected-nonce") > 0,
        "{log:?}"
    );
    // Every attempt was signed afresh: no retry was refused for its nonce or signature.
    assert!(
        log.iter().all(|e| e["status"] == 200
            || e["codes"][0]
                .as_str()
                .is_some_and(|c| c.starts_with("injected-"))),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_non_idempotent_call_is_not_retried_after_a_503() {
    let sb = Sandbox::start_with(&demo(&["--faults", "unavailable=1", "--seed", "1"]));
    let client = client(&sb, 3);
    let e = client
        .request("/api/v4/order/new")
        .params(serde_json::json!({"market": "BTC_USDT"}))
        .send()
        .await
        .expect_err("503");
    let failure = e.api().expect("an API failure");
    assert_eq!((failure.status, failure.kind), (503, ErrorKind::Server));
    assert_eq!(request_log(&sb).await.len(), 1);

    // Marked idempotent, the same call is retried (and fails again: every answer is 503).
    let e = client
        .request(BALANCE)
        .idempotent(true)
        .send()
        .await
        .expect_err("503");
    assert_eq!(e.api().map(|f| f.status), Some(503));
    assert_eq!(request_log(&sb).await.len(), 1 + 4);
}

#[test]
fn a_malformed_fault_list_is_refused_with_what_to_do() {
    for (list, needle) in [
        ("rate_limit", "no '='"),
        ("rate_limit=lots", "number from 0 to 1"),
        ("jitter=0.1", "unknown fault \"jitter\""),
        ("latency=slow", "latency=20ms..200ms"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wbauth"))
            .args(["sandbox", "--listen", "127.0.0.1:0", "--faults", list])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(needle),
            "{list}: {err}"
        );
    }
}
