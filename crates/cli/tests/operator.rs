//! What an operator hit following the README: a refused start that left its master
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

/// The bash completion script loads, and completes a command and an option.
#[test]
fn bash_completion_loads_and_completes() {
    let script = stdout_of(&["completions", "bash"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("wbauth.bash");
    std::fs::write(&file, script).expect("write");
    // As bash calls it: the words so far, the index of the current one, and the function
    // with the command, the current word and the one before.
    let complete = |words: &str, index: usize| -> String {
        let program = format!(
            "set -e; source {}; complete -p wbauth >/dev/null; \
             COMP_WORDS=({words}); COMP_CWORD={index}; COMP_LINE='{words}'; \
             COMP_POINT=${{#COMP_LINE}}; \
             _wbauth wbauth \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display()
        );
        let out = Command::new("bash")
            .args(["-c", &program])
            .output()
            .expect("bash runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let commands = complete("wbauth re", 1);
    assert_eq!(
        commands.lines().collect::<Vec<_>>(),
        ["reload"],
        "{commands}"
    );
    let options = complete("wbauth serve --c", 2);
    assert!(
        options.lines().any(|l| l == "--config") && options.lines().any(|l| l == "--check"),
        "{options}"
    );
    for shell in ["zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        assert!(
            script.contains("reload") && script.contains("conformance"),
            "{shell}"
        );
    }
}

/// `wbauth man --out DIR` writes a page per command, which `man` renders.
#[test]
fn manual_pages_are_written_per_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = stdout_of(&["man", "--out", &dir.path().display().to_string()]);
    assert!(out.starts_with("written="), "{out}");
    for page in [
        "wbauth.1",
        "wbauth-serve.1",
        "wbauth-keys-create.1",
        "wbauth-reload.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).expect(page);
        assert!(text.contains(".TH wbauth"), "{page}");
    }
    let top = stdout_of(&["man"]);
    assert!(
        top.contains(".SH SUBCOMMANDS") || top.contains("wbauth\\-serve"),
        "{top}"
    );
    if std::path::Path::new("/usr/bin/man").exists() {
        let rendered = Command::new("man")
            .arg("-l")
            .arg(dir.path().join("wbauth-serve.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .expect("man runs");
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(text.contains("--config"), "{text}");
    }
}
