//! The real `wbauth` binary against a verifying HTTP server on 127.0.0.1.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use whitebit_auth::fiat::{EncKey, OrderFields, PartnerTokenRequest, verify_partner_token};
use whitebit_auth::mac::{HmacSha512Key, PayloadMac};
use whitebit_auth::nonce::NonceBook;
use whitebit_auth::sign::sign_body;
use whitebit_auth::verify::{BodyMatch, HeaderValue, Rejection, RequestParts, check_request};

const KEY: &str = "cli-test-key";
const SECRET: &str = "cli-test-secret";

/// Verifies like the live service; answers `{"request":…,"body":…}` on success.
async fn verify(
    State(book): State<Arc<Mutex<NonceBook>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let [api_key, payload, signature] = ["x-txc-apikey", "x-txc-payload", "x-txc-signature"]
        .map(|name| HeaderValue::from_values(headers.get_all(name).iter().map(|v| v.as_bytes())));
    let parts = RequestParts {
        api_key,
        payload,
        signature,
        body: &body,
        path: uri.path(),
    };
    let mac = HmacSha512Key::new(SECRET.as_bytes());
    let outcome = check_request(&parts, BodyMatch::Exact).map_err(|r| match r {
        Rejection::Api(e) => e,
        Rejection::MissingFields { .. } => whitebit_auth::ApiError::RequestNotProvided,
    });
    let result = outcome.and_then(|c| {
        let key = (c.api_key() == Some(KEY)).then_some(&mac as &dyn PayloadMac);
        c.verify_signature(key)?;
        book.lock().expect("lock").consume(
            c.nonce(),
            c.nonce_mode(),
            whitebit_client::unix_ms(),
        )?;
        Ok(c)
    });
    match result {
        Ok(c) => (
            StatusCode::OK,
            serde_json::json!({"request": c.path(), "body": String::from_utf8_lossy(c.decoded_payload())}).to_string(),
        ),
        Err(e) => (StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST), e.body().to_owned()),
    }
}

/// Starts the server on its own runtime thread; returns its base URL.
fn server() -> String {
    serve_on_thread(
        Router::new()
            .fallback(verify)
            .with_state(Arc::new(Mutex::new(NonceBook::new()))),
    )
}

fn wbauth() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wbauth"));
    // A clean environment: no credentials leak in from the developer's shell.
    for var in [
        "WBAUTH_API_KEY",
        "WBAUTH_API_SECRET",
        "WBAUTH_BASE_URL",
        "WBAUTH_FIAT_AUTH_KEY",
        "WBAUTH_FIAT_ENC_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", "/nonexistent-wbauth-test");
    cmd
}

fn with_credentials(secret: &str) -> Command {
    let mut cmd = wbauth();
    cmd.env("WBAUTH_API_KEY", KEY)
        .env("WBAUTH_API_SECRET", secret);
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("wbauth runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn call_signs_sends_and_prints() {
    let base = server();
    let (code, out, err) = run(with_credentials(SECRET).args([
        "call",
        "/api/v4/trade-account/balance",
        "ticker=BTC",
        "limit:=100",
        "--base-url",
        &base,
    ]));
    assert_eq!(code, 0, "stderr: {err}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON output");
    assert_eq!(answer["request"], "/api/v4/trade-account/balance");
    let body: serde_json::Value =
        serde_json::from_str(answer["body"].as_str().expect("body")).expect("JSON body");
    assert_eq!(
        (
            body["ticker"].as_str(),
            body["limit"].as_u64(),
            body["nonceWindow"].as_bool()
        ),
        (Some("BTC"), Some(100), Some(true))
    );

    let (code, out, _) = run(with_credentials(SECRET)
        .env("WBAUTH_BASE_URL", &base)
        .args(["call", "/x", "--strict"]));
    assert_eq!(code, 0);
    assert!(out.contains(r#"\"nonceWindow\":false"#), "{out}");
}

#[test]
fn call_failures_exit_non_zero_with_the_message() {
    let base = server();
    let (code, out, err) = run(with_credentials("wrong").args([
        "call",
        "/api/v4/trade-account/balance",
        "--base-url",
        &base,
    ]));
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err.trim(), "error: Unauthorized request.");

    let (code, _, err) = run(wbauth().args(["call", "/x", "--base-url", &base]));
    assert_eq!(code, 2);
    assert!(
        err.contains("WBAUTH_API_KEY") && err.contains("WBAUTH_API_SECRET"),
        "{err}"
    );

    let (code, _, err) =
        run(with_credentials(SECRET).args(["call", "/x", "bad item", "--base-url", &base]));
    assert_eq!(code, 2);
    assert!(err.contains("expected key=value"), "{err}");
}

/// Serves `app` on 127.0.0.1 from its own runtime thread (the tests calling the CLI block);
/// returns its base URL.
fn serve_on_thread(app: Router) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("address"))
}

/// A server answering every request with `307` and `Location: location`; its base URL.
fn redirecting_server(location: String) -> String {
    serve_on_thread(Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
        }
    }))
}

/// A server that answers every request `200 answer` and counts the requests it receives;
/// (base URL, count).
fn counting_server(answer: &'static str) -> (String, Arc<Mutex<usize>>) {
    let count: Arc<Mutex<usize>> = Arc::default();
    let counter = count.clone();
    let base = serve_on_thread(Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            *counter.lock().expect("lock") += 1;
            (StatusCode::OK, answer)
        }
    }));
    (base, count)
}

#[test]
fn call_does_not_follow_a_redirect() {
    let (elsewhere, received) = counting_server("{}");
    let base = redirecting_server(format!(
        "http://ops:hunter2@{}/collect?sig=abc",
        &elsewhere[7..]
    ));
    let (code, out, err) = run(with_credentials(SECRET).args([
        "call",
        "/api/v4/trade-account/balance",
        "--base-url",
        &base,
    ]));
    assert_eq!((code, out.as_str()), (1, ""), "stderr: {err}");
    assert!(
        err.starts_with("error: ")
            && err.contains("307")
            && err.contains(&format!("{elsewhere}/collect"))
            && err.contains("not followed")
            && err.contains("base URL"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2") && !err.contains("sig=abc"),
        "{err}"
    );
    assert_eq!(
        *received.lock().expect("lock"),
        0,
        "the signed request was sent on"
    );
}

#[test]
fn admin_commands_do_not_follow_a_redirect() {
    let (elsewhere, received) = counting_server("{}");
    let admin = redirecting_server(format!("{elsewhere}/admin/accounts"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args([
            "accounts",
            "create",
            "alice",
            "--password-stdin",
            "--admin-url",
            &admin,
        ])
        .env("WBAUTH_ADMIN_TOKEN", "test-admin-token-0123456789abcdef")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(b"a long console password 1\n")?;
            }
            child.wait_with_output()
        })
        .expect("wbauth runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("307") && err.contains("redirect") && err.contains("not followed"),
        "{err}"
    );
    assert_eq!(
        *received.lock().expect("lock"),
        0,
        "the admin request (and its password) was sent on"
    );
}

#[test]
fn admin_answers_that_lack_a_field_are_errors_that_name_it() {
    let admin_command = |answer: &'static str, args: &[&str]| {
        let (admin, _) = counting_server(answer);
        run(wbauth()
            .args(args)
            .args(["--admin-url", &admin])
            .env("WBAUTH_ADMIN_TOKEN", "test-admin-token-0123456789abcdef"))
    };
    let partial_key = r#"{"key":{"public_key":"k1","account":"alice"}}"#;
    let (code, out, err) = admin_command(partial_key, &["keys", "show", "k1"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert_eq!(err, "error: the admin API's answer lacks key.kind\n");
    // --json prints the answer as the gateway sent it.
    let (code, out, err) = admin_command(partial_key, &["keys", "show", "k1", "--json"]);
    assert_eq!(
        (code, out.as_str()),
        (0, format!("{partial_key}\n").as_str()),
        "{err}"
    );

    let (code, _, err) = admin_command(r#"{"accounts":[{"name":"a"}]}"#, &["accounts", "list"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "error: the admin API's answer lacks accounts[0].created_ms\n"
        )
    );
    let (code, _, err) = admin_command(r#"{"partner":null}"#, &["partners", "enable", "p1"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "error: the admin API's answer lacks partner\n")
    );
    let (code, out, err) = admin_command(
        r#"{"account":"alice","otpauth_uri":"otpauth://totp/x"}"#,
        &["accounts", "2fa", "alice", "--no-confirm"],
    );
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert_eq!(err, "error: the admin API's answer lacks secret\n");
}

#[test]
fn sign_prints_the_headers_of_the_exact_body() {
    let body = r#"{"request":"/api/v4/trade-account/balance","nonce":1594297865000}"#;
    let (code, out, err) =
        run(with_credentials("a5f3c1e9d7b2460f8e1c3a5b7d9f0e2c").args(["sign", "--body", body]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "X-TXC-APIKEY: cli-test-key\n\
         X-TXC-PAYLOAD: eyJyZXF1ZXN0IjoiL2FwaS92NC90cmFkZS1hY2NvdW50L2JhbGFuY2UiLCJub25jZSI6MTU5NDI5Nzg2NTAwMH0=\n\
         X-TXC-SIGNATURE: ac9130998711a46c369121664b2fb30a653c74721e09227fc2b4a01e9431d3262ebe382d289815f474b7eab50c9bacd1e1718068c1ee809ddd86798afd836e32\n"
    );

    let (code, out, _) = run(with_credentials(SECRET).args([
        "sign",
        "--curl",
        "--base-url",
        "http://127.0.0.1:9",
        "--body",
        body,
    ]));
    assert_eq!(code, 0);
    assert!(
        out.starts_with("curl -sS -X POST 'http://127.0.0.1:9/api/v4/trade-account/balance'"),
        "{out}"
    );
    let signed = sign_body(
        body.as_bytes().to_vec(),
        &HmacSha512Key::new(SECRET.as_bytes()),
    );
    assert!(out.contains(&format!("'X-TXC-SIGNATURE: {}'", signed.signature)));
    assert!(out.contains(&format!("--data-raw '{body}'")));
}

#[test]
fn fiat_token_verifies() {
    let (code, out, err) = run(wbauth()
        .env("WBAUTH_FIAT_AUTH_KEY", "auth-1")
        .env("WBAUTH_FIAT_ENC_KEY", "enc-secret")
        .args([
            "fiat-token",
            "--url",
            "/api/v1/fiat/deposit",
            "--currency",
            "UAH",
            "--amount",
            "1500.00",
            "--order-id",
            "o-1",
        ]));
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let authorization = lines
        .next()
        .and_then(|l| l.strip_prefix("Authorization: "))
        .expect("Authorization line");
    assert_eq!(lines.next(), Some("x-auth-key: auth-1"));
    let enc = EncKey::new(b"enc-secret");
    let auth = [authorization];
    let request = PartnerTokenRequest {
        authorization: &auth,
        x_auth_key: "auth-1",
        url: "/api/v1/fiat/deposit",
        order: Some(OrderFields {
            currency: "UAH",
            amount: "1500.00",
            order_id: "o-1",
        }),
        now_ms: whitebit_client::unix_ms(),
        iat_leeway_ms: 1_000,
    };
    verify_partner_token(&request, |_| Some(&enc)).expect("token verifies");
    assert!(!out.contains("enc-secret"));

    let (code, _, err) = run(wbauth().args([
        "fiat-token",
        "--url",
        "/a",
        "--currency",
        "c",
        "--amount",
        "1",
        "--order-id",
        "1",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("WBAUTH_FIAT_ENC_KEY"), "{err}");
}

#[test]
fn doctor_explains_problems_and_passes_good_requests() {
    let good = r#"{"request":"/api/v4/trade-account/balance","nonce":1594297865000}"#;
    let signed = sign_body(
        good.as_bytes().to_vec(),
        &HmacSha512Key::new(SECRET.as_bytes()),
    );
    let (code, out, err) = run(with_credentials(SECRET).args([
        "doctor",
        "--body",
        good,
        "--payload",
        &signed.payload,
        "--signature",
        &signed.signature,
        "--path",
        "/api/v4/trade-account/balance",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("PROBLEM"), "{out}");
    assert!(!out.contains(SECRET));

    // The body was re-serialised with spaces after signing.
    let spaced = r#"{"request": "/api/v4/trade-account/balance", "nonce": 1594297865000}"#;
    let (code, out, _) = run(with_credentials(SECRET).args([
        "doctor",
        "--body",
        spaced,
        "--payload",
        &signed.payload,
        "--signature",
        &signed.signature,
    ]));
    assert_eq!(code, 1);
    assert!(out.contains("PROBLEM"), "{out}");

    // A raw capture from standard input, nonce in seconds.
    let seconds = r#"{"request":"/api/v4/trade-account/balance","nonce":1594297865}"#;
    let s = sign_body(
        seconds.as_bytes().to_vec(),
        &HmacSha512Key::new(SECRET.as_bytes()),
    );
    let capture = format!(
        "POST /api/v4/trade-account/balance HTTP/1.1\r\nHost: x\r\nX-TXC-APIKEY: {KEY}\r\nX-TXC-PAYLOAD: {}\r\nX-TXC-SIGNATURE: {}\r\n\r\n{seconds}",
        s.payload, s.signature
    );
    let mut child = with_credentials(SECRET)
        .args(["doctor", "--request", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(capture.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.to_lowercase().contains("seconds"), "{out}");

    let (code, _, err) = run(wbauth().args(["doctor"]));
    assert_eq!(code, 2);
    assert!(err.contains("nothing to diagnose"), "{err}");
}

#[cfg(unix)]
#[test]
fn credentials_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let base = server();
    let dir = std::env::temp_dir().join(format!("wbauth-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("wbauth")).expect("mkdir");
    let file = dir.join("wbauth").join("config.toml");
    std::fs::write(
        &file,
        format!("api_key = \"{KEY}\"\napi_secret = \"{SECRET}\"\nbase_url = \"{base}\"\n"),
    )
    .expect("write");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, _, err) = run(wbauth().env("XDG_CONFIG_HOME", &dir).args(["call", "/x"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("readable by group or others") && err.contains("chmod 600"),
        "{err}"
    );

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (code, out, err) = run(wbauth().env("XDG_CONFIG_HOME", &dir).args(["call", "/x"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""request":"/x""#), "{out}");

    // The environment wins over the file.
    let (code, _, err) = run(wbauth()
        .env("XDG_CONFIG_HOME", &dir)
        .env("WBAUTH_API_SECRET", "other")
        .args(["call", "/x"]));
    assert_eq!((code, err.trim()), (1, "error: Unauthorized request."));

    // An explicit file that does not exist is an error; a malformed one names the problem.
    let (code, _, err) =
        run(wbauth().args(["--credentials", "/nonexistent/creds.toml", "call", "/x"]));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/creds.toml"), "{err}");
    std::fs::write(&file, "api_key = 5\n").expect("write");
    let (code, _, err) = run(wbauth().env("XDG_CONFIG_HOME", &dir).args(["call", "/x"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("config.toml") && err.contains("api_key"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_gateway_config_is_refused_with_file_line_and_reason() {
    let dir = std::env::temp_dir().join(format!("wbauth-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        "[listen]\naddr = \"127.0.0.1:0\"\n\n[verify]\nbody_match = \"fuzzy\"\n",
    )
    .expect("write");
    let (code, out, err) = run(wbauth().args(["serve", "--config"]).arg(&file));
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("gateway.toml") && err.contains("line 5") && err.contains("fuzzy"),
        "{err}"
    );

    std::fs::write(
        &file,
        "[[route]]\nprefix = \"/api\"\nupstream = \"ftp://x\"\n",
    )
    .expect("write");
    let (code, _, err) = run(wbauth().args(["serve", "--config"]).arg(&file));
    assert_eq!(code, 2);
    assert!(err.contains("route[0].upstream"), "{err}");

    // Environment overrides are validated the same way and named.
    std::fs::write(&file, "").expect("write");
    let (code, _, err) = run(wbauth()
        .env("WBAUTH_GATEWAY__VERIFY__MAX_BODY_BYTES", "lots")
        .args(["serve", "--config"])
        .arg(&file));
    assert_eq!(code, 2);
    assert!(
        err.contains("WBAUTH_GATEWAY__VERIFY__MAX_BODY_BYTES"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
