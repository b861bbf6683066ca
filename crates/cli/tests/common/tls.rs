//! HTTPS helpers: certificate files from a test CA, `wbauth serve` with a TLS public
//! listener, clients trusting one CA.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use serde_json::json;
use wbauth_testkit::{ServerCert, TestCa};

use super::gateway::{Gateway, T0, TOKEN, Upstream, spawn_serve, write_config};

/// Writes `cert` as `DIR/NAME.pem` (the chain) and `DIR/NAME-key.pem`.
pub fn write_pair(dir: &Path, name: &str, cert: &ServerCert) -> (PathBuf, PathBuf) {
    let chain = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&chain, &cert.chain_pem).expect("chain written");
    std::fs::write(&key, &cert.key_pem).expect("key written");
    (chain, key)
}

/// `wbauth serve` (test clock at T0) whose public listener serves `cert`/`key`, plus
/// whatever `env` adds; the admin listener stays plain HTTP.
pub async fn serve_tls(
    upstream: &Upstream,
    cert: &Path,
    key: &Path,
    env: &[(&str, &str)],
) -> Gateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), upstream.addr, "");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut all = vec![
        ("WBAUTH_ADMIN_TOKEN", TOKEN),
        ("WBAUTH_GATEWAY__LISTEN__TLS__CERT", cert.as_str()),
        ("WBAUTH_GATEWAY__LISTEN__TLS__KEY", key.as_str()),
    ];
    all.extend_from_slice(env);
    let mut gateway = spawn_serve(dir.path(), &config, &all, "stderr.log")
        .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
    gateway._dir_guard = Some(dir);
    gateway.clock(json!({"set_ms": T0})).await;
    gateway
}

/// A client trusting only `ca`; HTTP/1.1 only, or HTTP/2 when the server offers it.
pub fn client(ca: &TestCa, http1_only: bool) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA certificate");
    let builder = reqwest::Client::builder()
        .tls_certs_only([root])
        .timeout(std::time::Duration::from_secs(30));
    let builder = if http1_only {
        builder.http1_only()
    } else {
        builder
    };
    builder.build().expect("client")
}

/// A new CA, a certificate from it for `localhost` (files in `dir`), and `wbauth serve`
/// serving it on its public listener; the base URL names `localhost`, as the certificate does.
pub async fn localhost_gateway(upstream: &Upstream, dir: &Path) -> (Gateway, TestCa, String) {
    let ca = TestCa::new("wbauth https test CA").expect("CA");
    let (cert, key) = write_pair(
        dir,
        "server",
        &ca.server_cert(&["localhost"]).expect("cert"),
    );
    let gw = serve_tls(upstream, &cert, &key, &[]).await;
    let base = gw.base.replace("127.0.0.1", "localhost");
    (gw, ca, base)
}
