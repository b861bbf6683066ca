//! The command line of `wbauth bench`: its options, its help text and the parsers of its values.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use zeroize::Zeroizing;

/// A secret from the command line: kept in a wiped buffer, never shown by `Debug`.
#[derive(Clone)]
pub(crate) struct Secret(pub(super) Zeroizing<String>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// clap's parser for `--secret`.
pub(super) fn parse_secret(text: &str) -> Result<Secret, String> {
    if text.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(Secret(Zeroizing::new(text.to_owned())))
}

/// The default `--body-extra`: makes the typical body about 120 bytes.
const DEFAULT_EXTRA: &str = r#"{"ticker":"BTC","market":"BTC_USDT"}"#;
/// The default `--duration`.
pub(super) const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Load-tests a server with signed requests and reports throughput, latency percentiles,
/// status codes and the generator's own CPU use.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub(crate) struct BenchArgs {
    /// The target, http:// or https://; its path is the signed `request`, e.g.
    /// http://127.0.0.1:8080/api/v4/trade-account/balance.
    #[arg(value_name = "URL")]
    pub(super) url: String,
    /// With an https:// target: root certificates (PEM) trusted instead of the system's.
    /// Connections resume TLS sessions when they reconnect.
    #[arg(long, env = "WBAUTH_CACERT", value_name = "FILE")]
    pub(super) cacert: Option<std::path::PathBuf>,
    /// With an https:// target: HTTP/1.1 even when the server offers HTTP/2 (by default a
    /// connection speaks HTTP/2 when the server chooses it, one request in flight at a time).
    #[arg(long)]
    pub(super) http1: bool,
    /// Keep-alive connections (HTTP/1.1; over TLS for https://, HTTP/2 when offered), each a closed loop with one request in flight.
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub(super) connections: u32,
    /// How long to measure, e.g. 500ms, 10s, 2m [default: 10s].
    #[arg(long, value_name = "TIME", value_parser = parse_duration, conflicts_with = "requests")]
    pub(super) duration: Option<Duration>,
    /// Measure exactly N requests instead of a time span.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) requests: Option<u64>,
    /// Start requests at this many a second in all instead of as fast as the connections
    /// allow (each connection still has one request in flight at most): a steady load for
    /// soak tests. A schedule that falls behind by more than a second drops the backlog.
    #[arg(long, value_name = "PER_SECOND", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub(super) rate: Option<u64>,
    /// Load sent before measuring (not counted), e.g. 0s, 500ms, 1s.
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = parse_duration)]
    pub(super) warmup: Duration,
    /// CSV file of keys, one `public_key,secret` a line (blank lines and # comments ignored).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["key", "secret"])]
    pub(super) keys: Option<PathBuf>,
    /// One public API key [default: $WBAUTH_API_KEY].
    #[arg(long, value_name = "KEY")]
    pub(super) key: Option<String>,
    /// The secret of --key [default: $WBAUTH_API_SECRET]; never printed.
    #[arg(long, value_name = "SECRET", value_parser = parse_secret)]
    pub(super) secret: Option<Secret>,
    /// Nonce mode: window (nonceWindow: true, keys shared by connections) or strict (one key
    /// per connection, nonces in order).
    #[arg(long, value_enum, default_value_t = Mode::Window)]
    pub(super) mode: Mode,
    /// Send the same bodies unsigned (no X-TXC-* headers): for an echo server or nginx baseline.
    #[arg(long, conflicts_with_all = ["keys", "key", "secret"])]
    pub(super) plain: bool,
    /// Extra parameters (a JSON object) written into the body after request, nonce and
    /// nonceWindow.
    #[arg(long, value_name = "JSON", default_value = DEFAULT_EXTRA)]
    pub(super) body_extra: String,
    /// A server process whose CPU time (user + system, all threads, from /proc/PID/stat) is
    /// read at the start and the end of the measured phase, as NAME=PID; repeatable, and one
    /// NAME may be given several PIDs (summed, e.g. nginx's workers). Reported per request.
    #[arg(long = "watch", value_name = "NAME=PID", value_parser = parse_watch)]
    pub(super) watch: Vec<(String, u32)>,
    /// Worker threads of the generator (1: a single-threaded runtime). The CPU limit of a
    /// valid run is 90 % of these threads.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(super) threads: u16,
    /// Print one JSON object with the results instead of the table.
    #[arg(long)]
    pub(super) json: bool,
    /// No progress line on standard error.
    #[arg(long)]
    pub(super) quiet: bool,
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

/// How nonces are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Mode {
    /// `nonceWindow: true`: ±5 s around the server's clock, unique per key.
    Window,
    /// No `nonceWindow`: strictly increasing per key.
    Strict,
}

impl Mode {
    /// The name shown in reports.
    pub(super) const fn name(self) -> &'static str {
        match self {
            Mode::Window => "window",
            Mode::Strict => "strict",
        }
    }
}

/// Parses `--watch NAME=PID`.
pub(super) fn parse_watch(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PID, got {text:?}"))?;
    if name.is_empty() {
        return Err("the name before `=` is empty".into());
    }
    let pid: u32 = pid
        .parse()
        .map_err(|_| format!("{pid:?} is not a process id"))?;
    Ok((name.to_owned(), pid))
}

/// Parses `500ms`, `10s`, `2m`, `1h` (a whole number and a unit).
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
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
