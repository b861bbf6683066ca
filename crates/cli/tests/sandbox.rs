//! The real `wbauth sandbox` on a loopback port: every row of `docs/errors.md` that the
//! sandbox can reach, every variant of `docs/interop.md`, a rejected request changing
//! nothing, 200 concurrent copies of one request, the client end to end, graceful shutdown.

mod common;

use std::io::{Read as _, Write as _};

use common::backends::Backend;
use common::catalogue::{BALANCE, TOO_LARGE, TOO_MANY};
use common::{Sandbox, assert_answer, now_ms, post, signed};
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::sign_body;

const TRADE_BALANCE: &str =
    r#"{"BTC":{"available":"0.5","freeze":"0"},"USDT":{"available":"1000","freeze":"0"}}"#;

fn body(path: &str, nonce: u64, extra: &str) -> String {
    format!(r#"{{"request":"{path}","nonce":{nonce}{extra}}}"#)
}

/// Runs `wbauth ARGS --base-url SANDBOX` with the sandbox's key and secret.
fn wbauth(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args(args)
        .args(["--base-url", &sb.base])
        .env("WBAUTH_API_KEY", &sb.key)
        .env("WBAUTH_API_SECRET", &sb.secret)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap_or_else(|e| panic!("wbauth {args:?}: {e}"))
}

/// Sends raw bytes, returns the status code of the answer (0 if the connection closed).
fn raw(sandbox: &Sandbox, request: &[u8]) -> (u16, String) {
    let addr = sandbox.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Row 2 counts the bytes received: a chunked body (no `Content-Length`) over the limit is
/// refused too. (The other ways to reach rows 1, 2 and 415 are cases of the conformance suite.)
async fn row_2_counts_the_bytes_of_a_chunked_body(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let chunk = "a".repeat(70_000);
    let request = format!(
        "POST {BALANCE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, text) = raw(&sb, request.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(text.ends_with(TOO_LARGE), "{text}");
}

/// The whole conformance suite (`crates/conformance`): every row alone and in pairs, what real
/// clients send, the nonce rules, 200 copies of one request (window and strict), the token
/// endpoint and its JWKS. The sandbox's one key opens every path and it has no Fiat Gateway
/// routes, so rows 14 and the partner tokens are left out.
async fn the_conformance_suite_passes(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let target = wbauth_conformance::Target::parse(
        &sb.base,
        wbauth_conformance::Credentials::new(sb.key.as_str(), sb.secret.as_str()),
        false,
    )
    .expect("target");
    let options = wbauth_conformance::Options {
        max_rps: 1_000,
        storm: 200,
        ..wbauth_conformance::Options::default()
    };
    let report = tokio::task::spawn_blocking(move || wbauth_conformance::run(&target, &options))
        .await
        .expect("the suite ran");
    assert_eq!(report.failed(), 0, "{}", report.text());
    assert_eq!(
        report.skipped_ids(),
        [
            "errors.row-13",
            "errors.row-404",
            "errors.row-14",
            "errors.row-15",
            "fiat"
        ]
    );
    let storm = report
        .cases
        .iter()
        .find(|c| c.id == "replay.window")
        .expect("storm");
    assert_eq!(storm.got, "1 × 2xx, 199 × row 16b", "{storm:?}");
}

async fn small_counters_in_strict_mode(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    for n in [0u64, 1, 2, 3] {
        assert_answer(
            &signed(&sb, BALANCE, &body(BALANCE, n, "")).await,
            200,
            TRADE_BALANCE,
        );
    }
    let a = signed(&sb, BALANCE, &body(BALANCE, 2, "")).await;
    assert_answer(&a, 429, TOO_MANY);
}

async fn built_in_answers_and_echo(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let n = now_ms();
    let a = signed(
        &sb,
        "/api/v4/main-account/balance",
        &body("/api/v4/main-account/balance", n, ""),
    )
    .await;
    assert_answer(
        &a,
        200,
        r#"{"BTC":{"main_balance":"1.25"},"USDT":{"main_balance":"5000"}}"#,
    );
    let b = format!(
        r#"{{"request":"/api/v4/order/new","nonce":{},"nonceWindow":true,"market":"BTC_USDT","amount":"0.01","price":1.50,"flags":[true,null]}}"#,
        n + 1
    );
    let a = signed(&sb, "/api/v4/order/new", &b).await;
    assert_answer(
        &a,
        200,
        &format!(
            r#"{{"request":"/api/v4/order/new","params":{{"market":"BTC_USDT","amount":"0.01","price":1.50,"flags":[true,null]}},"key":"{}"}}"#,
            sb.key
        ),
    );
    let text = reqwest::get(sb.url("/api/v4/public/time"))
        .await
        .expect("time")
        .text()
        .await
        .expect("body");
    let time: serde_json::Value = serde_json::from_str(&text).expect("json");
    let secs = time["time"].as_u64().expect("seconds");
    assert!(secs.abs_diff(n / 1000) <= 60, "server time {secs}");
}

async fn the_client_library_works_end_to_end(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let client = whitebit_client::Client::builder()
        .credentials(sb.key.clone(), sb.secret.clone())
        .base_url(sb.base.as_str())
        .build()
        .expect("client");
    let balance = client.post(BALANCE, ()).await.expect("balance");
    assert_eq!(balance["USDT"]["available"], "1000");
    let echo = client
        .post("/api/v4/anything", serde_json::json!({"a": [1, 2]}))
        .await
        .expect("echo");
    assert_eq!(echo["params"]["a"], serde_json::json!([1, 2]));
    let strict = whitebit_client::Client::builder()
        .credentials(sb.key.clone(), sb.secret.clone())
        .base_url(sb.base.as_str())
        .strict_nonces()
        .build()
        .expect("client");
    strict.post(BALANCE, ()).await.expect("strict");
    let wrong = whitebit_client::Client::builder()
        .credentials(sb.key.clone(), "wrong")
        .base_url(sb.base.as_str())
        .build()
        .expect("client");
    let err = wrong.post(BALANCE, ()).await.expect_err("refused");
    assert_eq!(err.kind(), Some(whitebit_client::ErrorKind::Unauthorized));
    // The CLI against the sandbox.
    let out = wbauth(&sb, &["call", BALANCE]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), TRADE_BALANCE);
}

#[tokio::test]
async fn random_credentials_and_graceful_shutdown() {
    let sb = Sandbox::start_with(&[]);
    assert_eq!(sb.key.len(), 32);
    assert_eq!(sb.secret.len(), 64);
    assert_answer(
        &signed(&sb, BALANCE, &body(BALANCE, now_ms(), "")).await,
        200,
        TRADE_BALANCE,
    );
    let status = sb.terminate().expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// Decodes unpadded base64url.
fn b64url(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

async fn jwt_endpoint_issues_tokens_that_verify_from_the_jwks(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let b = body("/api/v4/jwt", now_ms(), r#","nonceWindow":false"#);
    let a = signed(&sb, "/api/v4/jwt", &b).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let answer: serde_json::Value = serde_json::from_str(&a.body).expect("JSON");
    let token = answer["data"]["token"].as_str().expect("token");
    let expires_at = answer["data"]["expires_at"].as_u64().expect("expires_at");
    assert!(
        expires_at.abs_diff(now_ms() / 1000 + 60) <= 5,
        "{expires_at}"
    );

    // Verify with nothing but the published JWKS document.
    let jwks: serde_json::Value = serde_json::from_str(
        &reqwest::get(sb.url("/.well-known/jwks.json"))
            .await
            .expect("jwks")
            .text()
            .await
            .expect("body"),
    )
    .expect("JWKS JSON");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value = serde_json::from_slice(&b64url(parts[0])).expect("header");
    assert_eq!(header["alg"], "RS256");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is published");
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str()),
        (Some("RSA"), Some("RS256"))
    );
    let public = aws_lc_rs::signature::RsaPublicKeyComponents {
        n: b64url(jwk["n"].as_str().expect("n")),
        e: b64url(jwk["e"].as_str().expect("e")),
    };
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    public
        .verify(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            signing_input.as_bytes(),
            &b64url(parts[2]),
        )
        .expect("the RS256 signature verifies with the JWKS key");
    let claims: serde_json::Value = serde_json::from_slice(&b64url(parts[1])).expect("claims");
    assert_eq!(claims["sub"], "demo");
    assert_eq!(claims["exp"].as_u64(), Some(expires_at));
    assert!(claims["iss"].is_string() && claims["aud"].is_string() && claims["jti"].is_string());

    // The client library and the CLI fetch tokens too.
    let client = whitebit_client::Client::builder()
        .credentials(sb.key.clone(), sb.secret.clone())
        .base_url(sb.base.as_str())
        .build()
        .expect("client");
    let issued = client.issue_jwt().await.expect("issue_jwt");
    assert!(issued.expires_at >= expires_at);
    let out = wbauth(&sb, &["jwt", "--token-only"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split('.')
            .count(),
        3
    );
}

// Once per combination of key store and nonce store.
on_every_backend!(
    row_2_counts_the_bytes_of_a_chunked_body,
    the_conformance_suite_passes,
    small_counters_in_strict_mode,
    built_in_answers_and_echo,
    the_client_library_works_end_to_end,
    jwt_endpoint_issues_tokens_that_verify_from_the_jwks,
);

/// `--extra-keys N --keys-out FILE`: more demo keys for load tests, every one usable, listed
/// (with the demo key first) in a private file.
#[tokio::test]
async fn extra_demo_keys_for_load_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("keys.csv");
    let sb = Sandbox::start_with(&[
        "--extra-keys",
        "40",
        "--keys-out",
        out.to_str().expect("utf8 path"),
    ]);
    let text = std::fs::read_to_string(&out).expect("keys file");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let pairs: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, s) = l.split_once(',').expect("key,secret");
            (k.to_owned(), s.to_owned())
        })
        .collect();
    assert_eq!(pairs.len(), 41);
    assert_eq!(pairs[0], (sb.key.clone(), sb.secret.clone()));
    for (key, secret) in &pairs {
        let body = body(BALANCE, now_ms(), r#","nonceWindow":true"#);
        let signed = sign_body(
            body.clone().into_bytes(),
            &HmacSha512Key::new(secret.as_bytes()),
        );
        let answer = post(
            &sb.url(BALANCE),
            &[
                ("content-type", b"application/json"),
                ("x-txc-apikey", key.as_bytes()),
                ("x-txc-payload", signed.payload.as_bytes()),
                ("x-txc-signature", signed.signature.as_bytes()),
            ],
            body,
        )
        .await;
        assert_answer(&answer, 200, TRADE_BALANCE);
    }
}
