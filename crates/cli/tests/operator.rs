//! What an operator hit following the README (issue 20): a refused start that left its master
//! key behind, `accounts 2fa` run from a script, options shown on commands that ignore them,
//! and the shell completions and manual pages.

#![cfg(feature = "test-clock")]

mod common;

use std::process::{Command, Stdio};

use common::backends::{MASTER_KEY, postgres, redis};
use common::gateway::{Gateway, TOKEN, Upstream, base32_decode, code, spawn_serve, write_config};
use serde_json::json;
use wbauth_testkit::RedisServer;

fn wbauth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wbauth"))
}

fn stdout_of(args: &[&str]) -> String {
    let out = wbauth()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("wbauth runs");
    assert!(out.status.success(), "wbauth {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A start refused by the nonce store (a Redis that is not durable) records nothing in the
/// PostgreSQL key store: the next start, with another master key, works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_start_leaves_nothing_behind() {
    let upstream = Upstream::start().await;
    let not_durable = RedisServer::start_with(&["--appendonly", "no"]).expect("redis starts");
    let keys = postgres().fresh_database().expect("a fresh database");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), upstream.addr, "");
    let start = |nonces: String, master: &str, log: &str| {
        let env = [
            ("WBAUTH_GATEWAY__STORE__KEYS", keys.as_str()),
            ("WBAUTH_GATEWAY__STORE__NONCES", nonces.as_str()),
            ("WBAUTH_MASTER_KEY", master),
            ("WBAUTH_ADMIN_TOKEN", TOKEN),
        ];
        spawn_serve(dir.path(), &config, &env, log)
    };
    let Err((status, stderr)) = start(not_durable.fresh_database_url(), MASTER_KEY, "first.log")
    else {
        panic!("a Redis without appendonly must be refused");
    };
    assert!(!status.success());
    assert!(stderr.contains("redis_allow_non_durable"), "{stderr}");

    let other_key = "1".repeat(64);
    let gateway = start(redis().fresh_database_url(), &other_key, "second.log")
        .unwrap_or_else(|(status, err)| panic!("the second start failed ({status}): {err}"));
    assert_eq!(
        gateway.ok_json(&["accounts", "list"])["accounts"],
        json!([]),
        "the key store is usable"
    );
}

/// `wbauth accounts 2fa NAME` from a script (standard input not a terminal, nothing on it)
/// enrols, prints, and stops as `--no-confirm` would: exit 0, the way to confirm on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_from_a_script_enrols_and_says_how_to_confirm() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&upstream).await;
    gateway.ok(&["accounts", "create", "scripted"]);
    let out = gateway.cli(&["accounts", "2fa", "scripted"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("otpauth://totp/"), "{stdout}");
    assert!(
        stderr.contains("wbauth accounts 2fa scripted --code CODE"),
        "{stderr}"
    );
    let shown = gateway.ok_json(&["accounts", "show", "scripted"]);
    assert_eq!(shown["account"]["two_factor"], "pending", "{shown}");

    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .expect("the secret is printed");
    let now = gateway.advance(30_000).await;
    let code = code(&base32_decode(secret), now);
    let confirmed = gateway.ok(&["accounts", "2fa", "scripted", "--code", &code]);
    assert!(confirmed.contains("is on"), "{confirmed}");
}

/// `--base-url` and `--credentials` appear in the help of the commands that use them only;
/// before the command they are still accepted.
#[test]
fn server_options_show_only_where_they_are_used() {
    for command in ["call", "sign", "doctor", "fiat-token", "jwt"] {
        let help = stdout_of(&[command, "--help"]);
        assert!(
            help.contains("--base-url") && help.contains("--credentials"),
            "{command}: {help}"
        );
    }
    for command in [
        "serve",
        "sandbox",
        "bench-echo",
        "accounts",
        "keys",
        "partners",
        "reload",
    ] {
        let help = stdout_of(&[command, "--help"]);
        assert!(
            !help.contains("--base-url") && !help.contains("--credentials"),
            "{command}: {help}"
        );
    }
    let top = stdout_of(&["--help"]);
    assert!(!top.contains("--base-url"), "{top}");
    let out = wbauth()
        .args(["--credentials", "/nonexistent/creds.toml", "call", "/x"])
        .env_remove("WBAUTH_API_KEY")
        .env_remove("WBAUTH_API_SECRET")
        .output()
        .expect("wbauth runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/creds.toml"), "{stderr}");
}
