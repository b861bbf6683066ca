//! `wbauth bench`: the project's own load generator. Unlike wrk it signs every request during
//! the run (one cached keyed HMAC-SHA512 state per key, about 1 µs a request), keeps window
//! nonces within one key's ~1000 requests/s (`docs/design-decisions.md` 28) and reports its own CPU use:
//! a run where the generator was busier than 90 % is invalid (`docs/design-decisions.md` 34).
//!
//! Each connection is a keep-alive HTTP/1.1 connection (hyper's low-level client) driven as a
//! closed loop: one request in flight, the next one written as soon as the previous answer's
//! body has been read.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use whitebit_auth::headers;
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::{build_body, sign_body};
use whitebit_client::{NonceSource, unix_ms};
use zeroize::Zeroizing;

use super::print_json;
use crate::error::CliError;

/// The default `--body-extra`: makes the typical body about 120 bytes.
const DEFAULT_EXTRA: &str = r#"{"ticker":"BTC","market":"BTC_USDT"}"#;
/// The default `--duration`.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Time allowed to open one connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one request (write, answer, body); longer counts as a `timeout` error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed connection attempt before the next one.
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Linux clock ticks per second (`getconf CLK_TCK`), assumed rather than asked for.
const CLOCK_TICKS_PER_S: f64 = 100.0;
/// Above this share of its threads' CPU the generator, not the server, was measured.
const CPU_LIMIT: f64 = 0.9;
/// Window mode: above this rate per key, nonces run ahead of the clock (`docs/design-decisions.md` 28).
const WINDOW_RATE_PER_KEY: f64 = 900.0;

/// Load-tests a server with signed requests and reports throughput, latency percentiles,
/// status codes and the generator's own CPU use.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub(crate) struct BenchArgs {
    /// The target, http:// only; its path is the signed `request`, e.g.
    /// http://127.0.0.1:8080/api/v4/trade-account/balance.
    #[arg(value_name = "URL")]
    url: String,
    /// Keep-alive HTTP/1.1 connections, each a closed loop with one request in flight.
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=65_535))]
    connections: u32,
    /// How long to measure, e.g. 500ms, 10s, 2m [default: 10s].
    #[arg(long, value_name = "TIME", value_parser = parse_duration, conflicts_with = "requests")]
    duration: Option<Duration>,
    /// Measure exactly N requests instead of a time span.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Load sent before measuring (not counted), e.g. 0s, 500ms, 1s.
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// CSV file of keys, one `public_key,secret` a line (blank lines and # comments ignored).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["key", "secret"])]
    keys: Option<PathBuf>,
    /// One public API key [default: $WBAUTH_API_KEY].
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// The secret of --key [default: $WBAUTH_API_SECRET]; never printed.
    #[arg(long, value_name = "SECRET", value_parser = parse_secret)]
    secret: Option<Secret>,
    /// Nonce mode: window (nonceWindow: true, keys shared by connections) or strict (one key
    /// per connection, nonces in order).
    #[arg(long, value_enum, default_value_t = Mode::Window)]
    mode: Mode,
    /// Send the same bodies unsigned (no X-TXC-* headers): for an echo server or nginx baseline.
    #[arg(long, conflicts_with_all = ["keys", "key", "secret"])]
    plain: bool,
    /// Extra parameters (a JSON object) written into the body after request, nonce and
    /// nonceWindow.
    #[arg(long, value_name = "JSON", default_value = DEFAULT_EXTRA)]
    body_extra: String,
    /// Worker threads of the generator (1: a single-threaded runtime). The CPU limit of a
    /// valid run is 90 % of these threads.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: u16,
    /// Print one JSON object with the results instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress line on standard error.
    #[arg(long)]
    quiet: bool,
}

/// Printed after `wbauth bench --help`.
const AFTER_HELP: &str = "\
Keys: in window mode the connections share the keys round-robin and each key's nonces are
max(now_ms, last + 1), so one key sustains about 1000 requests/s: give at least rate/1000 keys
(a warning says when a run needed more). In strict mode every connection owns one key (so its
nonces arrive in order), nonces start at unix_ms * 1000 and count up; give at least as many
keys as connections.

Latency runs from just before the request is written to the end of the answer's body; signing
happens before that. The generator's CPU is read from /proc/self/stat (100 clock ticks a second
assumed) over the measured phase; a run where it used more than 90 % of its --threads is
marked INVALID: the generator, not the server, was measured. Non-2xx answers are counted, not
fatal: the exit status is 0 unless the arguments are wrong or nothing could connect.";

/// A secret from the command line: kept in a wiped buffer, never shown by `Debug`.
#[derive(Clone)]
pub(crate) struct Secret(Zeroizing<String>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// clap's parser for `--secret`.
fn parse_secret(text: &str) -> Result<Secret, String> {
    if text.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(Secret(Zeroizing::new(text.to_owned())))
}

/// How nonces are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `nonceWindow: true`: ±5 s around the server's clock, unique per key.
    Window,
    /// No `nonceWindow`: strictly increasing per key.
    Strict,
}

impl Mode {
    /// The name shown in reports.
    const fn name(self) -> &'static str {
        match self {
            Mode::Window => "window",
            Mode::Strict => "strict",
        }
    }
}

/// Parses `500ms`, `10s`, `2m`, `1h` (a whole number and a unit).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let value: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration: give a whole number and a unit, e.g. 500ms, 10s, 2m")
    })?;
    let scale_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => {
            return Err(format!(
                "{text:?} needs a unit: ms, s, m or h (e.g. {text}s)"
            ));
        }
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    value
        .checked_mul(scale_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Parses a keys file: `public_key,secret` a line; blank lines and `#` comments ignored. The
/// error names the line, never the secret.
fn parse_keys_csv(text: &str) -> Result<Vec<(String, Secret)>, String> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let number = index + 1;
        let Some((public, secret)) = line.split_once(',') else {
            return Err(format!(
                "line {number}: expected `public_key,secret` (no comma found)"
            ));
        };
        let (public, secret) = (public.trim(), secret.trim());
        if public.is_empty() {
            return Err(format!("line {number}: the public key is empty"));
        }
        if secret.is_empty() {
            return Err(format!("line {number}: the secret is empty"));
        }
        if keys
            .iter()
            .any(|(known, _): &(String, Secret)| known == public)
        {
            return Err(format!("line {number}: key {public:?} is listed twice"));
        }
        keys.push((public.to_owned(), Secret(Zeroizing::new(secret.to_owned()))));
    }
    Ok(keys)
}

/// The target of the run.
#[derive(Debug)]
struct Target {
    /// The URL as given (without secrets: URLs with user info are refused).
    url: String,
    /// Host name or address to connect to (no brackets).
    host: String,
    /// TCP port.
    port: u16,
    /// The `Host` header.
    host_header: HeaderValue,
    /// The request target (origin form: path and query).
    origin: Uri,
    /// The signed `request`: the path.
    path: String,
}

/// Parses an `http://HOST:PORT/path` URL.
fn parse_target(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https:// is not supported: bench speaks plain HTTP/1.1 (point it at the \
                 listener behind the TLS terminator)"
                    .into(),
            );
        }
        _ => {
            return Err(format!(
                "the URL must start with http://, e.g. http://127.0.0.1:8080/api/v4/trade-account/balance (got {url:?})"
            ));
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("the URL {url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err("the URL may not carry user information (user@host)".into());
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("the URL {url:?} has no host"));
    }
    let origin: Uri = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e| format!("invalid path in {url:?}: {e}"))?;
    let host_header = HeaderValue::from_str(authority.as_str())
        .map_err(|e| format!("invalid host in {url:?}: {e}"))?;
    Ok(Target {
        url: url.to_owned(),
        host: host.to_owned(),
        port: authority.port_u16().unwrap_or(80),
        host_header,
        origin,
        path: uri.path().to_owned(),
    })
}

/// One API key with its cached keyed HMAC state and its window-mode nonce source.
struct Signer {
    api_key: HeaderValue,
    mac: HmacSha512Key,
    nonces: NonceSource,
}

/// How the measured phase ends.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// After this long (requests in flight at the end still count).
    After(Duration),
    /// After exactly this many requests.
    Requests(u64),
}

/// Everything the load thread needs, checked before anything is sent.
struct Plan {
    target: Target,
    connections: usize,
    threads: usize,
    stop: Stop,
    warmup: Duration,
    mode: Mode,
    extra: Map<String, Value>,
    signers: Vec<Arc<Signer>>,
    progress: bool,
}

impl Plan {
    /// Checks the arguments and loads the keys.
    fn from_args(args: &BenchArgs) -> Result<Self, CliError> {
        let target = parse_target(&args.url).map_err(CliError::Usage)?;
        let extra = match serde_json::from_str::<Value>(&args.body_extra) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(CliError::Usage(
                    "--body-extra must be a JSON object, e.g. {\"ticker\":\"BTC\"}".into(),
                ));
            }
            Err(e) => return Err(CliError::Usage(format!("--body-extra: invalid JSON: {e}"))),
        };
        // Refuses reserved names (request, nonce, nonceWindow) once, up front.
        build_body(&target.path, 0, Some(true), &extra)
            .map_err(|e| CliError::Usage(format!("--body-extra: {e}")))?;
        let connections = usize::try_from(args.connections).unwrap_or(usize::MAX);
        let signers = if args.plain {
            Vec::new()
        } else {
            load_keys(args)?
                .into_iter()
                .map(|(public, secret)| {
                    let api_key = HeaderValue::from_str(&public).map_err(|_| {
                        CliError::Usage(format!("API key {public:?} cannot be sent in a header"))
                    })?;
                    Ok(Arc::new(Signer {
                        api_key,
                        mac: HmacSha512Key::new(secret.0.as_bytes()),
                        nonces: NonceSource::new(),
                    }))
                })
                .collect::<Result<Vec<_>, CliError>>()?
        };
        if args.mode == Mode::Strict && !args.plain && signers.len() < connections {
            return Err(CliError::Usage(format!(
                "strict mode needs one key per connection (nonces of a key must arrive in order): \
                 {} connection(s) but {} key(s); give more keys with --keys FILE or lower --connections",
                connections,
                signers.len()
            )));
        }
        let stop = match (args.requests, args.duration) {
            (Some(n), _) => Stop::Requests(n),
            (None, Some(d)) if d.is_zero() => {
                return Err(CliError::Usage("--duration must be above 0".into()));
            }
            (None, d) => Stop::After(d.unwrap_or(DEFAULT_DURATION)),
        };
        Ok(Self {
            target,
            connections,
            threads: usize::from(args.threads),
            stop,
            warmup: args.warmup,
            mode: args.mode,
            extra,
            signers,
            progress: !args.json && !args.quiet,
        })
    }
}

/// The keys from `--keys`, `--key`/`--secret` or the environment.
fn load_keys(args: &BenchArgs) -> Result<Vec<(String, Secret)>, CliError> {
    if let Some(path) = &args.keys {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let keys = parse_keys_csv(&text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        if keys.is_empty() {
            return Err(CliError::Usage(format!("{}: no keys", path.display())));
        }
        return Ok(keys);
    }
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let key = args.key.clone().or_else(|| from_env("WBAUTH_API_KEY"));
    let secret = args
        .secret
        .clone()
        .or_else(|| from_env("WBAUTH_API_SECRET").map(|s| Secret(Zeroizing::new(s))));
    match (key, secret) {
        (Some(key), Some(secret)) => Ok(vec![(key, secret)]),
        (Some(_), None) => Err(CliError::Usage(
            "no secret for the key: give --secret or set WBAUTH_API_SECRET".into(),
        )),
        (None, Some(_)) => Err(CliError::Usage(
            "a secret but no key: give --key or set WBAUTH_API_KEY".into(),
        )),
        (None, None) => Err(CliError::Usage(
            "no API key: give --keys FILE, --key and --secret, or set WBAUTH_API_KEY and \
             WBAUTH_API_SECRET (or --plain for unsigned requests)"
                .into(),
        )),
    }
}

/// Runs the command: the load runs on its own runtime in its own thread, so the number of
/// threads whose CPU is measured is exactly `--threads`.
pub(crate) async fn run(args: &BenchArgs) -> Result<(), CliError> {
    let plan = Plan::from_args(args)?;
    let json_output = args.json;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wbauth-bench".into())
        .spawn(move || {
            let runtime = if plan.threads == 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(plan.threads)
                    .thread_name("wbauth-bench")
                    .enable_all()
                    .build()
            };
            let result = match runtime {
                Ok(runtime) => runtime.block_on(drive(plan)),
                Err(e) => Err(CliError::Config(format!(
                    "cannot start the load runtime: {e}"
                ))),
            };
            let _ = tx.send(result);
        })
        .map_err(|e| CliError::Config(format!("cannot start the load thread: {e}")))?;
    let report = rx
        .await
        .map_err(|_| CliError::Config("the load thread stopped unexpectedly".into()))??;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if json_output {
        print_json(&report.to_json());
    } else {
        print!("{}", report.table());
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// Phase of the run, shared with the connections.
const WARMUP: u8 = 0;
/// Requests started in this phase are counted.
const MEASURE: u8 = 1;
/// No more requests.
const DONE: u8 = 2;

/// State shared by the connection tasks.
struct Load {
    addr: SocketAddr,
    target: Target,
    window: bool,
    extra: Map<String, Value>,
    signers: Vec<Arc<Signer>>,
    /// Window nonces of unsigned runs.
    plain_nonces: NonceSource,
    /// First strict nonce of every key.
    strict_base: u64,
    api_key_header: HeaderName,
    payload_header: HeaderName,
    signature_header: HeaderName,
    phase: AtomicU8,
    /// Requests left to start (`--requests`), `None` for a timed run.
    tickets: Option<AtomicU64>,
    /// Measured requests finished so far (answers and errors).
    finished: AtomicU64,
    /// Measured answers outside 2xx and transport errors so far.
    not_ok: AtomicU64,
}

impl Load {
    /// Whether a connection may start another request, and whether it counts.
    fn next_ticket(&self) -> Option<bool> {
        match self.phase.load(Ordering::Relaxed) {
            WARMUP => Some(false),
            MEASURE => match &self.tickets {
                None => Some(true),
                Some(left) => left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                    .then_some(true),
            },
            _ => None,
        }
    }

    /// The next request of a connection: body built and signed now, exactly these bytes sent.
    fn request(
        &self,
        signer: Option<&Signer>,
        strict_next: &mut u64,
    ) -> Result<Request<Full<Bytes>>, &'static str> {
        let nonce = if self.window {
            let now = unix_ms();
            signer
                .map_or(&self.plain_nonces, |s| &s.nonces)
                .next_at(now)
        } else {
            let nonce = *strict_next;
            *strict_next = strict_next.saturating_add(1);
            nonce
        };
        let body = build_body(
            &self.target.path,
            nonce,
            self.window.then_some(true),
            &self.extra,
        )
        .map_err(|_| "build")?;
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.target.origin.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.target.host_header.clone());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(headers::JSON_MEDIA_TYPE),
        );
        let body = match signer {
            None => body,
            Some(signer) => {
                let signed = sign_body(body, &signer.mac);
                headers.insert(self.api_key_header.clone(), signer.api_key.clone());
                headers.insert(
                    self.payload_header.clone(),
                    HeaderValue::try_from(signed.payload).map_err(|_| "build")?,
                );
                headers.insert(
                    self.signature_header.clone(),
                    HeaderValue::try_from(signed.signature).map_err(|_| "build")?,
                );
                signed.body
            }
        };
        *request.body_mut() = Full::new(Bytes::from(body));
        Ok(request)
    }

    /// Counts a finished measured request for the progress line.
    fn tally(&self, ok: bool) {
        self.finished.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.not_ok.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What one connection measured.
#[derive(Default)]
struct ConnStats {
    latencies_us: Vec<u32>,
    status: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    reconnects: u64,
}

/// One open connection: the request half, and the connection itself, which must be polled for
/// anything to move. Both are polled in the connection's own task (no second task per
/// connection, no cross-task wake-up per request: the generator stays cheap).
struct Link {
    sender: SendRequest<Full<Bytes>>,
    driver: Driver,
}

/// The connection future of a [`Link`], and whether it completed (the connection closed).
struct Driver {
    connection: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    closed: bool,
}

impl Driver {
    /// Runs `work` (which uses the link's sender) while driving the connection.
    async fn run<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                () = &mut self.connection, if !self.closed => self.closed = true,
                out = &mut work => return out,
            }
        }
    }
}

/// Opens one connection: TCP (no Nagle) and an HTTP/1.1 handshake.
async fn connect(addr: SocketAddr) -> Result<Link, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    Ok(Link {
        sender,
        driver: Driver {
            connection: Box::pin(async move {
                let _ = connection.await;
            }),
            closed: false,
        },
    })
}

/// The keys (indexes into `keys` signers) connection `index` of `connections` takes in turn:
/// with more keys than connections, `index`, `index + connections`, … (every key used by
/// exactly one connection); otherwise the one key `index % keys` (none without keys).
fn keys_of_connection(
    keys: usize,
    connections: usize,
    index: usize,
) -> impl Iterator<Item = usize> {
    let (start, step, count) = if keys > connections {
        (index, connections.max(1), keys)
    } else if keys == 0 {
        (0, 1, 0)
    } else {
        (index % keys, keys, index % keys + 1)
    };
    (start..count).step_by(step)
}

/// One connection's closed loop. With several `signers` it takes them in turn, one request
/// each, so that every key given is in use and carries an equal share of the load.
async fn connection_loop(
    load: Arc<Load>,
    signers: Vec<Arc<Signer>>,
    mut sender: Option<Link>,
) -> ConnStats {
    let mut stats = ConnStats::default();
    // Strict mode: each key's next nonce (a key is used by this connection only).
    let mut strict_next = vec![load.strict_base; signers.len().max(1)];
    let mut turn = 0usize;
    let mut had_connection = sender.is_some();
    while let Some(counted) = load.next_ticket() {
        // A live, idle connection, or a new one.
        let alive = match sender.as_mut() {
            Some(Link { sender, driver }) if !driver.closed => {
                driver.run(sender.ready()).await.is_ok()
            }
            _ => false,
        };
        if !alive {
            sender = None;
            match connect(load.addr).await {
                Ok(s) => {
                    if had_connection && counted {
                        stats.reconnects += 1;
                    }
                    had_connection = true;
                    sender = Some(s);
                }
                Err(_) => {
                    if counted {
                        *stats.errors.entry("connect").or_default() += 1;
                        load.tally(false);
                    }
                    tokio::time::sleep(CONNECT_BACKOFF).await;
                    continue;
                }
            }
        }
        let Some(Link { sender: s, driver }) = sender.as_mut() else {
            continue;
        };
        turn = (turn + 1) % strict_next.len();
        let signer = signers.get(turn).map(Arc::as_ref);
        let Some(next) = strict_next.get_mut(turn) else {
            continue;
        };
        let request = match load.request(signer, next) {
            Ok(request) => request,
            Err(kind) => {
                if counted {
                    *stats.errors.entry(kind).or_default() += 1;
                    load.tally(false);
                }
                continue;
            }
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            REQUEST_TIMEOUT,
            driver.run(async {
                let response = s.send_request(request).await.map_err(|_| "send")?;
                let status = response.status().as_u16();
                let mut body = response.into_body();
                while let Some(frame) = body.frame().await {
                    frame.map_err(|_| "body")?;
                }
                Ok::<u16, &'static str>(status)
            }),
        )
        .await
        .unwrap_or(Err("timeout"));
        let elapsed = started.elapsed();
        match outcome {
            Ok(status) => {
                if counted {
                    stats
                        .latencies_us
                        .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                    *stats.status.entry(status).or_default() += 1;
                    load.tally((200..300).contains(&status));
                }
            }
            Err(kind) => {
                // The connection is in an unknown state: start a new one.
                sender = None;
                if counted {
                    *stats.errors.entry(kind).or_default() += 1;
                    load.tally(false);
                }
            }
        }
    }
    stats
}

/// Runs the whole load: connect, warm up, measure, collect.
async fn drive(plan: Plan) -> Result<Report, CliError> {
    let Plan {
        target,
        connections,
        threads,
        stop,
        warmup,
        mode,
        extra,
        signers,
        progress,
    } = plan;
    let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| CliError::Unreachable(format!("cannot resolve {}: {e}", target.host)))?
        .next()
        .ok_or_else(|| CliError::Unreachable(format!("{} resolves to no address", target.host)))?;

    // Every connection is opened before the clock starts.
    let mut opening = tokio::task::JoinSet::new();
    for index in 0..connections {
        opening.spawn(async move { (index, connect(addr).await) });
    }
    let mut senders: Vec<Option<Link>> = Vec::new();
    senders.resize_with(connections, || None);
    let mut last_error = None;
    while let Some(joined) = opening.join_next().await {
        match joined {
            Ok((index, Ok(sender))) => {
                if let Some(slot) = senders.get_mut(index) {
                    *slot = Some(sender);
                }
            }
            Ok((_, Err(e))) => last_error = Some(e),
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    let opened = senders.iter().filter(|s| s.is_some()).count();
    if opened == 0 {
        return Err(CliError::Unreachable(format!(
            "nothing could connect: {}",
            last_error.unwrap_or_else(|| "no connection".into())
        )));
    }
    if let Some(e) = &last_error {
        eprintln!(
            "warning: {} of {connections} connection(s) failed to open ({e}); they keep retrying",
            connections - opened
        );
    }

    let window = mode == Mode::Window;
    let keys_given = signers.len();
    let load = Arc::new(Load {
        addr,
        target,
        window,
        extra,
        signers,
        plain_nonces: NonceSource::new(),
        strict_base: unix_ms().saturating_mul(1000),
        // In the lowercase form HTTP/1 sends.
        api_key_header: HeaderName::from_static(headers::API_KEY_LOWERCASE),
        payload_header: HeaderName::from_static(headers::PAYLOAD_LOWERCASE),
        signature_header: HeaderName::from_static(headers::SIGNATURE_LOWERCASE),
        phase: AtomicU8::new(if warmup.is_zero() { MEASURE } else { WARMUP }),
        tickets: match stop {
            Stop::Requests(n) => Some(AtomicU64::new(n)),
            Stop::After(_) => None,
        },
        finished: AtomicU64::new(0),
        not_ok: AtomicU64::new(0),
    });

    let mut start = (Instant::now(), cpu_ticks());
    let mut tasks = tokio::task::JoinSet::new();
    for (index, sender) in senders.into_iter().enumerate() {
        // More keys than connections: connection i takes keys i, i + C, i + 2C, … in turn;
        // fewer: connections share keys (window mode only; strict mode needs one per
        // connection, checked when the plan is made).
        let signers: Vec<Arc<Signer>> = keys_of_connection(load.signers.len(), connections, index)
            .filter_map(|k| load.signers.get(k).cloned())
            .collect();
        tasks.spawn(connection_loop(load.clone(), signers, sender));
    }
    let mut ticker = Ticker::new(progress);
    if !warmup.is_zero() {
        let until = Instant::now() + warmup;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                () = ticker.wait() => ticker.warmup(until),
            }
        }
        start = (Instant::now(), cpu_ticks());
        load.phase.store(MEASURE, Ordering::Relaxed);
    }
    ticker.start(start.0);

    let deadline = match stop {
        Stop::After(d) => Some(start.0 + d),
        Stop::Requests(_) => None,
    };
    let sleep = tokio::time::sleep_until(deadline.unwrap_or(start.0));
    tokio::pin!(sleep);
    let mut stopped = deadline.is_none();
    let mut results = Vec::with_capacity(connections);
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(stats)) => results.push(stats),
                Some(Err(_)) => {}
                None => break,
            },
            () = &mut sleep, if !stopped => {
                stopped = true;
                load.phase.store(DONE, Ordering::Relaxed);
            }
            () = ticker.wait() => ticker.measure(&load),
        }
    }
    let wall = start.0.elapsed();
    let cpu_end = cpu_ticks();
    ticker.finish();

    let cpu_seconds = match (start.1, cpu_end) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / CLOCK_TICKS_PER_S),
        _ => None,
    };
    Ok(Report::collect(
        &load.target.url,
        mode,
        keys_given,
        // Every key given is in use (taken in turn when there are more keys than connections).
        keys_given,
        connections,
        threads,
        warmup,
        wall,
        cpu_seconds,
        results,
    ))
}

/// The once-a-second progress line on standard error.
struct Ticker {
    interval: Option<tokio::time::Interval>,
    started: Instant,
    last: (Instant, u64),
    printed: bool,
}

impl Ticker {
    /// A ticker that prints only when `enabled`.
    fn new(enabled: bool) -> Self {
        let now = Instant::now();
        let interval = enabled.then(|| {
            let mut i =
                tokio::time::interval_at(now + Duration::from_secs(1), Duration::from_secs(1));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        Self {
            interval,
            started: now,
            last: (now, 0),
            printed: false,
        }
    }

    /// The next tick (never, when disabled).
    async fn wait(&mut self) {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// The measured phase starts now.
    fn start(&mut self, now: Instant) {
        self.started = now;
        self.last = (now, 0);
    }

    /// A line during the warmup.
    fn warmup(&mut self, until: Instant) {
        let left = until
            .saturating_duration_since(Instant::now())
            .as_secs_f64();
        if left >= 0.05 {
            self.print(&format!("warming up, {left:.1} s left"));
        }
    }

    /// A line during the measured phase.
    fn measure(&mut self, load: &Load) {
        let now = Instant::now();
        let finished = load.finished.load(Ordering::Relaxed);
        let not_ok = load.not_ok.load(Ordering::Relaxed);
        let span = now.duration_since(self.last.0).as_secs_f64();
        let rate = if span > 0.0 {
            finished.saturating_sub(self.last.1) as f64 / span
        } else {
            0.0
        };
        self.last = (now, finished);
        let elapsed = now.duration_since(self.started).as_secs_f64();
        self.print(&format!(
            "{elapsed:6.1} s  {finished:>10} requests  {rate:>9.0} req/s  {not_ok} non-2xx/errors"
        ));
    }

    fn print(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line:<72}");
        let _ = err.flush();
        self.printed = true;
    }

    /// Ends the progress line.
    fn finish(&mut self) {
        if self.printed {
            eprintln!();
        }
    }
}

/// CPU time of this process so far (user + system), in clock ticks, from `/proc/self/stat`;
/// `None` where that file does not exist.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_ticks(&stat)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

/// Latency percentiles in µs (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Percentiles {
    p50: u32,
    p90: u32,
    p99: u32,
    max: u32,
    mean: u32,
}

impl Percentiles {
    /// From sorted samples; `None` when there are none.
    fn of_sorted(sorted: &[u32]) -> Option<Self> {
        let max = *sorted.last()?;
        let rank = |per_mille: usize| {
            let index = (sorted.len() * per_mille).div_ceil(1000).max(1) - 1;
            sorted.get(index).copied().unwrap_or(max)
        };
        let sum: u64 = sorted.iter().map(|&v| u64::from(v)).sum();
        let mean = u32::try_from(sum / sorted.len() as u64).unwrap_or(u32::MAX);
        Some(Self {
            p50: rank(500),
            p90: rank(900),
            p99: rank(990),
            max,
            mean,
        })
    }
}

/// The results of a run.
#[derive(Debug)]
struct Report {
    url: String,
    mode: Mode,
    signed: bool,
    keys_given: usize,
    keys_used: usize,
    connections: usize,
    threads: usize,
    warmup: Duration,
    wall: Duration,
    /// Answers received (any status).
    responses: u64,
    /// Requests that got no answer.
    transport_errors: u64,
    latency: Option<Percentiles>,
    status: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    reconnects: u64,
    cpu_seconds: Option<f64>,
    warnings: Vec<String>,
}

impl Report {
    /// Merges the connections' results.
    #[allow(clippy::too_many_arguments)]
    fn collect(
        url: &str,
        mode: Mode,
        keys_given: usize,
        keys_used: usize,
        connections: usize,
        threads: usize,
        warmup: Duration,
        wall: Duration,
        cpu_seconds: Option<f64>,
        results: Vec<ConnStats>,
    ) -> Self {
        let mut latencies = Vec::with_capacity(results.iter().map(|r| r.latencies_us.len()).sum());
        let mut status = BTreeMap::new();
        let mut errors = BTreeMap::new();
        let mut reconnects = 0;
        for r in results {
            latencies.extend_from_slice(&r.latencies_us);
            for (code, n) in r.status {
                *status.entry(code).or_default() += n;
            }
            for (kind, n) in r.errors {
                *errors.entry(kind).or_default() += n;
            }
            reconnects += r.reconnects;
        }
        latencies.sort_unstable();
        let mut report = Self {
            url: url.to_owned(),
            mode,
            signed: keys_given > 0,
            keys_given,
            keys_used,
            connections,
            threads,
            warmup,
            wall,
            responses: latencies.len() as u64,
            transport_errors: errors.values().sum(),
            latency: Percentiles::of_sorted(&latencies),
            status,
            errors,
            reconnects,
            cpu_seconds,
            warnings: Vec::new(),
        };
        if report.signed && mode == Mode::Window {
            let per_key = report.per_key_rps();
            if per_key > WINDOW_RATE_PER_KEY {
                let needed = (report.rps() / WINDOW_RATE_PER_KEY).ceil();
                report.warnings.push(format!(
                    "window mode: {per_key:.0} requests/s per key is above ~{WINDOW_RATE_PER_KEY:.0}: \
                     one key sustains about 1000/s before its nonces run out of the ±5 s window; \
                     give at least {needed:.0} keys with --keys"
                ));
            }
        }
        if report.cpu_seconds.is_some() && report.wall < Duration::from_secs(1) {
            report.warnings.push(format!(
                "the measured phase lasted {:.2} s: the CPU figure counts 10 ms ticks and is \
                 coarse; measure at least a few seconds",
                report.wall.as_secs_f64()
            ));
        }
        if report.cpu_seconds.is_none() {
            report
                .warnings
                .push("the generator's CPU use is unknown (no /proc/self/stat)".into());
        } else if !report.valid() {
            report.warnings.push(format!(
                "INVALID run: the generator used {:.0} % of its {} thread(s) (limit {:.0} %): it, not \
                 the server, was measured; use more --threads or a faster machine for the generator",
                report.cpu_fraction().unwrap_or(0.0) * 100.0,
                report.threads,
                CPU_LIMIT * 100.0
            ));
        }
        report
    }

    /// Answers per second over the measured phase.
    fn rps(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.responses as f64 / secs
        } else {
            0.0
        }
    }

    /// Answers per second per key in use.
    fn per_key_rps(&self) -> f64 {
        if self.keys_used == 0 {
            0.0
        } else {
            self.rps() / self.keys_used as f64
        }
    }

    /// CPU seconds per wall second: 1.0 is one core fully busy.
    fn cpu_cores(&self) -> Option<f64> {
        let secs = self.wall.as_secs_f64();
        self.cpu_seconds
            .map(|cpu| if secs > 0.0 { cpu / secs } else { 0.0 })
    }

    /// CPU use as a share of the generator's threads.
    fn cpu_fraction(&self) -> Option<f64> {
        self.cpu_cores().map(|c| c / self.threads.max(1) as f64)
    }

    /// A run is valid unless the generator was over 90 % busy.
    fn valid(&self) -> bool {
        self.cpu_fraction().is_none_or(|f| f <= CPU_LIMIT)
    }

    /// The JSON form (`--json`).
    fn to_json(&self) -> Value {
        let status: Map<String, Value> = self
            .status
            .iter()
            .map(|(code, n)| (code.to_string(), json!(n)))
            .collect();
        let errors: Map<String, Value> = self
            .errors
            .iter()
            .map(|(kind, n)| ((*kind).to_owned(), json!(n)))
            .collect();
        let latency = self.latency.map_or(
            Value::Null,
            |l| json!({"p50": l.p50, "p90": l.p90, "p99": l.p99, "max": l.max, "mean": l.mean}),
        );
        json!({
            "url": self.url,
            "mode": self.mode.name(),
            "signed": self.signed,
            "keys": self.keys_given,
            "keys_used": self.keys_used,
            "connections": self.connections,
            "threads": self.threads,
            "warmup_s": self.warmup.as_secs_f64(),
            "duration_s": self.wall.as_secs_f64(),
            "requests": self.responses + self.transport_errors,
            "responses": self.responses,
            "rps": self.rps(),
            "rps_per_key": if self.signed { json!(self.per_key_rps()) } else { Value::Null },
            "latency_us": latency,
            "status": status,
            "transport_errors": self.transport_errors,
            "errors": errors,
            "reconnects": self.reconnects,
            "cpu": {
                "seconds": self.cpu_seconds,
                "cores": self.cpu_cores(),
                "fraction": self.cpu_fraction(),
                "limit": CPU_LIMIT,
                "clock_ticks_per_s": CLOCK_TICKS_PER_S,
            },
            "valid": self.valid(),
            "warnings": self.warnings,
        })
    }

    /// The human form.
    fn table(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            out.push_str(&format!("{label:<12}{value}\n"));
        };
        line("target", self.url.clone());
        let keys = if !self.signed {
            "unsigned (--plain)".to_owned()
        } else if self.keys_used < self.keys_given {
            format!(
                "signed, {} keys ({} in use), {:.0} req/s per key",
                self.keys_given,
                self.keys_used,
                self.per_key_rps()
            )
        } else {
            format!(
                "signed, {} key(s), {:.0} req/s per key",
                self.keys_given,
                self.per_key_rps()
            )
        };
        line("mode", format!("{}, {keys}", self.mode.name()));
        line(
            "load",
            format!(
                "{} connection(s) on {} thread(s), warmup {:.1} s",
                self.connections,
                self.threads,
                self.warmup.as_secs_f64()
            ),
        );
        line(
            "requests",
            format!(
                "{} in {:.3} s = {:.0} req/s",
                self.responses + self.transport_errors,
                self.wall.as_secs_f64(),
                self.rps()
            ),
        );
        line(
            "latency",
            self.latency.map_or_else(
                || "no answers".to_owned(),
                |l| {
                    format!(
                        "p50 {} µs  p90 {} µs  p99 {} µs  max {} µs  (mean {} µs)",
                        l.p50, l.p90, l.p99, l.max, l.mean
                    )
                },
            ),
        );
        let status = if self.status.is_empty() {
            "none".to_owned()
        } else {
            self.status
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        line("status", status);
        let errors = if self.errors.is_empty() {
            "0".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(kind, n)| format!("{kind}: {n}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        line("errors", errors);
        line("reconnects", self.reconnects.to_string());
        let cpu = match (self.cpu_seconds, self.cpu_cores(), self.cpu_fraction()) {
            (Some(secs), Some(cores), Some(fraction)) => format!(
                "{secs:.2} s CPU = {:.0} % of one core, {:.2} of {} thread(s){}",
                cores * 100.0,
                fraction,
                self.threads,
                if self.valid() {
                    "  (valid)".to_owned()
                } else {
                    format!("  INVALID: over {:.0} %", CPU_LIMIT * 100.0)
                }
            ),
            _ => "unknown".to_owned(),
        };
        line("generator", cpu);
        out
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_key_is_taken_by_exactly_one_connection() {
        for (keys, connections) in [
            (256, 32),
            (33, 32),
            (7, 3),
            (32, 32),
            (5, 8),
            (1, 4),
            (0, 4),
        ] {
            let mut seen = vec![0u32; keys];
            for index in 0..connections {
                let mine: Vec<usize> = keys_of_connection(keys, connections, index).collect();
                if keys > 0 {
                    assert!(!mine.is_empty(), "{keys} keys, {connections} connections");
                }
                for k in mine {
                    seen[k] += 1;
                }
            }
            if keys > connections {
                assert!(
                    seen.iter().all(|&n| n == 1),
                    "{keys}/{connections}: {seen:?}"
                );
            } else {
                // Fewer keys than connections: shared, every key in use.
                assert!(
                    seen.iter().all(|&n| n >= 1),
                    "{keys}/{connections}: {seen:?}"
                );
            }
        }
    }

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
        for bad in [
            "",
            "10",
            "s",
            "1.5s",
            "-1s",
            "10 s",
            "5x",
            "1sm",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(
            parse_duration("10")
                .err()
                .is_some_and(|e| e.contains("unit"))
        );
    }

    #[test]
    fn keys_csv() {
        let text = "# bench keys\n\nkey-a,secret-a\n  key-b , secret-b  \n# another comment\nkey-c,sec,ret\n";
        let keys = parse_keys_csv(text).unwrap_or_default();
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["key-a", "key-b", "key-c"]);
        let secrets: Vec<&str> = keys.iter().map(|(_, s)| s.0.as_str()).collect();
        assert_eq!(secrets, ["secret-a", "secret-b", "sec,ret"]);
        assert_eq!(parse_keys_csv("# nothing\n\n").map(|k| k.len()), Ok(0));
    }

    #[test]
    fn keys_csv_errors_name_the_line_not_the_secret() {
        let err = parse_keys_csv("a,b\nno-comma-top-secret\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("top-secret"), "{err}");
        assert!(parse_keys_csv(",secret").is_err());
        assert!(parse_keys_csv("key,").is_err());
        let dup = parse_keys_csv("k,s1\nk,s2").err().unwrap_or_default();
        assert!(dup.contains("twice") && !dup.contains("s2"), "{dup}");
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = parse_secret("hunter2")
            .map(|s| format!("{s:?}"))
            .unwrap_or_default();
        assert_eq!(secret, "Secret(<redacted>)");
    }

    #[test]
    fn targets() {
        let t = parse_target("http://127.0.0.1:8080/api/v4/trade-account/balance");
        let t = t
            .as_ref()
            .map(|t| (t.host.as_str(), t.port, t.path.as_str()));
        assert_eq!(t, Ok(("127.0.0.1", 8080, "/api/v4/trade-account/balance")));
        let t = parse_target("http://[::1]/x?y=1");
        let t = t.as_ref().map(|t| {
            (
                t.host.as_str(),
                t.port,
                t.path.as_str(),
                t.origin.to_string(),
            )
        });
        assert_eq!(t, Ok(("::1", 80, "/x", "/x?y=1".to_owned())));
        assert!(parse_target("https://example.com/x").is_err());
        assert!(parse_target("127.0.0.1:8080/x").is_err());
        assert!(parse_target("http://user:pw@host/x").is_err());
    }

    #[test]
    fn stat_fields() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 37 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(stat), Some(287));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn percentiles_nearest_rank() {
        let samples: Vec<u32> = (1..=1000).collect();
        let p = Percentiles::of_sorted(&samples);
        assert_eq!(
            p,
            Some(Percentiles {
                p50: 500,
                p90: 900,
                p99: 990,
                max: 1000,
                mean: 500
            })
        );
        assert_eq!(Percentiles::of_sorted(&[]), None);
        assert_eq!(
            Percentiles::of_sorted(&[7]).map(|p| (p.p50, p.max)),
            Some((7, 7))
        );
    }
}
