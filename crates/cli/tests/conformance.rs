//! `wbauth conformance` against this project's own servers: the sandbox and `wbauth serve` on
//! every combination of key store and nonce store must pass every case. (The suite failing
//! servers with one flaw each is tested in `crates/conformance/tests/broken_servers.rs`.)

mod common;

use std::process::Command;

use common::backends::Backend;
use common::fiat::{DEPOSIT, create_partner, fiat_route, new_signing_key, token_keys};
use common::gateway::{TOKEN, Upstream, spawn_serve, write_config};
use common::{Sandbox, now_ms};
use serde_json::{Value, json};

/// Runs the suite with a JSON report; (exit code, report).
fn conformance(base: &str, key: &str, secret: &str, more: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args([
            "conformance",
            "--target",
            base,
            "--key",
            key,
            "--secret",
            secret,
        ])
        .args(["--report", "json", "--max-rps", "1000"])
        .args(more)
        .env_remove("WBAUTH_API_KEY")
        .env_remove("WBAUTH_API_SECRET")
        .output()
        .expect("wbauth conformance runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The ids of the cases with `verdict`.
fn ids(report: &Value, verdict: &str) -> Vec<String> {
    report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["verdict"] == verdict)
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every group ran.
fn assert_every_group(report: &Value) {
    let groups: std::collections::BTreeSet<&str> = report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["group"].as_str())
        .collect();
    assert_eq!(
        groups.into_iter().collect::<Vec<_>>(),
        ["errors", "fiat", "interop", "jwt", "nonces", "replay"]
    );
}

#[test]
fn the_sandbox_passes_every_case_it_can_run() {
    let sb = Sandbox::start();
    let (code, report) = conformance(&sb.base, &sb.key, &sb.secret, &[]);
    assert_eq!(ids(&report, "fail"), Vec::<String>::new(), "{report:#}");
    assert_eq!(code, 0);
    // The sandbox's one key opens every path (row 14 needs a second key), and it has no Fiat
    // Gateway routes.
    assert_eq!(
        ids(&report, "skip"),
        [
            "errors.row-13",
            "errors.row-404",
            "errors.row-14",
            "errors.row-15",
            "fiat"
        ]
    );
    assert!(
        report["passed"].as_u64().expect("passed") > 140,
        "{}",
        report["passed"]
    );
    assert_every_group(&report);
    let note = report["notes"][0].as_str().expect("note");
    assert!(note.contains("server's clock was read"), "{note}");

    // The text report ends with the count, and a second run right after passes too (the
    // suite's nonces stay above what the first run left).
    let out = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args([
            "conformance",
            "--target",
            &sb.base,
            "--only",
            "nonces,replay",
        ])
        .env("WBAUTH_API_KEY", &sb.key)
        .env("WBAUTH_API_SECRET", &sb.secret)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.trim_end().ends_with(" passed, 0 failed, 0 skipped"),
        "{text}"
    );
    assert!(!text.contains(&sb.secret), "the secret in the report");
}

#[test]
fn a_wrong_secret_fails_cases_and_exits_1_and_bad_options_exit_2() {
    let sb = Sandbox::start();
    let (code, report) = conformance(&sb.base, &sb.key, "not-the-secret", &["--only", "interop"]);
    assert_eq!(code, 1);
    assert!(
        ids(&report, "fail").contains(&"interop.string-nonce".to_owned()),
        "{report:#}"
    );
    for (args, message) in [
        (vec!["--target", "http://192.0.2.1:80"], "--allow-remote"),
        (
            vec!["--target", "https://127.0.0.1:1"],
            "https is not supported",
        ),
        (
            vec!["--target", &sb.base, "--only", "errors,typo"],
            "unknown group \"typo\"",
        ),
        (vec!["--target", &sb.base, "--storm", "1"], "--storm"),
        (
            vec!["--target", &sb.base, "--path", "api"],
            "a path starts with /",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wbauth"))
            .arg("conformance")
            .args(&args)
            .args(["--key", "k", "--secret", "s"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing is run");
    }
}

/// `wbauth serve` on `backend`: a key that may call the path and the token endpoint, a
/// second that may not, a disabled one, a path no route serves, token keys published as a
/// JWKS, a Fiat Gateway route and a partner; every case passes, only row 15 is skipped.
async fn serve_passes_every_case(backend: Backend) {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = dir.path().join("signing.pem");
    new_signing_key(&pem);
    let extra = format!(
        "[[kind]]\nname = \"conformance\"\npaths = [\"/api/v4/trade-account/*\", \"/api/v4/jwt\"]\n\n{}\n{}",
        token_keys(&pem),
        fiat_route(&upstream)
    );
    let config = write_config(dir.path(), upstream.addr, &extra);
    let mut env: Vec<(String, String)> = backend.stores().env();
    env.push(("WBAUTH_ADMIN_TOKEN".into(), TOKEN.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gw = spawn_serve(dir.path(), &config, &env, "stderr.log")
        .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    // Provisioning moves the test clock (TOTP steps): frozen meanwhile, then released to
    // the real time, which the suite reads.
    gw.clock(json!({"set_ms": now_ms()})).await;
    let (key, secret) = gw.provision_key("alice", "conformance", &[]).await;
    let (other, other_secret) = gw.provision_key("bob", "main", &[]).await;
    let (disabled, disabled_secret) = gw.provision_key("carol", "conformance", &[]).await;
    gw.ok(&["keys", "disable", &disabled]);
    gw.clock(json!({"release": true})).await;
    let (auth_key, enc_key) = create_partner(&gw, "conformance-partner");

    let (code, report) = conformance(
        &gw.base,
        &key,
        &secret,
        &[
            "--key2",
            &other,
            "--secret2",
            &other_secret,
            "--disabled-key",
            &disabled,
            "--disabled-secret",
            &disabled_secret,
            "--unrouted-path",
            "/api/v5/conformance",
            "--fiat-auth-key",
            &auth_key,
            "--fiat-enc-key",
            &enc_key,
            "--fiat-path",
            DEPOSIT,
        ],
    );
    assert_eq!(ids(&report, "fail"), Vec::<String>::new(), "{report:#}");
    // Only the rate limit is never provoked.
    assert_eq!(ids(&report, "skip"), ["errors.row-15"], "{report:#}");
    assert_eq!(code, 0);
    assert_every_group(&report);
    // serve has no public time route: the suite said it used this machine's clock.
    let note = report["notes"][0].as_str().expect("note");
    assert!(note.contains("this machine's clock"), "{note}");
    drop(gw);
}

on_every_backend!(serve_passes_every_case);
