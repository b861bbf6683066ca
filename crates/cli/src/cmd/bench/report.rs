//! The results of a run of `wbauth bench`: latency percentiles, status codes, errors, the
//! generator's CPU use and the warnings, as a table or as JSON (`--json`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::args::Mode;
use super::connection::ConnStats;
use super::cpu::{CLOCK_TICKS_PER_S, CPU_LIMIT};

/// Window mode: above this rate per key, nonces run ahead of the clock (`docs/design-decisions.md` 28).
const WINDOW_RATE_PER_KEY: f64 = 900.0;

/// Latency percentiles in µs (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Percentiles {
    pub(super) p50: u32,
    pub(super) p90: u32,
    pub(super) p99: u32,
    pub(super) max: u32,
    pub(super) mean: u32,
}

impl Percentiles {
    /// From sorted samples; `None` when there are none.
    pub(super) fn of_sorted(sorted: &[u32]) -> Option<Self> {
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

/// How a run was set up.
#[derive(Debug)]
pub(super) struct Setup {
    /// The target.
    pub(super) url: String,
    /// The nonce mode.
    pub(super) mode: Mode,
    /// Keys given (none: unsigned).
    pub(super) keys_given: usize,
    /// Keys in use.
    pub(super) keys_used: usize,
    /// Connections.
    pub(super) connections: usize,
    /// Worker threads of the generator.
    pub(super) threads: usize,
    /// The warmup before measuring.
    pub(super) warmup: Duration,
    /// `--rate`, when the load was paced.
    pub(super) rate: Option<u64>,
}

/// The results of a run.
#[derive(Debug)]
pub(super) struct Report {
    setup: Setup,
    signed: bool,
    wall: Duration,
    /// Answers received (any status).
    responses: u64,
    /// Requests that got no answer.
    transport_errors: u64,
    latency: Option<Percentiles>,
    status: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    reconnects: u64,
    /// Answers that came over HTTP/2.
    http2_answers: u64,
    cpu_seconds: Option<f64>,
    /// CPU seconds of each watched server process over the measured phase (`--watch`).
    pub(super) servers: Vec<(String, Option<f64>)>,
    pub(super) warnings: Vec<String>,
}

impl Report {
    /// The HTTP version the answers came over.
    fn protocol(&self) -> &'static str {
        match self.http2_answers {
            0 => "HTTP/1.1",
            n if n == self.responses => "HTTP/2",
            _ => "HTTP/2 and HTTP/1.1",
        }
    }

    /// Merges the connections' results.
    pub(super) fn collect(
        setup: Setup,
        wall: Duration,
        cpu_seconds: Option<f64>,
        results: Vec<ConnStats>,
    ) -> Self {
        let mut latencies = Vec::with_capacity(results.iter().map(|r| r.latencies_us.len()).sum());
        let mut status = BTreeMap::new();
        let mut errors = BTreeMap::new();
        let mut reconnects = 0;
        let mut http2_answers = 0;
        for r in results {
            latencies.extend_from_slice(&r.latencies_us);
            for (code, n) in r.status {
                *status.entry(code).or_default() += n;
            }
            for (kind, n) in r.errors {
                *errors.entry(kind).or_default() += n;
            }
            reconnects += r.reconnects;
            http2_answers += r.http2_answers;
        }
        latencies.sort_unstable();
        let mode = setup.mode;
        let mut report = Self {
            signed: setup.keys_given > 0,
            setup,
            wall,
            responses: latencies.len() as u64,
            transport_errors: errors.values().sum(),
            latency: Percentiles::of_sorted(&latencies),
            status,
            errors,
            reconnects,
            http2_answers,
            cpu_seconds,
            servers: Vec::new(),
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
                report.setup.threads,
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
        if self.setup.keys_used == 0 {
            0.0
        } else {
            self.rps() / self.setup.keys_used as f64
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
        self.cpu_cores()
            .map(|c| c / self.setup.threads.max(1) as f64)
    }

    /// CPU microseconds of a watched process per answer.
    fn us_per_answer(&self, seconds: f64) -> Option<f64> {
        (self.responses > 0).then(|| seconds * 1e6 / self.responses as f64)
    }

    /// A run is valid unless the generator was over 90 % busy.
    fn valid(&self) -> bool {
        self.cpu_fraction().is_none_or(|f| f <= CPU_LIMIT)
    }

    /// The JSON form (`--json`).
    pub(super) fn to_json(&self) -> Value {
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
        let servers: Map<String, Value> = self
            .servers
            .iter()
            .map(|(name, secs)| {
                let per = secs.and_then(|s| self.us_per_answer(s));
                (
                    name.clone(),
                    json!({"cpu_seconds": secs, "cpu_us_per_request": per}),
                )
            })
            .collect();
        json!({
            "url": self.setup.url,
            "mode": self.setup.mode.name(),
            "signed": self.signed,
            "keys": self.setup.keys_given,
            "keys_used": self.setup.keys_used,
            "connections": self.setup.connections,
            "threads": self.setup.threads,
            "warmup_s": self.setup.warmup.as_secs_f64(),
            "rate": self.setup.rate,
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
            "protocol": self.protocol(),
            "cpu": {
                "seconds": self.cpu_seconds,
                "cores": self.cpu_cores(),
                "fraction": self.cpu_fraction(),
                "limit": CPU_LIMIT,
                "clock_ticks_per_s": CLOCK_TICKS_PER_S,
            },
            "servers": servers,
            "valid": self.valid(),
            "warnings": self.warnings,
        })
    }

    /// The human form.
    pub(super) fn table(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            out.push_str(&format!("{label:<12}{value}\n"));
        };
        line("target", self.setup.url.clone());
        let keys = if !self.signed {
            "unsigned (--plain)".to_owned()
        } else if self.setup.keys_used < self.setup.keys_given {
            format!(
                "signed, {} keys ({} in use), {:.0} req/s per key",
                self.setup.keys_given,
                self.setup.keys_used,
                self.per_key_rps()
            )
        } else {
            format!(
                "signed, {} key(s), {:.0} req/s per key",
                self.setup.keys_given,
                self.per_key_rps()
            )
        };
        line("mode", format!("{}, {keys}", self.setup.mode.name()));
        line(
            "load",
            format!(
                "{} connection(s) on {} thread(s), warmup {:.1} s{}",
                self.setup.connections,
                self.setup.threads,
                self.setup.warmup.as_secs_f64(),
                self.setup
                    .rate
                    .map_or_else(String::new, |r| format!(", paced at {r}/s"))
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
        line("status", counts(&self.status, "none"));
        line("errors", counts(&self.errors, "0"));
        line("reconnects", self.reconnects.to_string());
        line("protocol", self.protocol().to_owned());
        let cpu = match (self.cpu_seconds, self.cpu_cores(), self.cpu_fraction()) {
            (Some(secs), Some(cores), Some(fraction)) => format!(
                "{secs:.2} s CPU = {:.0} % of one core, {:.2} of {} thread(s){}",
                cores * 100.0,
                fraction,
                self.setup.threads,
                if self.valid() {
                    "  (valid)".to_owned()
                } else {
                    format!("  INVALID: over {:.0} %", CPU_LIMIT * 100.0)
                }
            ),
            _ => "unknown".to_owned(),
        };
        line("generator", cpu);
        for (name, secs) in &self.servers {
            let text = match secs.map(|s| (s, self.us_per_answer(s))) {
                Some((s, Some(per))) => format!("{s:.2} s CPU, {per:.1} µs per answer"),
                Some((s, None)) => format!("{s:.2} s CPU"),
                None => "unknown (process unreadable)".to_owned(),
            };
            line(name, text);
        }
        out
    }
}

/// `what: n` for each entry of a tally, two spaces apart; `empty` when there are none.
fn counts<K: std::fmt::Display>(tally: &BTreeMap<K, u64>, empty: &str) -> String {
    if tally.is_empty() {
        return empty.to_owned();
    }
    tally
        .iter()
        .map(|(what, n)| format!("{what}: {n}"))
        .collect::<Vec<_>>()
        .join("  ")
}
