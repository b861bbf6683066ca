//! `wbauth bench` and `wbauth bench-echo` as real processes on loopback: unsigned load on the
//! echo upstream, signed window- and strict-mode load on the sandbox, and the refusals
//! (strict mode with fewer keys than connections, nothing to connect to).

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{DEMO_KEY, DEMO_SECRET, Echo, Sandbox};
use serde_json::Value;

const BALANCE: &str = "/api/v4/trade-account/balance";
/// Upper bound for one bench run (they take a few seconds).
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// Runs `wbauth ARGS` to completion (at most `RUN_LIMIT`, then it is killed).
fn wbauth(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args(args)
        .env_remove("WBAUTH_API_KEY")
        .env_remove("WBAUTH_API_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wbauth starts");
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(RUN_LIMIT) {
        Ok(output) => output.expect("wbauth ran"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("wbauth {args:?} did not finish within {RUN_LIMIT:?}");
        }
    }
}

/// Runs `wbauth` with the words of `line` (none of its arguments holds a space).
fn run(line: &str) -> Output {
    wbauth(&line.split_whitespace().collect::<Vec<_>>())
}

/// Runs `wbauth bench ARGS --json --quiet` and returns the parsed report (exit status 0
/// asserted).
fn bench_json(args: &str) -> Value {
    let out = run(&format!("bench {args} --json --quiet"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench {args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bench printed no JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// 2000 answers, all 200, sane percentiles and rate.
fn assert_all_ok(report: &Value, requests: u64) {
    assert_eq!(report["requests"], requests, "{report}");
    assert_eq!(report["responses"], requests, "{report}");
    assert_eq!(report["transport_errors"], 0, "{report}");
    let status = report["status"].as_object().expect("status object");
    assert_eq!(status.len(), 1, "{report}");
    assert_eq!(status["200"], requests, "{report}");
    let latency = &report["latency_us"];
    let p = |name: &str| latency[name].as_u64().expect("latency field");
    assert!(
        p("p50") <= p("p90") && p("p90") <= p("p99") && p("p99") <= p("max"),
        "{report}"
    );
    assert!(report["rps"].as_f64().expect("rps") > 0.0, "{report}");
    assert!(report["valid"].is_boolean(), "{report}");
    if cfg!(target_os = "linux") {
        let cpu = &report["cpu"];
        assert!(
            cpu["seconds"].as_f64().expect("cpu seconds") >= 0.0,
            "{report}"
        );
        assert!(
            cpu["fraction"].as_f64().expect("cpu fraction") >= 0.0,
            "{report}"
        );
    }
}

#[test]
fn plain_load_on_the_echo_upstream() {
    let echo = Echo::start();
    let url = format!("{}{BALANCE}", echo.base);
    let report = bench_json(&format!("{url} --plain --requests 2000 --connections 8"));
    assert_all_ok(&report, 2000);
    assert_eq!(report["signed"], false, "{report}");
    assert_eq!(report["connections"], 8, "{report}");
    assert_eq!(report["reconnects"], 0, "{report}");

    // The table: every line there, nothing on stdout but the table.
    let out = run(&format!(
        "bench {url} --plain --requests 200 --connections 2 --warmup 0s --quiet"
    ));
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    for label in [
        "target",
        "mode",
        "load",
        "requests",
        "latency",
        "status",
        "errors",
        "reconnects",
        "generator",
    ] {
        assert!(
            table.lines().any(|l| l.starts_with(label)),
            "no {label} line in:\n{table}"
        );
    }
    assert!(table.contains("200: 200"), "{table}");

    // Paced (--rate): the same answers, the pace in the report and the table.
    let paced = bench_json(&format!(
        "{url} --plain --requests 300 --connections 4 --warmup 0s --rate 2000"
    ));
    assert_all_ok(&paced, 300);
    assert_eq!(paced["rate"], 2000, "{paced}");
    let out = run(&format!(
        "bench {url} --plain --requests 20 --connections 2 --warmup 0s --rate 500 --quiet"
    ));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("paced at 500/s"), "{table}");
}

#[test]
fn signed_load_on_the_sandbox_in_window_and_strict_mode() {
    let sandbox = Sandbox::start();
    let url = sandbox.url(BALANCE);
    // Window mode: one key shared by 4 connections. No warmup, so one key's nonces
    // (max(now, last + 1)) stay within the ±5 s window even above 1000 requests/s.
    let report = bench_json(&format!(
        "{url} --key {DEMO_KEY} --secret {DEMO_SECRET} --requests 2000 --connections 4 --warmup 0s"
    ));
    assert_all_ok(&report, 2000);
    assert_eq!(report["mode"], "window", "{report}");
    assert_eq!(report["signed"], true, "{report}");
    assert_eq!(report["keys"], 1, "{report}");

    // Strict mode: the key's nonces start at unix_ms * 1000, above everything so far.
    let report = bench_json(&format!(
        "{url} --mode strict --key {DEMO_KEY} --secret {DEMO_SECRET} --requests 2000 --connections 1"
    ));
    assert_all_ok(&report, 2000);
    assert_eq!(report["mode"], "strict", "{report}");

    // A wrong secret is reported (401s), not fatal, and never printed.
    let out = run(&format!(
        "bench {url} --key {DEMO_KEY} --secret not-the-secret --requests 20 --connections 2 \
         --warmup 0s --json --quiet"
    ));
    assert!(out.status.success(), "{out:?}");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("not-the-secret"), "{text}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["requests"], 20, "{report}");
    assert!(report["status"].get("200").is_none(), "{report}");
}

#[test]
fn strict_mode_needs_a_key_per_connection() {
    let out = run(&format!(
        "bench http://127.0.0.1:9{BALANCE} --mode strict --key K --secret S --connections 2"
    ));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("strict mode needs one key per connection")
            && stderr.contains("2 connection(s) but 1 key(s)"),
        "{stderr}"
    );
}

#[test]
fn nothing_to_connect_to_fails() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/x");
    let out = wbauth(&["bench", &url, "--plain", "--requests", "10", "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing could connect"), "{stderr}");
    // Usage errors: no key at all, another scheme, a CA file that is not there.
    let out = wbauth(&["bench", &url, "--requests", "10"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API key"));
    let out = wbauth(&["bench", "ftp://127.0.0.1/x", "--plain"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let https = format!("https://127.0.0.1:{port}/x");
    let out = wbauth(&[
        "bench",
        &https,
        "--plain",
        "--cacert",
        "/nonexistent/ca.pem",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ca.pem"),
        "{out:?}"
    );
}

#[test]
fn an_https_target_is_measured_over_http2_when_offered_else_http1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/make-test-ca.sh");
    let made = Command::new("bash")
        .arg(script)
        .arg(dir.path())
        .output()
        .expect("script runs");
    assert!(made.status.success(), "{made:?}");
    let (cert, key, ca) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    let sandbox = Sandbox::start_with(&[
        "--demo-key",
        DEMO_KEY,
        "--demo-secret",
        DEMO_SECRET,
        "--tls-cert",
        cert.to_str().expect("utf8"),
        "--tls-key",
        key.to_str().expect("utf8"),
    ]);
    let url = sandbox.url("/api/v4/trade-account/balance");
    assert!(url.starts_with("https://"), "{url}");
    for (extra, protocol) in [(None, "HTTP/2"), (Some("--http1"), "HTTP/1.1")] {
        let mut args = vec![
            "bench",
            &url,
            "--key",
            DEMO_KEY,
            "--secret",
            DEMO_SECRET,
            "--requests",
            "50",
            "--connections",
            "2",
            "--json",
            "--cacert",
            ca.to_str().expect("utf8"),
        ];
        args.extend(extra);
        let out = wbauth(&args);
        assert!(out.status.success(), "{out:?}");
        let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        assert_eq!(report["protocol"], protocol, "{report}");
        assert_eq!(report["status"]["200"], 50, "{report}");
    }
}
