//! The gateway's listeners over TLS: a real `wbauth serve` with `[listen] tls` (certificates
//! from a CA made at test time) answers the whole check table over HTTPS with HTTP/1.1 and
//! with HTTP/2 (ALPN) byte for byte as `docs/errors.md` says (as over plain HTTP); bad TLS input
//! (plain HTTP to the TLS port, TLS to a plain port, an expired certificate, a wrong host
//! name) is a clear error and the listener keeps serving.

#![cfg(feature = "test-clock")]

mod common;

use common::catalogue::*;
use common::gateway::{Gateway, TOKEN, UPSTREAM_ANSWER, Upstream, write_config};
use common::tls::{client, localhost_gateway, serve_tls, write_pair};
use reqwest::Version;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wbauth_testkit::TestCa;
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::sign_body;

/// One request of the table.
struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    expected: (u16, &'static str),
}

/// The check table's rows, each as a request that fails exactly there, and an accepted
/// request last. Fresh nonces on every call (strict mode, one key).
fn table(key: &str, secret: &str) -> Vec<Case> {
    let signed = |body: String, api_key: &str, secret: &str| {
        let s = sign_body(
            body.clone().into_bytes(),
            &HmacSha512Key::new(secret.as_bytes()),
        );
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            ("x-txc-apikey", api_key.to_owned()),
            ("x-txc-payload", s.payload),
            ("x-txc-signature", s.signature),
        ];
        (headers, body)
    };
    let nonce = Gateway::nonce;
    let good = |path: &str| {
        format!(
            r#"{{"request":"{path}","nonce":{},"ticker":"BTC"}}"#,
            nonce()
        )
    };
    let case = |name, path, body: String, signer: (&str, &str), expected| {
        let (headers, body) = signed(body, signer.0, signer.1);
        Case {
            name,
            method: reqwest::Method::POST,
            path,
            headers,
            body: body.into_bytes(),
            expected,
        }
    };
    let without = |mut c: Case, header: &str| {
        c.headers.retain(|(h, _)| *h != header);
        c
    };
    let replace = |mut c: Case, header: &'static str, value: &str| {
        c.headers.retain(|(h, _)| *h != header);
        c.headers.push((header, value.to_owned()));
        c
    };
    let mine = (key, secret);
    let mut big = case("too large", BALANCE, String::new(), mine, (413, TOO_LARGE));
    big.body = format!(
        r#"{{"request":"{BALANCE}","pad":"{}"}}"#,
        "x".repeat(70_000)
    )
    .into_bytes();
    vec![
        Case {
            method: reqwest::Method::GET,
            ..case("method", BALANCE, good(BALANCE), mine, (405, METHOD))
        },
        big,
        replace(
            case("media type", BALANCE, good(BALANCE), mine, (415, MEDIA)),
            "content-type",
            "text/plain",
        ),
        without(
            case("no key", BALANCE, good(BALANCE), mine, (401, KEY_MISSING)),
            "x-txc-apikey",
        ),
        without(
            case(
                "no payload",
                BALANCE,
                good(BALANCE),
                mine,
                (401, PAYLOAD_MISSING),
            ),
            "x-txc-payload",
        ),
        without(
            case(
                "no signature",
                BALANCE,
                good(BALANCE),
                mine,
                (401, SIGNATURE_MISSING),
            ),
            "x-txc-signature",
        ),
        replace(
            case(
                "bad payload",
                BALANCE,
                good(BALANCE),
                mine,
                (400, BAD_PAYLOAD),
            ),
            "x-txc-payload",
            "not base64!",
        ),
        case(
            "no request",
            BALANCE,
            format!(r#"{{"nonce":{}}}"#, nonce()),
            mine,
            (400, REQUEST_MISSING),
        ),
        case(
            "path mismatch",
            BALANCE,
            good(ORDER),
            mine,
            (400, PATH_MISMATCH),
        ),
        case(
            "no nonce",
            BALANCE,
            format!(r#"{{"request":"{BALANCE}"}}"#),
            mine,
            (400, NONCE_MISSING),
        ),
        case(
            "bad nonce",
            BALANCE,
            format!(r#"{{"request":"{BALANCE}","nonce":"1e3"}}"#),
            mine,
            (400, BAD_NONCE),
        ),
        case(
            "bad window",
            BALANCE,
            format!(
                r#"{{"request":"{BALANCE}","nonce":{},"nonceWindow":"yes"}}"#,
                nonce()
            ),
            mine,
            (400, BAD_WINDOW),
        ),
        case(
            "unknown key",
            BALANCE,
            good(BALANCE),
            ("no-such-key", secret),
            (401, UNAUTHORIZED),
        ),
        case(
            "wrong secret",
            BALANCE,
            good(BALANCE),
            (key, "wrong"),
            (401, UNAUTHORIZED),
        ),
        case(
            "no route",
            "/other/path",
            good("/other/path"),
            mine,
            (404, NOT_FOUND),
        ),
        case(
            "forbidden",
            MAIN_BALANCE,
            good(MAIN_BALANCE),
            mine,
            (403, FORBIDDEN),
        ),
        case(
            "replayed nonce",
            BALANCE,
            format!(r#"{{"request":"{BALANCE}","nonce":1}}"#),
            mine,
            (429, TOO_MANY),
        ),
        case(
            "accepted",
            BALANCE,
            good(BALANCE),
            mine,
            (200, UPSTREAM_ANSWER),
        ),
    ]
}

/// Sends `case` to `base`; the protocol version, status and body.
async fn send(client: &reqwest::Client, base: &str, case: &Case) -> (Version, u16, String) {
    let mut request = client
        .request(case.method.clone(), format!("{base}{}", case.path))
        .body(case.body.clone());
    for (name, value) in &case.headers {
        request = request.header(*name, value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
    let version = response.version();
    let status = response.status().as_u16();
    (version, status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_table_answers_the_same_over_http2_and_http1_over_tls() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (gw, ca, base) = localhost_gateway(&upstream, dir.path()).await;
    assert!(gw.base.starts_with("https://127.0.0.1:"), "{}", gw.base);
    let (api_key, secret) = gw.provision_key("alice", "trade", &[]).await;
    // Pass the accepted nonce 1 so that "replayed nonce" is one.
    let first = table(&api_key, &secret).pop().expect("accepted case");
    let mut once = first;
    once.body = format!(r#"{{"request":"{BALANCE}","nonce":1}}"#).into_bytes();
    let s = sign_body(once.body.clone(), &HmacSha512Key::new(secret.as_bytes()));
    once.headers = vec![
        ("content-type", "application/json".to_owned()),
        ("x-txc-apikey", api_key.clone()),
        ("x-txc-payload", s.payload),
        ("x-txc-signature", s.signature),
    ];
    let (_, status, _) = send(&client(&ca, true), &base, &once).await;
    assert_eq!(status, 200);

    for (http1_only, version) in [(true, Version::HTTP_11), (false, Version::HTTP_2)] {
        let client = client(&ca, http1_only);
        let before = upstream.count();
        let mut accepted = Vec::new();
        for case in table(&api_key, &secret) {
            let (seen_version, status, body) = send(&client, &base, &case).await;
            assert_eq!(seen_version, version, "{}", case.name);
            assert_eq!(
                (status, body.as_str()),
                case.expected,
                "{} over {version:?}",
                case.name
            );
            if status == 200 {
                accepted.clone_from(&case.body);
            }
        }
        // Only the accepted request reached the upstream, as exactly the signed bytes.
        assert_eq!(upstream.count(), before + 1, "{version:?}");
        assert_eq!(upstream.last().body, accepted, "{version:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_input_is_a_clear_error_and_the_listener_keeps_serving() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (gw, ca, good) = localhost_gateway(&upstream, dir.path()).await;
    let port = good.rsplit(':').next().expect("port").to_owned();
    let serves = || async {
        let answer = client(&ca, false)
            .get(format!("{good}{BALANCE}"))
            .send()
            .await
            .expect("the listener still serves");
        assert_eq!(answer.status().as_u16(), 405);
    };

    // Plain HTTP to the TLS port: answered in plain HTTP, saying what to do.
    let mut plain = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .expect("connect");
    plain
        .write_all(b"POST /api/v4/trade-account/balance HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        .await
        .expect("write");
    let mut answer = String::new();
    plain.read_to_string(&mut answer).await.expect("read");
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("use an https:// address here.\n"),
        "{answer}"
    );
    serves().await;

    // A host name the certificate does not name.
    let wrong_name = client(&ca, false)
        .get(format!("{}/healthz-not-here", gw.base))
        .send()
        .await;
    let error =
        whitebit_client::causes(&wrong_name.expect_err("127.0.0.1 is not in the certificate"));
    assert!(
        error.contains("certificate not valid for name \"127.0.0.1\""),
        "{error}"
    );
    // A client that does not trust the issuer.
    let stranger = TestCa::new("another CA").expect("CA");
    let untrusted = client(&stranger, false)
        .get(format!("{good}/healthz-not-here"))
        .send()
        .await;
    let error = whitebit_client::causes(&untrusted.expect_err("unknown issuer"));
    assert!(error.contains("UnknownIssuer"), "{error}");
    // TLS to the plain admin port.
    let admin_port = gw.admin.rsplit(':').next().expect("port");
    let to_plain = client(&ca, false)
        .get(format!("https://localhost:{admin_port}/healthz"))
        .send()
        .await;
    assert!(to_plain.is_err(), "{to_plain:?}");
    let healthz = reqwest::get(format!("{}/healthz", gw.admin))
        .await
        .expect("admin serves");
    assert_eq!(healthz.status().as_u16(), 200);
    serves().await;
    assert_eq!(upstream.count(), 0, "nothing was forwarded");

    // An expired certificate: the gateway serves it (it is the operator's), clients refuse it.
    let (old_cert, old_key) = write_pair(
        dir.path(),
        "expired",
        &ca.expired_server_cert(&["localhost"]).expect("cert"),
    );
    let expired = serve_tls(&upstream, &old_cert, &old_key, &[]).await;
    let refused = client(&ca, false)
        .get(format!(
            "{}/healthz-not-here",
            expired.base.replace("127.0.0.1", "localhost")
        ))
        .send()
        .await;
    let error = whitebit_client::causes(&refused.expect_err("expired"));
    assert!(error.contains("certificate expired"), "{error}");
}

#[test]
fn unusable_certificate_files_stop_the_start_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("wbauth https test CA").expect("CA");
    let (cert, key) = write_pair(
        dir.path(),
        "server",
        &ca.server_cert(&["localhost"]).expect("cert"),
    );
    let (_, other_key) = write_pair(
        dir.path(),
        "other",
        &ca.server_cert(&["localhost"]).expect("cert"),
    );
    let missing = dir.path().join("missing.pem");
    let config = write_config(dir.path(), "127.0.0.1:9".parse().expect("addr"), "");
    for (cert, key, said) in [
        (&missing, &key, "cannot read the certificate file"),
        (&key, &key, "holds no certificate"),
        (&cert, &cert, "holds no usable private key"),
        (&cert, &other_key, "does not go with the certificate"),
    ] {
        for check in [true, false] {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wbauth"));
            command.args(["serve", "--config"]).arg(&config);
            if check {
                command.arg("--check");
            }
            let out = command
                .env("WBAUTH_ADMIN_TOKEN", TOKEN)
                .env("WBAUTH_GATEWAY__LISTEN__TLS__CERT", cert)
                .env("WBAUTH_GATEWAY__LISTEN__TLS__KEY", key)
                .output()
                .expect("runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{stderr}");
            assert!(
                out.stdout.is_empty(),
                "nothing bound: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(
                stderr.contains("TLS of the public listener") && stderr.contains(said),
                "{stderr}"
            );
        }
    }
}
