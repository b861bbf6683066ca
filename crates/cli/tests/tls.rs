//! The CLI over HTTPS: `wbauth call --cacert FILE` (or `WBAUTH_CACERT`) reaches a server whose
//! certificate a private CA issued, over HTTP/2 when offered; without the CA it fails with the
//! reason, exit code 1, nothing on stdout.

use std::process::{Command, Output};

use wbauth_testkit::{TestCa, TlsEcho};

fn call(base: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wbauth"));
    command
        .args([
            "call",
            "/api/v4/trade-account/balance",
            "ticker=BTC",
            "--base-url",
            base,
        ])
        .args(extra)
        .env("WBAUTH_API_KEY", "tls-cli-key")
        .env("WBAUTH_API_SECRET", "tls-cli-secret")
        .env_remove("WBAUTH_CACERT")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("wbauth runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_trusts_a_private_ca_given_with_cacert() {
    let ca = TestCa::new("wbauth test CA").expect("CA");
    let server = TlsEcho::start(&ca.server_cert(&["localhost"]).expect("cert"))
        .await
        .expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("ca written");
    let ca_path = ca_file.display().to_string();
    let base = server.url("localhost");

    let with_flag = tokio::task::block_in_place(|| call(&base, &["--cacert", &ca_path], &[]));
    let with_env = tokio::task::block_in_place(|| call(&base, &[], &[("WBAUTH_CACERT", &ca_path)]));
    for out in [with_flag, with_env] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        let seen: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
        assert_eq!(seen["version"], "HTTP/2.0", "{stdout}");
        assert_eq!(seen["api_key"], "tls-cli-key", "{stdout}");
    }

    let without = tokio::task::block_in_place(|| call(&base, &[], &[]));
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert_eq!(without.status.code(), Some(1), "{without:?}");
    assert!(without.stdout.is_empty());
    assert!(
        stderr.starts_with("error: transport error: ")
            && stderr.contains("invalid peer certificate: UnknownIssuer"),
        "{stderr}"
    );

    let missing =
        tokio::task::block_in_place(|| call(&base, &["--cacert", "/nonexistent/ca.pem"], &[]));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
}
