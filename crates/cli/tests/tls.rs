//! The CLI over HTTPS: `wbauth call --cacert FILE` (or `WBAUTH_CACERT`) reaches a server whose
//! certificate a private CA issued, over HTTP/2 when offered; without the CA it fails with the
//! reason, exit code 1, nothing on stdout. And `wbauth serve` over TLS to its stores: a store
//! whose certificate another CA issued stops the start with the store's setting, the reason
//! and what to do, never the password (the stores working over TLS: `multi.rs`).

mod common;

use std::process::{Command, Output};

use common::backends::{Nonces, tls_servers};
use common::gateway::{Upstream, spawn_serve, write_config};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_store_whose_certificate_another_ca_issued() {
    const PASSWORD: &str = "s3cret-store-pw";
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("other-ca.pem");
    let other_ca = TestCa::new("another CA").expect("CA");
    std::fs::write(&other, other_ca.pem()).expect("CA written");
    let other = other.display().to_string();
    let right = tls_servers().stores(Nonces::Redis);
    let mut wrong_redis = right.clone();
    wrong_redis.nonces = wrong_redis
        .nonces
        .replacen("://", &format!("://:{PASSWORD}@"), 1);
    wrong_redis.redis_ca = Some(other.clone().into());
    let mut wrong_postgres = right.clone();
    let (url, _) = wrong_postgres.keys.split_once('?').expect("a query");
    let url = url.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    wrong_postgres.keys = format!("{url}?sslmode=verify-full&sslrootcert={other}");
    for (name, stores, setting) in [
        ("redis", wrong_redis, "store.nonces"),
        ("postgres", wrong_postgres, "store.keys"),
    ] {
        let instance = dir.path().join(name);
        std::fs::create_dir_all(&instance).expect("instance dir");
        let config = write_config(&instance, upstream.addr, "");
        let env = stores.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let started =
            tokio::task::block_in_place(|| spawn_serve(&instance, &config, &env, "serve.log"));
        let Err((status, stderr)) = started else {
            panic!("{name}: started with a certificate it cannot trust");
        };
        assert!(!status.success(), "{name}: {stderr}");
        for says in [
            setting,
            &format!("not signed by the CA in {other}"),
            "give the CA certificate (PEM) that issued the server's certificate",
        ] {
            assert!(stderr.contains(says), "{name}: {says:?} not in {stderr}");
        }
        assert!(!stderr.contains(PASSWORD), "{name}: {stderr}");
    }
}
