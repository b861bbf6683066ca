//! Running the gateway over TLS: certificates replaced without a restart (on `SIGHUP`,
//! `wbauth reload`, or when the files change) while open connections carry on; unusable
//! files keep the certificate in service and `/readyz` says why; the admin listener with
//! client certificates (mutual TLS) as the CLI reaches it; the sandbox over HTTPS with
//! `wbauth call --cacert`. Certificates come from `dist/make-test-ca.sh`, the README's recipe,
//! and from a CA made at test time.

#![cfg(feature = "test-clock")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::catalogue::BALANCE;
use common::gateway::{Gateway, TOKEN, Upstream, spawn_serve, write_config};
use common::tls::{client, serve_tls, write_pair};
use serde_json::Value;
use wbauth_testkit::TestCa;

/// Runs `dist/make-test-ca.sh DIR`; the files it printed, by name.
fn make_test_ca(dir: &Path) -> std::collections::HashMap<String, PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/make-test-ca.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .output()
        .expect("script runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, path)| (name.to_owned(), PathBuf::from(path)))
        .collect()
}

/// Whether a new connection from a client trusting only `ca` is served (a GET on a private
/// path: 405).
async fn served_to(ca: &TestCa, base: &str) -> bool {
    match client(ca, false)
        .get(format!("{base}{BALANCE}"))
        .send()
        .await
    {
        Ok(answer) => answer.status().as_u16() == 405,
        Err(_) => false,
    }
}

/// Waits (bounded) until `condition` holds.
async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(gw: &Gateway) -> Value {
    let text = reqwest::get(format!("{}/readyz", gw.admin))
        .await
        .expect("readyz")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).expect("JSON")
}

fn wbauth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args(args)
        .env("WBAUTH_ADMIN_TOKEN", TOKEN)
        .env_remove("WBAUTH_ADMIN_URL")
        .env_remove("WBAUTH_ADMIN_CACERT")
        .env_remove("WBAUTH_ADMIN_CERT")
        .env_remove("WBAUTH_ADMIN_KEY")
        .output()
        .expect("wbauth runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_replaced_without_a_restart_and_bad_ones_are_refused() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cas: Vec<TestCa> = (1..=3)
        .map(|i| TestCa::new(&format!("CA {i}")).expect("CA"))
        .collect();
    let issue = |ca: &TestCa| ca.server_cert(&["localhost"]).expect("cert");
    let (cert, key) = write_pair(dir.path(), "server", &issue(&cas[0]));
    let gw = serve_tls(&upstream, &cert, &key, &[]).await;
    let base = gw.base.replace("127.0.0.1", "localhost");
    assert_eq!(readyz(&gw).await["tls"]["public"], "ok");

    // A connection opened before the change, kept by this client (it trusts CA 1 only).
    let open = client(&cas[0], false);
    let answer = open
        .get(format!("{base}{BALANCE}"))
        .send()
        .await
        .expect("served");
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);

    // SIGHUP after the files changed: new connections get CA 2's certificate.
    write_pair(dir.path(), "server", &issue(&cas[1]));
    let hup = Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success());
    until("CA 2's certificate is served", || served_to(&cas[1], &base)).await;
    assert!(
        !served_to(&cas[0], &base).await,
        "the old certificate is gone"
    );
    // The connection opened before is untouched (a new one would fail: it trusts CA 1).
    let answer = open
        .get(format!("{base}{BALANCE}"))
        .send()
        .await
        .expect("still open");
    assert_eq!(answer.status().as_u16(), 405);

    // A key that is not one: refused, the certificate in service kept, said by
    // `wbauth reload`, the log and /readyz.
    std::fs::write(&key, "not a key").expect("key written");
    let out = wbauth(&["reload", "--admin-url", &gw.admin]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("Warning: the public listener's certificate files cannot be used")
            && stdout.contains("holds no usable private key"),
        "{stdout}"
    );
    let problem = readyz(&gw).await["tls"]["public"]
        .as_str()
        .map(str::to_owned);
    assert!(
        problem
            .as_deref()
            .is_some_and(|p| p.contains("the previous certificate stays in service")),
        "{problem:?}"
    );
    assert!(
        served_to(&cas[1], &base).await,
        "CA 2's certificate still served"
    );
    assert!(
        gw.stderr_text()
            .contains("certificate files cannot be used")
    );

    // Files replaced, no signal: noticed by the gateway itself.
    write_pair(dir.path(), "server", &issue(&cas[2]));
    until("CA 3's certificate is served", || served_to(&cas[2], &base)).await;
    until("/readyz says ok again", || async {
        readyz(&gw).await["tls"]["public"] == "ok"
    })
    .await;
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_asks_for_client_certificates() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_test_ca(&dir.path().join("pki"));
    let path = |name: &str| files[name].display().to_string();
    let config = write_config(dir.path(), upstream.addr, "");
    let gw = spawn_serve(
        dir.path(),
        &config,
        &[
            ("WBAUTH_ADMIN_TOKEN", TOKEN),
            ("WBAUTH_GATEWAY__ADMIN__TLS__CERT", &path("cert")),
            ("WBAUTH_GATEWAY__ADMIN__TLS__KEY", &path("key")),
            ("WBAUTH_GATEWAY__ADMIN__TLS__CLIENT_CA", &path("ca")),
        ],
        "stderr.log",
    )
    .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    assert!(gw.admin.starts_with("https://127.0.0.1:"), "{}", gw.admin);
    assert!(
        gw.base.starts_with("http://"),
        "the public listener stays plain: {}",
        gw.base
    );
    let admin = gw.admin.replace("127.0.0.1", "localhost");
    let tls_args = ["--admin-url", &admin, "--admin-cacert", &path("ca")];

    // Without a client certificate: refused in the handshake, said plainly.
    let out = wbauth(&[&["reload"][..], &tls_args].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr.contains("cannot reach the admin API at https://localhost:"),
        "{stderr}"
    );
    // The TLS alert's reason reaches an HTTP/2 client or not, depending on timing; the hint
    // is always there.
    assert!(
        stderr.contains("if this admin listener asks for client certificates, give --admin-cert"),
        "{stderr}"
    );
    // Without the CA: the server is not trusted.
    let out = wbauth(&["reload", "--admin-url", &admin]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    // With one: served, and the listener kept serving through the refusals.
    let cert_args = [
        "--admin-cert",
        &path("client_cert"),
        "--admin-key",
        &path("client_key"),
    ];
    let out = wbauth(&[&["reload"][..], &tls_args, &cert_args].concat());
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Reloaded "),
        "{out:?}"
    );
    let out = wbauth(
        &[
            &["accounts", "create", "ops", "--json"][..],
            &tls_args,
            &cert_args,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{out:?}");

    // A server certificate offered as a client one is refused (it is not for client auth).
    let wrong = ["--admin-cert", &path("cert"), "--admin-key", &path("key")];
    let out = wbauth(&[&["reload"][..], &tls_args, &wrong].concat());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn the_sandbox_serves_https_to_call_with_cacert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_test_ca(dir.path());
    let path = |name: &str| files[name].display().to_string();
    let sandbox =
        common::Sandbox::start_with(&["--tls-cert", &path("cert"), "--tls-key", &path("key")]);
    assert!(
        sandbox.base.starts_with("https://127.0.0.1:"),
        "{}",
        sandbox.base
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wbauth"))
        .args([
            "call",
            BALANCE,
            "--base-url",
            &sandbox.base,
            "--cacert",
            &path("ca"),
        ])
        .env("WBAUTH_API_KEY", &sandbox.key)
        .env("WBAUTH_API_SECRET", &sandbox.secret)
        .env_remove("WBAUTH_CACERT")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .expect("wbauth runs");
    assert!(out.status.success(), "{out:?}");
    let balance: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(balance["USDT"]["available"].is_string(), "{balance}");
}
