//! What `dist/` ships, checked against the real thing: the systemd unit (`systemd-analyze
//! verify`, where systemd is installed), the Prometheus rules (`promtool check rules` and
//! their unit tests), the `/metrics` text of running gateways (`promtool check metrics`), and
//! every metric the Grafana dashboard and the rules query, which must be one the gateway
//! exports on some store.

#![cfg(feature = "test-clock")]

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::backends::Backend;
use common::gateway::{TOKEN, Upstream, spawn_serve, write_config};

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist")
}

/// `promtool` (Debian's `prometheus` package; `./test.sh` installs it).
fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dist())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (./test.sh installs Debian's prometheus package)");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("stdin written");
    drop(input);
    let out = child.wait_with_output().expect("promtool ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The `/metrics` text of a gateway on `backend`.
async fn metrics_of(backend: Backend) -> String {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), upstream.addr, "");
    let mut env = backend.stores().env();
    env.push(("WBAUTH_ADMIN_TOKEN".to_owned(), TOKEN.to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gateway = spawn_serve(dir.path(), &config, &env, "stderr.log")
        .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    gateway.metrics().await
}

/// The `wbauth_…` metric names a text mentions.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("wbauth_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_rules_query_only_exported_metrics() {
    let mut exported = BTreeSet::new();
    for backend in [
        Backend::Embedded,
        Backend::SqliteRedis,
        Backend::SqlitePostgres,
    ] {
        let text = metrics_of(backend).await;
        let (ok, lint) = promtool(&["check", "metrics"], Some(&text));
        assert!(ok, "{backend:?}: promtool check metrics: {lint}\n{text}");
        exported.extend(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split(['{', ' ']).next())
                .map(str::to_owned),
        );
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dist().join("grafana-dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(queries.len() >= 20, "{queries:?}");
    let rules = std::fs::read_to_string(dist().join("alerts.yml")).expect("rules");
    let mut asked = names_in(&queries.join("\n"));
    asked.extend(names_in(&rules));
    let missing: Vec<&String> = asked.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\nexported: {exported:?}"
    );
    // The panels cover the families the gateway exports (requests, latency, both stores).
    for family in [
        "wbauth_requests_total",
        "wbauth_request_duration_seconds_bucket",
        "wbauth_nonce_store_up",
        "wbauth_key_store_up",
        "wbauth_nonce_store_errors_total",
        "wbauth_config_reload_failures_total",
    ] {
        assert!(asked.contains(family), "{family} is not on the dashboard");
    }
}

#[test]
fn alert_rules_load_and_fire_as_their_tests_say() {
    let (ok, text) = promtool(&["check", "rules", "alerts.yml"], None);
    assert!(ok, "{text}");
    let (ok, text) = promtool(&["test", "rules", "alerts.test.yml"], None);
    assert!(ok, "{text}");
}

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: dist/wbauth.service not verified");
        return;
    }
    let unit = std::fs::read_to_string(dist().join("wbauth.service")).expect("unit");
    for needed in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/wbauth",
        "NoNewPrivileges=yes",
        "LimitNOFILE=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(needed), "{needed}");
    }
    // systemd-analyze checks that the programs exist: point the unit at this build.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("wbauth.service");
    std::fs::write(
        &file,
        unit.replace("/usr/local/bin/wbauth", env!("CARGO_BIN_EXE_wbauth")),
    )
    .expect("unit written");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&file)
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown key or value is only a warning to systemd: any word from it fails here.
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
