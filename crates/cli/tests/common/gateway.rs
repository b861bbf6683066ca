//! A real `wbauth serve` (test clock) in front of a recording upstream on 127.0.0.1, managed
//! through the admin API and the CLI. Used by the serve, key and drill tests.

#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::{SignedRequest, sign_body};
use whitebit_gateway::totp::{code_at_step, step_of};

use super::{Answer, post, signed_headers};

pub const TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const UPSTREAM_ANSWER: &str = r#"{"ok":true}"#;

/// A start time on a step boundary (plus 1 s), so ±skew never matters.
pub const T0: u64 = 1_750_000_020_000;

// ---------------------------------------------------------------------------------------------
// A recording upstream
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start() -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let record = record.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.expect("body");
                record.lock().expect("lock").push(Seen {
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers,
                    body: body.to_vec(),
                });
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    UPSTREAM_ANSWER,
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen }
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("the upstream got a request")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    /// How many times each (key, nonce) was delivered (`X-Auth-Key`, the body's `nonce`).
    pub fn deliveries(&self) -> std::collections::HashMap<(String, u64), usize> {
        let mut counts = std::collections::HashMap::new();
        for seen in self.seen.lock().expect("lock").iter() {
            let body: Value = serde_json::from_slice(&seen.body).expect("forwarded JSON");
            let key = seen
                .headers
                .get("x-auth-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            *counts
                .entry((key, body["nonce"].as_u64().expect("nonce")))
                .or_insert(0) += 1;
        }
        counts
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway process
// ---------------------------------------------------------------------------------------------

pub struct Gateway {
    pub child: Child,
    pub _stdout: BufReader<ChildStdout>,
    pub base: String,
    pub admin: String,
    pub data_dir: PathBuf,
    pub stderr: PathBuf,
    pub _dir_guard: Option<tempfile::TempDir>,
}

pub fn write_config(dir: &Path, upstream: SocketAddr, extra: &str) -> PathBuf {
    write_config_to(dir, &format!("http://{upstream}"), extra)
}

/// [`write_config`] with the `/api/v4` route going to `upstream` (a URL); `extra` follows the
/// route's `upstream` line (route settings first, then any section).
pub fn write_config_to(dir: &Path, upstream: &str, extra: &str) -> PathBuf {
    let data = dir.join("data");
    let config = format!(
        r#"[listen]
addr = "127.0.0.1:0"

[admin]
addr = "127.0.0.1:0"

[store]
data_dir = "{}"

[[kind]]
name = "trade"
paths = ["/api/v4/trade-account/*", "/api/v4/order/*"]

[[kind]]
name = "main"
paths = ["/api/v4/main-account/*"]

[[route]]
prefix = "/api/v4"
upstream = "{upstream}"
{extra}
"#,
        data.display()
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).expect("config written");
    path
}

/// Starts `wbauth serve` (data dir `DIR/data`); `Err((status, stderr))` when it exits before
/// printing its addresses.
pub fn spawn_serve(
    dir: &Path,
    config: &Path,
    env: &[(&str, &str)],
    stderr_name: &str,
) -> Result<Gateway, (std::process::ExitStatus, String)> {
    let stderr_path = dir.join(stderr_name);
    let stderr = File::create(&stderr_path).expect("stderr file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_wbauth"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("WBAUTH_ADMIN_TOKEN")
        .env_remove("WBAUTH_MASTER_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr));
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn().expect("wbauth serve starts");
    Gateway::started(child, &dir.join("data"), &stderr_path).map_err(|status| {
        let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        (status, text)
    })
}

impl Gateway {
    /// Waits for a just spawned `wbauth serve` (stdout piped, stderr into `stderr`) to print
    /// its addresses; its exit status when it ends before that.
    pub fn started(
        mut child: Child,
        data_dir: &Path,
        stderr: &Path,
    ) -> Result<Self, std::process::ExitStatus> {
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (mut base, mut admin) = (None, None);
        while admin.is_none() {
            let mut line = String::new();
            if stdout.read_line(&mut line).expect("read stdout") == 0 {
                return Err(child.wait().expect("exit status"));
            }
            let line = line.trim_end();
            if let Some(v) = line.strip_prefix("listening=") {
                base = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("admin=") {
                admin = Some(v.to_owned());
            }
        }
        Ok(Self {
            child,
            _stdout: stdout,
            base: base.expect("listening= line before admin="),
            admin: admin.expect("admin= line"),
            data_dir: data_dir.to_owned(),
            stderr: stderr.to_owned(),
            _dir_guard: None,
        })
    }

    pub async fn start(upstream: &Upstream) -> Self {
        Self::start_with(upstream, "").await
    }

    /// Starts with extra TOML appended to the configuration.
    pub async fn start_with(upstream: &Upstream, extra: &str) -> Self {
        Self::start_for(upstream.addr, extra).await
    }

    /// Starts with its `/api/v4` route pointing at `upstream` (another proxy, say).
    pub async fn start_for(upstream: SocketAddr, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(dir.path(), upstream, extra);
        let mut gateway = spawn_serve(
            dir.path(),
            &config,
            &[("WBAUTH_ADMIN_TOKEN", TOKEN), ("WBAUTH_LOG", "debug")],
            "stderr.log",
        )
        .unwrap_or_else(|(status, err)| panic!("serve exited {status}: {err}"));
        gateway._dir_guard = Some(dir);
        gateway.clock(json!({"set_ms": T0})).await;
        gateway
    }

    /// `wbauth ARGS --admin-url ADMIN` with the admin token in the environment, to be run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wbauth"));
        command
            .args(args)
            .args(["--admin-url", &self.admin])
            .env("WBAUTH_ADMIN_TOKEN", TOKEN)
            .env_remove("WBAUTH_ADMIN_URL");
        command
    }

    /// Runs `wbauth ARGS --admin-url ADMIN` with the admin token in the environment.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("wbauth runs")
    }

    /// Runs the CLI with `input` on its stdin and expects success; returns stdout.
    pub fn ok_with_input(&self, args: &[&str], input: &str) -> String {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wbauth starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("input written");
        let out = child.wait_with_output().expect("exits");
        assert!(
            out.status.success(),
            "wbauth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// Runs the CLI and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "wbauth {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// Runs the CLI with `--json` and expects success; returns the JSON.
    pub fn ok_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(self.ok(&all).trim()).expect("JSON output")
    }

    /// Runs the CLI and expects exit code 1 with exactly `error: MESSAGE` on stderr.
    pub fn refused(&self, args: &[&str], message: &str) {
        let out = self.cli(args);
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).as_ref()
            ),
            (Some(1), format!("error: {message}\n").as_str()),
            "wbauth {args:?}; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(out.stdout.is_empty(), "nothing on stdout");
    }

    /// Moves the test clock; returns the new time.
    pub async fn clock(&self, body: Value) -> u64 {
        let answer = reqwest::Client::new()
            .post(format!("{}/test/clock", self.admin))
            .bearer_auth(TOKEN)
            .body(body.to_string())
            .send()
            .await
            .expect("clock request");
        assert_eq!(answer.status().as_u16(), 200);
        let value: Value = serde_json::from_str(&answer.text().await.expect("body")).expect("json");
        value["now_ms"].as_u64().expect("now_ms")
    }

    pub async fn advance(&self, ms: u64) -> u64 {
        self.clock(json!({"advance_ms": ms})).await
    }

    /// A strictly increasing nonce for every request of the test.
    pub fn nonce() -> u64 {
        static NONCE: AtomicU64 = AtomicU64::new(1);
        NONCE.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a correctly signed request for `path` with `key`/`secret`.
    pub async fn signed(&self, key: &str, secret: &str, path: &str) -> Answer {
        self.signed_body(key, secret, path).await.0
    }

    /// A body for `path` with a fresh strict nonce, and its payload and signature with
    /// `secret`.
    pub fn signed_request(secret: &str, path: &str) -> (String, SignedRequest) {
        let body = format!(
            r#"{{"request":"{path}","nonce":{},"ticker":"BTC"}}"#,
            Self::nonce()
        );
        let signed = sign_body(
            body.clone().into_bytes(),
            &HmacSha512Key::new(secret.as_bytes()),
        );
        (body, signed)
    }

    /// Like [`Self::signed`]; also returns the exact body sent.
    pub async fn signed_body(&self, key: &str, secret: &str, path: &str) -> (Answer, String) {
        let (body, signed) = Self::signed_request(secret, path);
        let answer = post(
            &format!("{}{path}", self.base),
            &signed_headers(key, &signed.payload, &signed.signature),
            body.clone(),
        )
        .await;
        (answer, body)
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..400 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("wbauth serve did not stop on SIGTERM");
    }
}

impl Gateway {
    /// `kill -9`, then a new `wbauth serve` on the same configuration and data dir (new
    /// ports), its test clock frozen at `clock_ms` from the start.
    pub fn kill9_and_restart(mut self, generation: u32, clock_ms: u64) -> Gateway {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let guard = self._dir_guard.take().expect("started by Gateway::start");
        let config = guard.path().join("gateway.toml");
        let mut next = spawn_serve(
            guard.path(),
            &config,
            &[
                ("WBAUTH_ADMIN_TOKEN", TOKEN),
                ("WBAUTH_TEST_CLOCK_MS", &clock_ms.to_string()),
            ],
            &format!("stderr-{generation}.log"),
        )
        .unwrap_or_else(|(status, err)| panic!("serve did not restart ({status}): {err}"));
        next._dir_guard = Some(guard);
        next
    }

    /// `POST ADMIN/PATH` with the admin token and `body` as it is; the response.
    pub async fn admin_request(&self, path: &str, body: String) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.admin))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .expect("admin request sent")
    }

    async fn admin_post(&self, path: &str, body: Value) -> Value {
        let answer = reqwest::Client::new()
            .post(format!("{}{path}", self.admin))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("admin request");
        let status = answer.status().as_u16();
        let text = answer.text().await.expect("admin answer");
        assert!((200..300).contains(&status), "{path}: {status} {text}");
        serde_json::from_str(&text).expect("admin JSON")
    }

    /// Creates an account with 2FA and a key of `kind` through the admin API (moving the
    /// test clock 30 s between TOTP actions); returns (public key, secret).
    pub async fn provision_key(&self, account: &str, kind: &str, ips: &[&str]) -> (String, String) {
        let (key, secret, _) = self.provision_key_with_totp(account, kind, ips).await;
        (key, secret)
    }

    /// Like [`Self::provision_key`]; also returns the account's TOTP secret.
    pub async fn provision_key_with_totp(
        &self,
        account: &str,
        kind: &str,
        ips: &[&str],
    ) -> (String, String, Vec<u8>) {
        self.admin_post("/admin/accounts", json!({"name": account}))
            .await;
        let enrolled = self
            .admin_post(&format!("/admin/accounts/{account}/2fa/enrol"), json!({}))
            .await;
        let totp = base32_decode(enrolled["secret"].as_str().expect("base32 secret"));
        let now = self.advance(30_000).await;
        self.admin_post(
            &format!("/admin/accounts/{account}/2fa/confirm"),
            json!({"code": code(&totp, now)}),
        )
        .await;
        let now = self.advance(30_000).await;
        let created = self
            .admin_post(
                "/admin/keys",
                json!({"account": account, "kind": kind, "code": code(&totp, now), "ips": ips}),
            )
            .await;
        (
            created["key"]["public_key"]
                .as_str()
                .expect("public key")
                .to_owned(),
            created["secret"].as_str().expect("secret").to_owned(),
            totp,
        )
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// RFC 4648 base32 without padding (surrounding white space ignored), as the gateway prints
/// TOTP secrets.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    // Five bits a character, most significant first; whole bytes of them, trailing bits dropped.
    let bits: Vec<u8> = text
        .trim()
        .bytes()
        .flat_map(|c| {
            let value = ALPHABET
                .iter()
                .position(|&a| a == c)
                .unwrap_or_else(|| panic!("not base32: {text:?}"));
            (0..5)
                .rev()
                .map(move |shift| u8::from((value >> shift) & 1 == 1))
        })
        .collect();
    bits.chunks_exact(8)
        .map(|byte| byte.iter().fold(0, |acc, bit| (acc << 1) | bit))
        .collect()
}

pub fn code(secret: &[u8], now_ms: u64) -> String {
    format!("{:06}", code_at_step(secret, step_of(now_ms)))
}

/// A code that is wrong for every step the gateway accepts at `now_ms`.
pub fn wrong_code(secret: &[u8], now_ms: u64) -> String {
    let step = step_of(now_ms);
    let valid: Vec<u32> = (step - 1..=step + 1)
        .map(|s| code_at_step(secret, s))
        .collect();
    let mut candidate = (valid[1] + 500_000) % 1_000_000;
    while valid.contains(&candidate) {
        candidate = (candidate + 1) % 1_000_000;
    }
    format!("{candidate:06}")
}

/// `wbauth accounts 2fa NAME` interactively: reads the printed secret, answers the prompt with
/// the current code. Returns the TOTP secret.
pub fn enrol_interactively(gateway: &Gateway, name: &str, now_ms: u64) -> Vec<u8> {
    let mut child = gateway
        .command(&["accounts", "2fa", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wbauth accounts 2fa starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = String::new();
    let secret = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).expect("read") > 0,
            "the secret was printed: {printed}"
        );
        printed.push_str(&line);
        if let Some(secret) = line.strip_prefix("secret:") {
            break base32_decode(secret);
        }
    };
    assert!(
        printed.contains(&format!(
            "otpauth URI: otpauth://totp/wbauth:{name}?secret="
        )),
        "{printed}"
    );
    assert!(
        printed.contains('▀') || printed.contains('▄'),
        "a QR code: {printed}"
    );
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", code(&secret, now_ms)).expect("code written");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("rest of stdout");
    let out = child.wait_with_output().expect("exit");
    assert!(
        out.status.success(),
        "2fa failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        rest,
        format!("Two-factor authentication is on for account {name}.\n")
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "Code from the app: ");
    secret
}

pub fn no_txc_headers(seen: &Seen) {
    for name in seen.headers.keys() {
        assert!(
            !name.as_str().starts_with("x-txc-"),
            "{name} was forwarded upstream"
        );
    }
}
