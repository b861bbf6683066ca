//! `https://` upstreams: a real `wbauth serve` forwards accepted requests over TLS to an
//! HTTPS server on 127.0.0.1 whose certificate a test CA issued (the route's `ca`), by
//! HTTP/1.1 or, with `http2 = true`, HTTP/2 chosen by ALPN; with a client certificate when the
//! upstream asks for one. An upstream the gateway cannot trust (unknown issuer, wrong name,
//! no client certificate) is a 502, as any unreachable upstream, and the log says why.

#![cfg(feature = "test-clock")]

mod common;

use std::path::Path;

use common::assert_answer;
use common::catalogue::{BAD_GATEWAY, BALANCE};
use common::gateway::{Gateway, T0, TOKEN, spawn_serve, write_config_to};
use common::tls::write_pair;
use serde_json::{Value, json};
use wbauth_testkit::{TestCa, TlsEcho};

/// `wbauth serve` whose `/api/v4` route goes to `upstream` with the route settings `route`
/// (TOML lines).
async fn serve_to(dir: &Path, upstream: &str, route: &str) -> Gateway {
    let config = write_config_to(dir, upstream, route);
    let env = [("WBAUTH_ADMIN_TOKEN", TOKEN), ("WBAUTH_LOG", "debug")];
    let gw = spawn_serve(dir, &config, &env, "stderr.log")
        .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    gw.clock(json!({"set_ms": T0})).await;
    gw
}

/// An HTTPS echo with a certificate for `localhost` from a new CA, and the route line trusting
/// that CA (its file written in `dir`).
async fn echo_and_ca(dir: &Path) -> (TlsEcho, TestCa, String) {
    let ca = TestCa::new("upstream CA").expect("CA");
    let echo = TlsEcho::start(&ca.server_cert(&["localhost"]).expect("cert"))
        .await
        .expect("echo");
    let ca_file = dir.join("upstream-ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("written");
    let ca_line = format!("ca = \"{}\"", ca_file.display());
    (echo, ca, ca_line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_requests_reach_an_https_upstream_by_http1_or_http2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (echo, _ca, ca_line) = echo_and_ca(dir.path()).await;

    for (http2, version) in [(false, "HTTP/1.1"), (true, "HTTP/2.0")] {
        let sub = dir.path().join(format!("h2-{http2}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let route = format!("{ca_line}\nhttp2 = {http2}");
        let gw = serve_to(&sub, &echo.url("localhost"), &route).await;
        let (key, secret) = gw.provision_key("alice", "trade", &[]).await;
        for _ in 0..3 {
            let answer = gw.signed(&key, &secret, BALANCE).await;
            assert_eq!(answer.status, 200, "{answer:?}");
            let seen: Value = serde_json::from_str(&answer.body).expect("the echo's JSON");
            assert_eq!(seen["version"], version, "{seen}");
            assert_eq!(seen["path"], BALANCE);
            // The credentials stay at the gateway.
            assert_eq!(seen["api_key"], "");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_the_gateway_cannot_trust_is_a_502_saying_why_in_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (echo, ca, ca_line) = echo_and_ca(dir.path()).await;
    let client_ca = TestCa::new("client CA").expect("CA");
    let strict = TlsEcho::start_with_client_ca(
        &ca.server_cert(&["localhost"]).expect("cert"),
        Some(&client_ca),
    )
    .await
    .expect("echo");
    let (client_cert, client_key) = write_pair(
        dir.path(),
        "client",
        &client_ca.client_cert().expect("cert"),
    );
    let with_client = format!(
        "{ca_line}\nclient_cert = \"{}\"\nclient_key = \"{}\"",
        client_cert.display(),
        client_key.display()
    );

    for (name, upstream, route, said) in [
        // The system's roots do not include the test CA.
        (
            "no ca",
            echo.url("localhost"),
            String::new(),
            "UnknownIssuer",
        ),
        (
            "wrong name",
            echo.url("127.0.0.1"),
            ca_line.clone(),
            "certificate not valid for name",
        ),
        (
            "no client certificate",
            strict.url("localhost"),
            ca_line.clone(),
            "received fatal alert: CertificateRequired",
        ),
        (
            "client certificate",
            strict.url("localhost"),
            with_client.clone(),
            "",
        ),
    ] {
        let sub = dir.path().join(name.replace(' ', "-"));
        std::fs::create_dir_all(&sub).expect("dir");
        let gw = serve_to(&sub, &upstream, &route).await;
        let (key, secret) = gw.provision_key("alice", "trade", &[]).await;
        let answer = gw.signed(&key, &secret, BALANCE).await;
        if said.is_empty() {
            assert_eq!(answer.status, 200, "{name}: {answer:?}");
            continue;
        }
        assert_answer(&answer, 502, BAD_GATEWAY);
        let log = gw.stderr_text();
        let failed: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("upstream failed"))
            .collect();
        assert!(
            failed.len() == 1 && failed[0].contains(said),
            "{name}: {failed:?}"
        );
    }
}

#[test]
fn route_tls_settings_are_checked_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    for (upstream, route, said) in [
        (
            "http://127.0.0.1:1",
            "http2 = true".to_owned(),
            "route[0].http2: only for an https:// upstream",
        ),
        (
            "https://127.0.0.1:1",
            "client_cert = \"c.pem\"".to_owned(),
            "route[0].client_key: missing",
        ),
        (
            "https://localhost:1",
            format!("ca = \"{}\"", missing.display()),
            "route[0].ca: cannot read",
        ),
    ] {
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\ndata_dir = \"{}\"\n[[route]]\nprefix = \"/api/v4\"\nupstream = \"{upstream}\"\n{route}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("written");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wbauth"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("WBAUTH_ADMIN_TOKEN", TOKEN)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
    }
}
