//! Shared by the integration tests: start the real `wbauth` binary on a free loopback port
//! and speak HTTP to it.

#![allow(dead_code, unreachable_pub)]

pub mod backends;
pub mod catalogue;
pub mod console;
pub mod fiat;
pub mod gateway;
pub mod raw;
pub mod tls;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::{SignedRequest, sign_body};

pub const DEMO_KEY: &str = "demo-public-key";
pub const DEMO_SECRET: &str = "demo-secret-value";

/// A running `wbauth bench-echo` (the minimal upstream), killed on drop.
pub struct Echo {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Echo {
    /// Starts it on a free port.
    pub fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wbauth"))
            .args(["bench-echo", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("wbauth bench-echo starts");
        let stdout = child.stdout.take().expect("stdout");
        // Bounded by the process: if it dies, the lines end.
        let base = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("listening=").map(str::to_owned))
            .expect("bench-echo printed listening=");
        Self { child, base }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `wbauth sandbox`, killed on drop.
pub struct Sandbox {
    child: Child,
    pub base: String,
    pub key: String,
    pub secret: String,
}

impl Sandbox {
    /// Starts a sandbox with the fixed demo credentials.
    pub fn start() -> Self {
        Self::start_with(&["--demo-key", DEMO_KEY, "--demo-secret", DEMO_SECRET])
    }

    /// Starts a sandbox with the fixed demo credentials on fresh stores of `backend`.
    pub fn start_on(backend: backends::Backend) -> Self {
        Self::start_env(
            &["--demo-key", DEMO_KEY, "--demo-secret", DEMO_SECRET],
            &backend.stores().env(),
        )
    }

    /// Starts a sandbox with extra arguments.
    pub fn start_with(args: &[&str]) -> Self {
        Self::start_env(args, &[])
    }

    /// Starts a sandbox with extra arguments and environment variables.
    pub fn start_env(args: &[&str], env: &[(String, String)]) -> Self {
        Self::spawn(args, env, Stdio::inherit())
    }

    /// Starts a sandbox with extra arguments, its stderr (the sandbox's terminal) written to
    /// the file `stderr`.
    pub fn start_logged(args: &[&str], stderr: &std::path::Path) -> Self {
        let file = std::fs::File::create(stderr).expect("stderr file");
        Self::spawn(args, &[], Stdio::from(file))
    }

    fn spawn(args: &[&str], env: &[(String, String)], stderr: Stdio) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wbauth"))
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("WBAUTH_MASTER_KEY")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("wbauth sandbox starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut base, mut key, mut secret) = (None, None, None);
        // Bounded by the process: if it dies, the lines end.
        while secret.is_none() {
            let line = lines
                .next()
                .expect("sandbox printed its contract")
                .expect("utf8 line");
            if let Some(v) = line.strip_prefix("listening=") {
                base = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("api_key=") {
                key = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("api_secret=") {
                secret = Some(v.to_owned());
            }
        }
        Self {
            child,
            base: base.expect("listening= line"),
            key: key.expect("api_key= line"),
            secret: secret.expect("api_secret= line"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs `body` with the demo secret.
    pub fn sign(&self, body: &str) -> SignedRequest {
        sign_body(
            body.as_bytes().to_vec(),
            &HmacSha512Key::new(self.secret.as_bytes()),
        )
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the exit status.
    pub fn terminate(mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Sandbox {
    /// SIGTERM first, so the sandbox removes its temporary data dir; SIGKILL if it has not
    /// exited within a bounded wait.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            for _ in 0..200 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Current Unix ms.
pub fn now_ms() -> u64 {
    whitebit_client::unix_ms()
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// Reads the whole of `response`.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Self {
            status,
            body,
            headers,
        }
    }
}

/// Asserts the status and the exact body of a JSON answer.
pub fn assert_answer(a: &Answer, status: u16, body: &str) {
    assert_eq!(
        (a.status, a.body.as_str()),
        (status, body),
        "full answer: {a:?}"
    );
    assert_eq!(
        a.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{a:?}"
    );
}

/// The headers of a signed request: the JSON content type, the key, the payload and the
/// signature.
pub fn signed_headers<'a>(
    key: &'a str,
    payload: &'a str,
    signature: &'a str,
) -> [(&'static str, &'a [u8]); 4] {
    [
        ("content-type", b"application/json"),
        ("x-txc-apikey", key.as_bytes()),
        ("x-txc-payload", payload.as_bytes()),
        ("x-txc-signature", signature.as_bytes()),
    ]
}

/// Sends a POST with the given headers and body.
pub async fn post(url: &str, headers: &[(&str, &[u8])], body: impl Into<Vec<u8>>) -> Answer {
    let client = reqwest::Client::new();
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            reqwest::header::HeaderValue::from_bytes(value).expect("header value"),
        );
    }
    let response = client
        .post(url)
        .headers(map)
        .body(body.into())
        .send()
        .await
        .expect("request sent");
    Answer::read(response).await
}

/// Sends a correctly signed request whose body is exactly `body`.
pub async fn signed(sandbox: &Sandbox, path: &str, body: &str) -> Answer {
    let s = sandbox.sign(body);
    post(
        &sandbox.url(path),
        &signed_headers(&sandbox.key, &s.payload, &s.signature),
        body.as_bytes().to_vec(),
    )
    .await
}
