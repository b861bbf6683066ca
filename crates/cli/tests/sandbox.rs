//! The real `wbauth sandbox` on a loopback port: every row of `docs/errors.md` that the
//! sandbox can reach, every variant of `docs/interop.md`, a rejected request changing
//! nothing, 200 concurrent copies of one request, the client end to end, graceful shutdown.

mod common;

use std::io::{Read as _, Write as _};

use common::backends::Backend;
use common::catalogue::{
    BAD_NONCE, BAD_PAYLOAD, BAD_WINDOW, BALANCE, KEY_MISSING, MAIN_BALANCE, MEDIA, METHOD,
    NONCE_MISSING, PATH_MISMATCH, PAYLOAD_MISSING, REQUEST_MISSING, SIGNATURE_MISSING, TOO_LARGE,
    TOO_MANY, TOO_NEW, TOO_OLD, UNAUTHORIZED,
};
use common::{Sandbox, assert_answer, now_ms, post, signed, signed_headers};
use whitebit_auth::encoding::base64_encode;
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

async fn rows_1_2_and_415(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let client = reqwest::Client::new();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = client
            .request(method.clone(), sb.url(BALANCE))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status().as_u16(), 405, "{method}");
        assert_eq!(
            r.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("POST")
        );
        assert_eq!(r.text().await.expect("body"), METHOD);
    }
    let big = format!(
        r#"{{"request":"{BALANCE}","nonce":1,"x":"{}"}}"#,
        "a".repeat(70_000)
    );
    let a = post(
        &sb.url(BALANCE),
        &[("content-type", b"application/json")],
        big.clone(),
    )
    .await;
    assert_answer(&a, 413, TOO_LARGE);
    // Chunked, no Content-Length: the limit applies to the bytes received.
    let chunk = "a".repeat(70_000);
    let request = format!(
        "POST {BALANCE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, text) = raw(&sb, request.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(text.ends_with(TOO_LARGE), "{text}");

    let b = body(BALANCE, now_ms(), "");
    let s = sb.sign(&b);
    let headers: [(&str, &[u8]); 4] = [
        ("content-type", b"text/plain"),
        ("x-txc-apikey", sb.key.as_bytes()),
        ("x-txc-payload", s.payload.as_bytes()),
        ("x-txc-signature", s.signature.as_bytes()),
    ];
    let a = post(&sb.url(BALANCE), &headers, b.clone()).await;
    assert_answer(&a, 415, MEDIA);
    // The refused request consumed nothing: the same nonce is then accepted.
    let a = signed(&sb, BALANCE, &b).await;
    assert_answer(&a, 200, TRADE_BALANCE);
}

async fn rows_3_to_12_in_order_and_nothing_changes(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let nonce = now_ms();
    let good = body(BALANCE, nonce, "");
    let s = sb.sign(&good);

    // The signed request's headers, one of them missing or sent twice.
    let all = signed_headers(&sb.key, &s.payload, &s.signature);
    let without = |name: &str| -> Vec<_> { all.iter().copied().filter(|h| h.0 != name).collect() };
    let twice = |name: &str| -> Vec<_> {
        all.iter()
            .flat_map(|h| if h.0 == name { vec![*h, *h] } else { vec![*h] })
            .collect()
    };
    let (key, p, sig) = (sb.key.as_str(), s.payload.as_str(), s.signature.as_str());
    type Case<'a> = (Vec<(&'a str, &'a [u8])>, String, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (without("x-txc-apikey"), good.clone(), 401, KEY_MISSING),
        (
            signed_headers("", p, sig).to_vec(),
            good.clone(),
            401,
            KEY_MISSING,
        ),
        (without("x-txc-payload"), good.clone(), 401, PAYLOAD_MISSING),
        (
            without("x-txc-signature"),
            good.clone(),
            401,
            SIGNATURE_MISSING,
        ),
        (
            signed_headers(key, "not base64!", sig).to_vec(),
            good.clone(),
            400,
            BAD_PAYLOAD,
        ),
        (twice("x-txc-payload"), good.clone(), 400, BAD_PAYLOAD),
        (all.to_vec(), format!("{good} "), 400, BAD_PAYLOAD),
        (
            signed_headers("nobody", p, sig).to_vec(),
            good.clone(),
            401,
            UNAUTHORIZED,
        ),
        (twice("x-txc-apikey"), good.clone(), 401, UNAUTHORIZED),
        (
            signed_headers(key, p, &sig[..64]).to_vec(),
            good.clone(),
            401,
            UNAUTHORIZED,
        ),
        (
            signed_headers(key, p, "é").to_vec(),
            good.clone(),
            401,
            UNAUTHORIZED,
        ),
    ];
    for (headers, b, status, expected) in &cases {
        let a = post(&sb.url(BALANCE), headers, b.clone()).await;
        assert_answer(&a, *status, expected);
    }
    // Signed with another secret.
    let other = whitebit_auth::sign::sign_body(
        good.clone().into_bytes(),
        &whitebit_auth::HmacSha512Key::new(b"other"),
    );
    let a = post(
        &sb.url(BALANCE),
        &signed_headers(key, &other.payload, &other.signature),
        good.clone(),
    )
    .await;
    assert_answer(&a, 401, UNAUTHORIZED);

    // Rows 6–11 through correctly signed bodies: each one a 400.
    let rows = [
        (format!(r#"[{nonce}]"#), BAD_PAYLOAD),
        (
            format!(r#"{{"request":"{BALANCE}","nonce":{nonce},"nonce":{nonce}}}"#),
            BAD_PAYLOAD,
        ),
        (format!(r#"{{"nonce":{nonce}}}"#), REQUEST_MISSING),
        (body(MAIN_BALANCE, nonce, ""), PATH_MISMATCH),
        (format!(r#"{{"request":"{BALANCE}"}}"#), NONCE_MISSING),
        (
            format!(r#"{{"request":"{BALANCE}","nonce":{nonce}.0}}"#),
            BAD_NONCE,
        ),
        (
            format!(r#"{{"request":"{BALANCE}","nonce":"-{nonce}"}}"#),
            BAD_NONCE,
        ),
        (body(BALANCE, nonce, r#","nonceWindow":"true""#), BAD_WINDOW),
    ];
    for (b, expected) in &rows {
        assert_answer(&signed(&sb, BALANCE, b).await, 400, expected);
    }
    // A query in the URL: the path does not match either.
    let a = signed(&sb, &format!("{BALANCE}?x=1"), &body(BALANCE, nonce, "")).await;
    assert_answer(&a, 400, PATH_MISMATCH);

    // Every refusal above carried `nonce`; none consumed it.
    let a = signed(&sb, BALANCE, &good).await;
    assert_answer(&a, 200, TRADE_BALANCE);
    let a = signed(&sb, BALANCE, &good).await;
    assert_answer(&a, 429, TOO_MANY);
}

async fn row_16_nonce_rules(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let now = now_ms();
    let w = r#","nonceWindow":true"#;
    let a = signed(&sb, BALANCE, &body(BALANCE, now - 60_000, w)).await;
    assert_answer(&a, 429, TOO_OLD);
    let a = signed(&sb, BALANCE, &body(BALANCE, now + 60_000, w)).await;
    assert_answer(&a, 429, TOO_NEW);
    // Window mode: any order, each once.
    for n in [now + 3, now + 1, now + 2] {
        assert_answer(
            &signed(&sb, BALANCE, &body(BALANCE, n, w)).await,
            200,
            TRADE_BALANCE,
        );
    }
    let a = signed(&sb, BALANCE, &body(BALANCE, now + 1, w)).await;
    assert_answer(&a, 429, TOO_MANY);
    // Strict after window: above the high-water mark (now + 3).
    let a = signed(&sb, BALANCE, &body(BALANCE, now + 3, "")).await;
    assert_answer(&a, 429, TOO_MANY);
    assert_answer(
        &signed(
            &sb,
            BALANCE,
            &body(BALANCE, now + 4, r#","nonceWindow":false"#),
        )
        .await,
        200,
        TRADE_BALANCE,
    );
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

async fn interop_variants_are_accepted(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let n = now_ms();
    let bodies = [
        format!(r#"{{"nonce":{n},"request":"{BALANCE}"}}"#),
        format!(r#"{{"request":"{BALANCE}","nonce":"{}"}}"#, n + 1),
        format!(
            r#"{{"ticker":"BTC","nonceWindow":true,"nonce":{},"request":"{BALANCE}"}}"#,
            n + 2
        ),
        format!(
            "{{\n  \"request\": \"{BALANCE}\",\n  \"nonce\": {},\n  \"nonceWindow\": false\n}}",
            n + 3
        ),
        format!(
            r#"{{"request": "\/api\/v4\/trade-account\/balance", "nonce": {}, "note": "\u041e"}}"#,
            n + 4
        ),
    ];
    for b in &bodies {
        assert_answer(&signed(&sb, BALANCE, b).await, 200, TRADE_BALANCE);
    }
    // Unpadded payload (signed as sent), uppercase hex, header-name case, content types.
    let b = body(BALANCE, n + 5, ",\"x\":1");
    let payload = base64_encode(b.as_bytes());
    let unpadded = payload.trim_end_matches('=');
    assert_ne!(unpadded, payload, "the case needs padding to remove");
    let sig =
        whitebit_auth::mac::sign_payload(sb.secret.as_bytes(), unpadded.as_bytes()).to_uppercase();
    let a = post(
        &sb.url(BALANCE),
        &[
            ("Content-Type", b"application/json; charset=utf-8"),
            ("X-Txc-ApiKey", sb.key.as_bytes()),
            ("x-TXC-payload", unpadded.as_bytes()),
            ("X-TXC-SIGNATURE", sig.as_bytes()),
        ],
        b,
    )
    .await;
    assert_answer(&a, 200, TRADE_BALANCE);
    // No Content-Type at all, and repeated slashes in the URL path.
    let b = body(BALANCE, n + 6, "");
    let s = sb.sign(&b);
    let a = post(
        &sb.url("//api/v4//trade-account/balance"),
        &[
            ("x-txc-apikey", sb.key.as_bytes()),
            ("x-txc-payload", s.payload.as_bytes()),
            ("x-txc-signature", s.signature.as_bytes()),
        ],
        b,
    )
    .await;
    assert_answer(&a, 200, TRADE_BALANCE);
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

async fn jwt_endpoint_keeps_its_documented_shapes(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    let a = signed(&sb, "/api/v4/jwt", "{}").await;
    assert_answer(
        &a,
        400,
        r#"{"code":0,"message":"Validation failed","errors":{"request":["The request field is required."],"nonce":["The nonce field is required."]}}"#,
    );
    let a = signed(&sb, "/api/v4/jwt", r#"{"request":"/api/v4/jwt"}"#).await;
    assert_answer(
        &a,
        400,
        r#"{"code":0,"message":"Validation failed","errors":{"nonce":["The nonce field is required."]}}"#,
    );
    let b = body("/api/v4/jwt", now_ms(), "");
    let s = sb.sign(&b);
    let a = post(
        &sb.url("/api/v4/jwt"),
        &[
            ("x-txc-apikey", b"nobody"),
            ("x-txc-payload", s.payload.as_bytes()),
            ("x-txc-signature", s.signature.as_bytes()),
        ],
        b,
    )
    .await;
    assert_answer(
        &a,
        401,
        r#"{"code":0,"message":"Invalid API key, signature, or nonce"}"#,
    );
}

async fn two_hundred_copies_one_accepted(backend: Backend) {
    let sb = Sandbox::start_on(backend);
    for extra in ["", r#","nonceWindow":true"#] {
        let b = body(BALANCE, now_ms(), extra);
        let s = sb.sign(&b);
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let request = client
                .post(sb.url(BALANCE))
                .header("content-type", "application/json")
                .header("x-txc-apikey", &sb.key)
                .header("x-txc-payload", &s.payload)
                .header("x-txc-signature", &s.signature)
                .body(b.clone());
            tasks.push(tokio::spawn(async move {
                let r = request.send().await.expect("sent");
                (r.status().as_u16(), r.text().await.expect("body"))
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let (status, text) = t.await.expect("task");
            match status {
                200 => ok += 1,
                429 => assert_eq!(text, TOO_MANY),
                other => panic!("unexpected {other}: {text}"),
            }
        }
        assert_eq!(ok, 1, "exactly one accepted ({extra:?})");
    }
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

// The error and interop suite, once per combination of key store and nonce store.
on_every_backend!(
    rows_1_2_and_415,
    rows_3_to_12_in_order_and_nothing_changes,
    row_16_nonce_rules,
    small_counters_in_strict_mode,
    interop_variants_are_accepted,
    built_in_answers_and_echo,
    jwt_endpoint_keeps_its_documented_shapes,
    two_hundred_copies_one_accepted,
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
