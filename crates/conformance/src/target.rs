//! The server under test: where it is, the keys to use, and how fast the suite may go.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use whitebit_auth::time::{estimate_offset_ms, unix_ms};

use zeroize::Zeroizing;

use crate::error::ConformanceError;
use crate::http::{self, Answer, Request};

/// A key the suite signs with. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Credentials {
    /// The public key (`X-TXC-APIKEY`).
    pub key: String,
    secret: Zeroizing<String>,
}

impl Credentials {
    /// A key and its secret.
    #[must_use]
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            secret: Zeroizing::new(secret.into()),
        }
    }

    pub(crate) fn secret(&self) -> &[u8] {
        self.secret.as_bytes()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The server under test.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    host: String,
    /// The path prefix of the target URL (empty, or `/prefix` without a trailing slash).
    prefix: String,
    /// The key every case signs with; it must be allowed to call `path`.
    pub credentials: Credentials,
    /// A second key that may NOT call `path` (row 14); cases that need it are skipped without it.
    pub restricted: Option<Credentials>,
    /// A key the server has disabled (row 13); skipped without it.
    pub disabled: Option<Credentials>,
    /// A path (within the path rule) that no route of the server serves (the 404 row);
    /// skipped without it.
    pub unrouted_path: Option<String>,
    /// A private endpoint `credentials` may call and that answers 2xx once verified.
    pub path: String,
    /// A Fiat Gateway partner; the `fiat` group is skipped without one.
    pub partner: Option<Partner>,
}

/// A Fiat Gateway partner of the server, and the route its tokens are for. `Debug` never shows
/// the Enc Key.
#[derive(Clone)]
pub struct Partner {
    /// The Auth Key (`x-auth-key`).
    pub auth_key: String,
    enc_key: Zeroizing<String>,
    /// A Fiat Gateway route path that answers 2xx once the token passes.
    pub path: String,
}

impl Partner {
    /// A partner with its Auth Key and Enc Key, for the route `path`.
    #[must_use]
    pub fn new(
        auth_key: impl Into<String>,
        enc_key: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        Self {
            auth_key: auth_key.into(),
            enc_key: Zeroizing::new(enc_key.into()),
            path: path.into(),
        }
    }

    pub(crate) fn enc_key(&self) -> &str {
        &self.enc_key
    }
}

impl std::fmt::Debug for Partner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partner")
            .field("auth_key", &self.auth_key)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Parses `url` (`http://HOST:PORT[/PREFIX]`). A host outside the loopback range is refused
    /// unless `allow_remote`: the suite sends hundreds of requests, replay storms among them.
    ///
    /// # Errors
    /// [`ConformanceError::Usage`] for anything but a plain `http://` URL that resolves.
    pub fn parse(
        url: &str,
        credentials: Credentials,
        allow_remote: bool,
    ) -> Result<Self, ConformanceError> {
        let usage = |why: &str| {
            ConformanceError::Usage(format!(
                "--target {url:?}: {why} (expected http://HOST:PORT, e.g. http://127.0.0.1:8080)"
            ))
        };
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(usage(if url.starts_with("https://") {
                "https is not supported yet; run the suite against the plain-HTTP listener or a local TLS terminator"
            } else {
                "only http:// URLs are supported"
            }));
        };
        let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || authority.contains('@') {
            return Err(usage("no host, or user info in the URL"));
        }
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() && !authority.ends_with(']')
        }) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| usage(&format!("cannot resolve the host: {e}")))?
            .next()
            .ok_or_else(|| usage("the host resolves to no address"))?;
        if !allow_remote && !is_loopback(addr.ip()) {
            return Err(ConformanceError::Usage(format!(
                "--target {url}: {} is not a loopback address; the suite sends hundreds of \
                 requests and replay storms, so pass --allow-remote to run it against another host",
                addr.ip()
            )));
        }
        let prefix = prefix.trim_end_matches('/');
        Ok(Self {
            addr,
            host: authority.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("/{prefix}")
            },
            credentials,
            restricted: None,
            disabled: None,
            unrouted_path: None,
            path: DEFAULT_PATH.to_owned(),
            partner: None,
        })
    }

    /// The request target for `path` (the URL's prefix put in front).
    pub(crate) fn url_path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

/// The private endpoint the cases call unless told otherwise.
pub const DEFAULT_PATH: &str = "/api/v4/trade-account/balance";

/// The Fiat Gateway route the `fiat` group calls unless told otherwise.
pub const DEFAULT_FIAT_PATH: &str = "/api/v1/fiat/deposit";

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The connection to the target during a run: paced requests, the server's clock, nonces.
#[derive(Debug)]
pub(crate) struct Session<'a> {
    pub(crate) target: &'a Target,
    interval: Duration,
    next_start: Mutex<Instant>,
    /// Server time minus local time (ms), when the server tells its time.
    offset_ms: i64,
    /// Whether `offset_ms` was measured (`GET /api/v4/public/time` answered).
    pub(crate) clock_known: bool,
    last_nonce: Mutex<u64>,
    last_strict: Mutex<u64>,
}

/// How far ahead of the clock strict-mode nonces are: past every window nonce a server can
/// have accepted (±5 s), so the key's high-water mark never refuses them, also right after
/// another run.
const STRICT_LEAD_MS: u64 = 6_000;

impl<'a> Session<'a> {
    pub(crate) fn new(target: &'a Target, max_rps: u32) -> Self {
        let mut session = Self {
            target,
            interval: Duration::from_secs(1) / max_rps.max(1),
            next_start: Mutex::new(Instant::now()),
            offset_ms: 0,
            clock_known: false,
            last_nonce: Mutex::new(0),
            last_strict: Mutex::new(0),
        };
        session.measure_clock();
        session
    }

    /// Reads `GET /api/v4/public/time` (`{"time": SECONDS}`) when the server answers it.
    fn measure_clock(&mut self) {
        let before = unix_ms();
        let request = Request::get(self.target.url_path("/api/v4/public/time"));
        let Ok(answer) = self.send(&request) else {
            return;
        };
        let after = unix_ms();
        let seconds = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("time").and_then(serde_json::Value::as_u64));
        if let (200, Some(seconds)) = (answer.status, seconds) {
            // The server tells whole seconds, so the offset is rounded to whole seconds too:
            // a server on this machine's clock gets 0 run after run (a finer figure would
            // only be noise).
            let offset = estimate_offset_ms(seconds, before, after);
            self.offset_ms = (offset + offset.signum() * 500) / 1000 * 1000;
            self.clock_known = true;
        }
    }

    /// Now on the server's clock (or this machine's when the server does not tell).
    pub(crate) fn now_ms(&self) -> u64 {
        let local = i64::try_from(unix_ms()).unwrap_or(i64::MAX);
        u64::try_from(local.saturating_add(self.offset_ms)).unwrap_or(0)
    }

    /// A fresh window-mode nonce: `max(now, last + 1)`.
    pub(crate) fn next_nonce(&self) -> u64 {
        let mut last = self
            .last_nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = self.now_ms().max(*last + 1);
        *last
    }

    /// A fresh strict-mode nonce: above the clock by [`STRICT_LEAD_MS`] and above every nonce
    /// this run sent.
    pub(crate) fn next_strict_nonce(&self) -> u64 {
        let window = *self
            .last_nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut last = self
            .last_strict
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = (self.now_ms() + STRICT_LEAD_MS)
            .max(*last + 1)
            .max(window + 1);
        *last
    }

    /// Records a window nonce that was accepted out of turn (ahead of the clock): later window
    /// nonces are above it, so they stay unique.
    pub(crate) fn observe(&self, nonce: u64) {
        let mut last = self
            .last_nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = (*last).max(nonce);
    }

    /// Sends one request, no sooner than the rate limit allows.
    pub(crate) fn send(&self, request: &Request) -> Result<Answer, ConformanceError> {
        self.pace();
        http::send(self.target.addr, &self.target.host, request)
    }

    /// Sends `request` from `copies` threads at once (a replay storm), unpaced.
    pub(crate) fn storm(
        &self,
        request: &Request,
        copies: usize,
    ) -> Vec<Result<Answer, ConformanceError>> {
        self.pace();
        let barrier = std::sync::Barrier::new(copies);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..copies)
                .map(|_| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        http::send(self.target.addr, &self.target.host, request)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ConformanceError::Io("a storm thread panicked".into()))
                    })
                })
                .collect()
        })
    }

    fn pace(&self) {
        let wait = {
            let mut next = self
                .next_start
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + self.interval;
            start - now
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_plain_http_on_loopback_unless_allowed() {
        let creds = || Credentials::new("k", "s");
        let t = Target::parse("http://127.0.0.1:8080/", creds(), false).expect("loopback");
        assert_eq!((t.addr.port(), t.url_path("/x")), (8080, "/x".to_owned()));
        let t = Target::parse("http://127.0.0.1:9/gw/", creds(), false).expect("prefix");
        assert_eq!(t.url_path("/api/v4/x"), "/gw/api/v4/x");
        assert!(Target::parse("http://[::1]:8080", creds(), false).is_ok());
        for bad in [
            "https://127.0.0.1:1",
            "ftp://x",
            "http://",
            "http://u@127.0.0.1:1",
        ] {
            assert!(Target::parse(bad, creds(), false).is_err(), "{bad}");
        }
        let remote = Target::parse("http://192.0.2.1:80", creds(), false).expect_err("remote");
        assert!(remote.to_string().contains("--allow-remote"), "{remote}");
        assert!(Target::parse("http://192.0.2.1:80", creds(), true).is_ok());
    }

    #[test]
    fn the_secret_is_not_in_debug() {
        let shown = format!("{:?}", Credentials::new("public", "very-secret"));
        assert!(
            shown.contains("public") && !shown.contains("very-secret"),
            "{shown}"
        );
    }
}
