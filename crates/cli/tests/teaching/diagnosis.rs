//! Every refusal of the sandbox diagnosed: `X-Sandbox-Diagnosis` (the doctor's finding codes)
//! and `X-Sandbox-Hint` with the body unchanged, the doctor's report on the sandbox's terminal
//! without the secret or any signature, nothing added to accepted requests or by `wbauth
//! serve`, and the request log at `GET /sandbox/requests`.

use crate::common::catalogue::{
    BAD_PAYLOAD, BALANCE, KEY_MISSING, MAIN_BALANCE, MEDIA, PATH_MISMATCH, TOO_MANY, TOO_OLD,
    UNAUTHORIZED,
};
use crate::common::gateway::{Gateway, Upstream};
use crate::common::{Answer, DEMO_KEY, DEMO_SECRET, Sandbox, assert_answer, now_ms, post};
use crate::config::{TRADE_BALANCE, demo, legacy_sdk_request};
use whitebit_auth::encoding::base64_encode;
use whitebit_auth::mac::sign_payload;

/// The codes of `X-Sandbox-Diagnosis`.
pub(crate) fn codes(a: &Answer) -> Vec<String> {
    a.headers
        .get("x-sandbox-diagnosis")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(", ").map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Asserts the refusal `a` carries `code` and a one-line ASCII hint.
pub(crate) fn assert_diagnosed(a: &Answer, code: &str) {
    assert!(codes(a).iter().any(|c| c == code), "no {code}: {a:?}");
    let hint = a
        .headers
        .get("x-sandbox-hint")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no hint: {a:?}"));
    assert!(
        !hint.is_empty() && hint.is_ascii() && !hint.contains('\n'),
        "{hint}"
    );
}

pub(crate) fn assert_plain(a: &Answer) {
    assert!(
        !a.headers
            .keys()
            .any(|k| k.as_str().starts_with("x-sandbox")),
        "{a:?}"
    );
}

/// Headers of a request signed by the caller: content type, key, payload, signature.
fn headers<'a>(key: &'a str, payload: &'a str, signature: &'a str) -> Vec<(&'a str, &'a [u8])> {
    vec![
        ("content-type", b"application/json"),
        ("x-txc-apikey", key.as_bytes()),
        ("x-txc-payload", payload.as_bytes()),
        ("x-txc-signature", signature.as_bytes()),
    ]
}

fn body_at(path: &str, request: &str, nonce: u64, extra: &str) -> String {
    format!(r#"{{"request":"{request}","nonce":{nonce}{extra}}}"#).replace("{path}", path)
}

/// A body whose base64 has a `+` or `/` (so its URL-safe form differs).
fn body_with_plus_or_slash() -> String {
    (now_ms()..)
        .map(|n| format!(r#"{{"request":"{BALANCE}","nonce":{n},"note":"??>>"}}"#))
        .find(|b| base64_encode(b.as_bytes()).contains(['+', '/']))
        .expect("some nonce gives one")
}

#[tokio::test]
async fn every_refusal_is_explained_and_nothing_else_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let terminal = dir.path().join("sandbox.stderr");
    let sb = Sandbox::start_logged(&demo(&[]), &terminal);
    let url = sb.url(BALANCE);
    let secret = DEMO_SECRET.as_bytes();
    let signatures = std::cell::RefCell::new(Vec::new());
    let send = async |body: &str, payload: &str, signature: String, extra: &[(&str, &[u8])]| {
        let mut h = headers(DEMO_KEY, payload, &signature);
        h.extend_from_slice(extra);
        signatures.borrow_mut().push(signature.clone());
        post(&url, &h, body.to_owned()).await
    };

    // Accepted: no extra header (and the key's last nonce is now `first`).
    let first = now_ms();
    let good = body_at(BALANCE, BALANCE, first, "");
    let payload = base64_encode(good.as_bytes());
    let a = send(
        &good,
        &payload,
        sign_payload(secret, payload.as_bytes()),
        &[],
    )
    .await;
    assert_answer(&a, 200, TRADE_BALANCE);
    assert_plain(&a);

    // The signature over the body instead of the payload.
    let b = body_at(BALANCE, BALANCE, first + 1, "");
    let p = base64_encode(b.as_bytes());
    let a = send(&b, &p, sign_payload(secret, b.as_bytes()), &[]).await;
    assert_answer(&a, 401, UNAUTHORIZED);
    assert_diagnosed(&a, "signature-over-body");

    // URL-safe base64 (correctly signed over what was sent).
    let b = body_with_plus_or_slash();
    let p = base64_encode(b.as_bytes())
        .replace('+', "-")
        .replace('/', "_");
    let a = send(&b, &p, sign_payload(secret, p.as_bytes()), &[]).await;
    assert_answer(&a, 400, BAD_PAYLOAD);
    assert_diagnosed(&a, "payload-url-safe-base64");

    // `request` is another path than the URL's.
    let b = body_at(BALANCE, MAIN_BALANCE, first + 2, "");
    let p = base64_encode(b.as_bytes());
    let a = send(&b, &p, sign_payload(secret, p.as_bytes()), &[]).await;
    assert_answer(&a, 400, PATH_MISMATCH);
    assert_diagnosed(&a, "request-path-mismatch");

    // The wrong content type; a header sent twice.
    let b = body_at(BALANCE, BALANCE, first + 3, "");
    let p = base64_encode(b.as_bytes());
    let s = sign_payload(secret, p.as_bytes());
    let a = send(&b, &p, s.clone(), &[("content-type", b"text/plain")]).await;
    assert_answer(&a, 415, MEDIA);
    assert_diagnosed(&a, "content-type-not-json");
    let a = send(&b, &p, s.clone(), &[("x-txc-apikey", DEMO_KEY.as_bytes())]).await;
    assert_answer(&a, 401, UNAUTHORIZED);
    assert_diagnosed(&a, "header-repeated");

    // Upper-case hex passes; with a nonce in seconds behind the last accepted one, refused.
    let b = body_at(BALANCE, BALANCE, first / 1000, "");
    let p = base64_encode(b.as_bytes());
    let upper = sign_payload(secret, p.as_bytes()).to_ascii_uppercase();
    let a = send(&b, &p, upper, &[]).await;
    assert_answer(&a, 429, TOO_MANY);
    assert_diagnosed(&a, "nonce-not-increasing");
    assert_diagnosed(&a, "nonce-seconds");

    // A window nonce 10 s behind the sandbox's clock.
    let b = body_at(
        BALANCE,
        BALANCE,
        now_ms() - 10_000,
        r#","nonceWindow":true"#,
    );
    let p = base64_encode(b.as_bytes());
    let a = send(&b, &p, sign_payload(secret, p.as_bytes()), &[]).await;
    assert_answer(&a, 429, TOO_OLD);
    assert_diagnosed(&a, "nonce-outside-window");

    // An unknown key; no key at all.
    let b = body_at(BALANCE, BALANCE, first + 4, "");
    let p = base64_encode(b.as_bytes());
    let s = sign_payload(secret, p.as_bytes());
    signatures.borrow_mut().push(s.clone());
    let a = post(&url, &headers("typo-key", &p, &s), b.clone()).await;
    assert_answer(&a, 401, UNAUTHORIZED);
    assert_diagnosed(&a, "key-unknown");
    let a = post(&url, &[("x-txc-payload", p.as_bytes())], b.clone()).await;
    assert_answer(&a, 401, KEY_MISSING);
    assert_diagnosed(&a, "api-key-not-given");

    // The legacy SDK: a body re-serialised with spaces.
    let a = legacy_sdk_request(&sb, BALANCE).await;
    assert_answer(&a, 400, BAD_PAYLOAD);
    assert_diagnosed(&a, "payload-body-mismatch");

    // The request that was refused so often still works: nothing was recorded.
    let a = send(&b, &p, s, &[]).await;
    assert_answer(&a, 200, TRADE_BALANCE);
    assert_plain(&a);

    // A window nonce sent twice (its nonce is above every strict one so far).
    let b = body_at(BALANCE, BALANCE, now_ms(), r#","nonceWindow":true"#);
    let p = base64_encode(b.as_bytes());
    let s = sign_payload(secret, p.as_bytes());
    assert_answer(&send(&b, &p, s.clone(), &[]).await, 200, TRADE_BALANCE);
    let a = send(&b, &p, s, &[]).await;
    assert_answer(&a, 429, TOO_MANY);
    assert_diagnosed(&a, "nonce-reused");

    // The terminal has the doctor's report, never the secret nor a signature.
    let text = std::fs::read_to_string(&terminal).expect("stderr");
    for expected in [
        "sandbox: refused POST /api/v4/trade-account/balance: 401 {\"code\":10,\"message\":\"Unauthorized request.\"}",
        "signature-over-body: ",
        "first differ at byte",
        "signature-uppercase: ",
        &format!("not greater than {first}"),
        "behind the current time",
        "This server's key is `demo-public-key`",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    assert!(!text.contains(DEMO_SECRET), "{text}");
    for s in signatures.borrow().iter() {
        assert!(!text.contains(s.as_str()), "a signature in:\n{text}");
        assert!(
            !text.to_lowercase().contains(s.as_str()),
            "a signature in:\n{text}"
        );
    }

    // The request log: every request, with its codes, and no secret or signature.
    let log = reqwest::get(sb.url("/sandbox/requests"))
        .await
        .expect("log")
        .text()
        .await
        .expect("text");
    let page: serde_json::Value = serde_json::from_str(&log).expect("json");
    let requests = page["requests"].as_array().expect("array");
    assert_eq!(requests.len(), 14, "{log}");
    assert_eq!(requests[0]["status"], 200);
    assert_eq!(requests[0]["path"], BALANCE);
    assert_eq!(requests[0]["codes"], serde_json::json!([]));
    assert_eq!(requests[1]["status"], 401);
    assert!(requests[1]["time_ms"].as_u64().is_some_and(|t| t >= first));
    assert_eq!(
        requests[1]["codes"],
        serde_json::json!(["signature-over-body"])
    );
    assert!(
        !log.contains(DEMO_SECRET) && !log.contains(DEMO_KEY),
        "{log}"
    );
    for s in signatures.borrow().iter() {
        assert!(!log.to_lowercase().contains(s.as_str()), "{log}");
    }
}

#[tokio::test]
async fn serve_adds_nothing() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    let a = post(
        &format!("{}{BALANCE}", gw.base),
        &[("content-type", b"text/plain")],
        "{}",
    )
    .await;
    assert_answer(&a, 415, MEDIA);
    assert_plain(&a);
    // No request log either: a GET there is a private path like any other.
    let log = reqwest::get(format!("{}/sandbox/requests", gw.base))
        .await
        .expect("sent");
    assert_eq!(log.status().as_u16(), 405);
    assert!(
        !log.headers()
            .keys()
            .any(|k| k.as_str().starts_with("x-sandbox"))
    );
}
