//! Shared by the fault drills (`drill_*.rs`, run in full by `drills/*.sh`): the size knob,
//! a seeded random generator, sending signed requests and tallying their answers, the
//! one-line summary every drill prints, and pausing a server process with SIGSTOP.
//!
//! `WBAUTH_DRILL_SCALE=short|full` (default `short`, so `cargo test` and `./test.sh` stay
//! quick); `WBAUTH_DRILL_SEED=N` repeats a run (the seed is printed in every summary).

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::{SignedRequest, sign_body};

use crate::common::gateway::{Gateway, TOKEN, Upstream, spawn_serve, write_config};

/// The fail-closed answer of an unreachable store (`docs/errors.md`).
pub const BUSY: &str = r#"{"code":0,"message":"Service temporarily unavailable."}"#;
/// An upstream that cannot be reached (`docs/errors.md`).
pub const BAD_GATEWAY: &str = r#"{"code":0,"message":"Bad gateway."}"#;
/// An upstream that does not answer in time (`docs/errors.md`).
pub const GATEWAY_TIMEOUT: &str = r#"{"code":0,"message":"Gateway timeout."}"#;
/// Rows 16b and 16c.
pub const NONCE_REFUSED: &str = r#"{"code":0,"errors":{},"message":"Too many requests."}"#;

/// How big a drill runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// A few seconds per drill: `cargo test`, `./test.sh`.
    Short,
    /// The full drill: `drills/*.sh`.
    Full,
}

impl Scale {
    /// From `WBAUTH_DRILL_SCALE` (`short` when unset).
    pub fn from_env() -> Self {
        match std::env::var("WBAUTH_DRILL_SCALE").as_deref() {
            Ok("full") => Scale::Full,
            Ok("short") | Err(_) => Scale::Short,
            Ok(other) => panic!("WBAUTH_DRILL_SCALE must be short or full, not {other:?}"),
        }
    }

    /// `short` or `full`.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Short => "short",
            Scale::Full => "full",
        }
    }

    /// `short` in the short form, else `full`.
    pub fn pick<T>(self, short: T, full: T) -> T {
        match self {
            Scale::Short => short,
            Scale::Full => full,
        }
    }
}

/// The seed of this run: `WBAUTH_DRILL_SEED`, else taken from the time of day.
pub fn seed() -> u64 {
    match std::env::var("WBAUTH_DRILL_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WBAUTH_DRILL_SEED must be an integer, not {text:?}")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// SplitMix64: small, seeded, good enough to pick kill moments.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        assert!(low <= high, "empty range {low}..={high}");
        let span = (high - low) as u64 + 1;
        low + (self.next_u64() % span) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and answers
// ---------------------------------------------------------------------------------------------

/// One signed request, kept for the replay.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The public key it is signed for.
    pub key: String,
    /// The nonce in the body.
    pub nonce: u64,
    /// The exact body.
    pub body: String,
    /// Its headers.
    pub signed: SignedRequest,
}

impl Prepared {
    /// Signs `{"request":PATH,"nonce":N[,"nonceWindow":true],"market":"BTC_USDT"}`.
    pub fn new(key: &str, secret: &str, path: &str, nonce: u64, window: bool) -> Self {
        let body = if window {
            format!(
                r#"{{"request":"{path}","nonce":{nonce},"nonceWindow":true,"market":"BTC_USDT"}}"#
            )
        } else {
            format!(r#"{{"request":"{path}","nonce":{nonce},"market":"BTC_USDT"}}"#)
        };
        let signed = sign_body(
            body.clone().into_bytes(),
            &HmacSha512Key::new(secret.as_bytes()),
        );
        Self {
            key: key.to_owned(),
            nonce,
            body,
            signed,
        }
    }

    /// The path in the body.
    pub fn path(&self) -> &str {
        let start = r#"{"request":""#.len();
        let end = self.body[start..].find('"').expect("path") + start;
        &self.body[start..end]
    }
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status, or `None` when no answer arrived (connection refused or reset).
    pub status: Option<u16>,
    /// The body.
    pub body: String,
    /// `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
}

impl Reply {
    /// Whether the request was accepted (answered 200).
    pub fn accepted(&self) -> bool {
        self.status == Some(200)
    }

    /// The drill's fail-closed answer: exactly 503 `BUSY` with `Retry-After: 1`.
    pub fn is_busy(&self) -> bool {
        self.status == Some(503)
            && self.body == BUSY
            && self.retry_after.as_deref() == Some("1")
            && self.content_type.as_deref() == Some("application/json")
    }
}

/// One HTTP client for the whole test binary (keep-alive; building one costs milliseconds).
pub fn client() -> &'static reqwest::Client {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    });
    &CLIENT
}

/// Sends one prepared request to `base`.
pub async fn send(base: &str, request: &Prepared) -> Reply {
    let sent = client()
        .post(format!("{base}{}", request.path()))
        .header("content-type", "application/json")
        .header("x-txc-apikey", &request.key)
        .header("x-txc-payload", &request.signed.payload)
        .header("x-txc-signature", &request.signed.signature)
        .body(request.body.clone())
        .send()
        .await;
    let Ok(response) = sent else {
        return Reply {
            status: None,
            body: String::new(),
            retry_after: None,
            content_type: None,
        };
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after, content_type) = (header("retry-after"), header("content-type"));
    match response.text().await {
        Ok(body) => Reply {
            status: Some(status),
            body,
            retry_after,
            content_type,
        },
        // The head arrived, the body did not: no answer as far as the client is concerned.
        Err(_) => Reply {
            status: None,
            body: String::new(),
            retry_after,
            content_type,
        },
    }
}

/// Sends `requests` `concurrency` at a time, batch after batch (in order); the replies in the
/// same order.
pub async fn send_batches(base: &str, requests: &[Prepared], concurrency: usize) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(requests.len());
    for chunk in requests.chunks(concurrency) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|r| {
                let (base, r) = (base.to_owned(), r.clone());
                tokio::spawn(async move { send(&base, &r).await })
            })
            .collect();
        for task in tasks {
            replies.push(task.await.expect("request task"));
        }
    }
    replies
}

// ---------------------------------------------------------------------------------------------
// The tally and the one-line summary
// ---------------------------------------------------------------------------------------------

/// Counts of one drill: every answer by reason, and the verdict on doubles.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests sent (replays included).
    pub sent: u64,
    /// Answered 200.
    pub accepted: u64,
    /// Refusals by reason: `nonce` (row 16), `503`, `502`, `504`, `conn` (no answer: the
    /// gateway was killed or the connection dropped), `other` (any other answer).
    pub rejected: BTreeMap<&'static str, u64>,
    /// Every 5xx answer (503 fail-closed and 502/504 upstream failures included).
    pub errors_5xx: u64,
    /// Answers no drill expects (a 500, a wrong body for its status).
    pub unexpected: Vec<String>,
}

impl Tally {
    /// Counts one reply.
    pub fn add(&mut self, reply: &Reply) {
        self.sent += 1;
        let Some(status) = reply.status else {
            *self.rejected.entry("conn").or_default() += 1;
            return;
        };
        if status >= 500 {
            self.errors_5xx += 1;
        }
        let expected_body = match status {
            200 => {
                self.accepted += 1;
                return;
            }
            429 => ("nonce", NONCE_REFUSED),
            502 => ("502", BAD_GATEWAY),
            503 => ("503", BUSY),
            504 => ("504", GATEWAY_TIMEOUT),
            _ => ("other", ""),
        };
        *self.rejected.entry(expected_body.0).or_default() += 1;
        let json = reply.content_type.as_deref() == Some("application/json");
        let retry_ok = status != 503 || reply.retry_after.as_deref() == Some("1");
        if reply.body != expected_body.1 || !json || !retry_ok {
            self.unexpected.push(format!("{status} {reply:?}"));
        }
    }

    /// Counts every reply.
    pub fn add_all<'a>(&mut self, replies: impl IntoIterator<Item = &'a Reply>) {
        for reply in replies {
            self.add(reply);
        }
    }

    /// The one-line summary: `drill=NAME KEY=VALUE… sent=… accepted=… rejected={…}
    /// accepted_twice=… errors_5xx=…`.
    pub fn summary(&self, drill: &str, labels: &[(&str, String)], accepted_twice: usize) -> String {
        let mut line = format!("drill={drill}");
        for (name, value) in labels {
            line.push_str(&format!(" {name}={value}"));
        }
        let rejected: Vec<String> = self
            .rejected
            .iter()
            .map(|(reason, n)| format!("{reason}:{n}"))
            .collect();
        line.push_str(&format!(
            " sent={} accepted={} rejected={{{}}} accepted_twice={accepted_twice} errors_5xx={}",
            self.sent,
            self.accepted,
            rejected.join(","),
            self.errors_5xx
        ));
        line
    }

    /// Prints the summary on stdout (the drill scripts collect these lines) and asserts that
    /// nothing was accepted twice and no answer was unexpected.
    pub fn report(&self, drill: &str, labels: &[(&str, String)], accepted_twice: usize) {
        println!("{}", self.summary(drill, labels, accepted_twice));
        assert_eq!(accepted_twice, 0, "accepted twice");
        assert!(
            self.unexpected.is_empty(),
            "unexpected answers: {:?}",
            self.unexpected
        );
    }
}

/// Requests accepted twice: (key, nonce) delivered upstream more than once, plus every
/// request answered 200 in `first` and again in `replay`.
pub fn accepted_twice(
    upstream: &Upstream,
    first: &[(Prepared, Reply)],
    replay: &[(Prepared, Reply)],
) -> Vec<(String, u64)> {
    let mut twice: Vec<(String, u64)> = upstream
        .deliveries()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect();
    let before: std::collections::HashSet<(String, u64)> = first
        .iter()
        .filter(|(_, r)| r.accepted())
        .map(|(p, _)| (p.key.clone(), p.nonce))
        .collect();
    for (p, r) in replay {
        let id = (p.key.clone(), p.nonce);
        if r.accepted() && before.contains(&id) && !twice.contains(&id) {
            twice.push(id);
        }
    }
    twice
}

/// Waits (bounded, checking every few milliseconds) until `done` holds.
pub async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// SIGSTOP / SIGCONT of a server process
// ---------------------------------------------------------------------------------------------

/// The process listening on 127.0.0.1:`port` (found through `/proc/net/tcp`).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let wanted = format!(":{port:04X}");
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local_address, …, st (0A = LISTEN), …, inode.
        (fields.len() > 9 && fields[1].ends_with(&wanted) && fields[3] == "0A")
            .then(|| fields[9].to_owned())
    })?;
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|link| link.to_string_lossy() == target) {
                return Some(pid);
            }
        }
    }
    None
}

/// `(state, parent pid)` from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// `pid` and all its descendants.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                if let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>()
                    && stat(child).is_some_and(|(_, p)| p == parent)
                    && !all.contains(&child)
                {
                    all.push(child);
                }
            }
        }
        i += 1;
    }
    all
}

fn signal(pids: &[u32], sig: &str) {
    for pid in pids {
        let _ = Command::new("kill")
            .args([sig, &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A server frozen with SIGSTOP (the process listening on a port and every process under
/// it: PostgreSQL's backends too); SIGCONT when resumed or dropped.
#[derive(Debug)]
pub struct Paused {
    pids: Vec<u32>,
}

impl Paused {
    /// Stops the server on `port` and waits (bounded) until every one of its processes is
    /// stopped: from then on it accepts connections (the kernel does) but answers nothing.
    pub async fn pause(port: u16) -> Self {
        let root = pid_listening_on(port).unwrap_or_else(|| panic!("no process listens on {port}"));
        // The parent first, so it forks nothing new; then everything under it.
        signal(&[root], "-STOP");
        let pids = tree(root);
        signal(&pids, "-STOP");
        let paused = Self { pids };
        wait_for(
            "the store's processes stopped",
            Duration::from_secs(30),
            || {
                paused
                    .pids
                    .iter()
                    .all(|pid| stat(*pid).is_none_or(|(state, _)| state == 'T'))
            },
        )
        .await;
        paused
    }

    /// How many processes were stopped.
    pub fn processes(&self) -> usize {
        self.pids.len()
    }

    /// Leaves the processes as they are (they were killed: no SIGCONT to reused pids).
    pub fn forget(mut self) {
        self.pids.clear();
    }

    /// SIGCONT to every stopped process.
    pub fn resume(mut self) {
        signal(&self.pids, "-CONT");
        self.pids.clear();
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal(&self.pids, "-CONT");
    }
}

/// Starts one `wbauth serve` of a drill in `dir` (created), proxying to `upstream`, with `env`
/// (the stores), the admin token and short store timeouts: `op_timeout_ms` per operation,
/// 500 ms to connect. The drills' waits do not depend on them; they keep the drills quick.
pub fn start_instance(
    dir: &std::path::Path,
    upstream: &Upstream,
    env: &[(String, String)],
    op_timeout_ms: u32,
    name: &str,
) -> Gateway {
    std::fs::create_dir_all(dir).expect("instance dir");
    let config = write_config(dir, upstream.addr, "");
    let op_timeout = op_timeout_ms.to_string();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("WBAUTH_ADMIN_TOKEN", TOKEN));
    all.push(("WBAUTH_GATEWAY__STORE__OP_TIMEOUT_MS", &op_timeout));
    all.push(("WBAUTH_GATEWAY__STORE__CONNECT_TIMEOUT_MS", "500"));
    spawn_serve(dir, &config, &all, &format!("{name}.log"))
        .unwrap_or_else(|(status, err)| panic!("{name} exited {status}: {err}"))
}

/// Waits (bounded: 10,000 tries, 5 ms apart) until the gateway at `base` accepts a signed
/// request of `key` to `path`: it has learnt the key, from another instance's change
/// announcement say. Each try uses a fresh strict nonce.
pub async fn wait_until_known(base: &str, key: &str, secret: &str, path: &str) {
    for _ in 0..10_000 {
        let probe = Prepared::new(
            key,
            secret,
            path,
            crate::common::gateway::Gateway::nonce(),
            false,
        );
        if send(base, &probe).await.accepted() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{base} never learnt key {key}");
}
