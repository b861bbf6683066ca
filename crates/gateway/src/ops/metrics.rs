//! Prometheus metrics (text exposition format), served on the admin listener only
//! (`docs/design-decisions.md` 8). No per-key labels: cardinality stays bounded by the catalogue.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use whitebit_auth::ApiError;

/// How a request ended, for the outcome counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Verified and answered (built-in) or forwarded.
    Accepted,
    /// Refused with a catalogue row.
    Refused(ApiError),
    /// Token endpoint: missing fields.
    MissingFields,
    /// Fiat Gateway route: the token was refused.
    TokenRefused,
    /// A public GET route.
    Public,
    /// Refused by the HTTP layer (timeouts, malformed bodies).
    Transport,
}

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// The gateway's counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    accepted: AtomicU64,
    refused: Vec<AtomicU64>,
    missing_fields: AtomicU64,
    token_refused: AtomicU64,
    public: AtomicU64,
    transport: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    /// Announced key/partner changes applied to the caches.
    cache_changes: AtomicU64,
    /// Full reloads of the caches.
    cache_resyncs: AtomicU64,
    /// Cache reloads that failed (retried).
    cache_reload_failures: AtomicU64,
    /// 1 when the last health check of the key store succeeded (starts at 1).
    key_store_up: AtomicU64,
    /// 1 when the last health check of the nonce store succeeded (starts at 1).
    nonce_store_up: AtomicU64,
    /// Live reloads put in force.
    reloads: AtomicU64,
    /// Live reloads refused (the running configuration kept).
    reload_failures: AtomicU64,
    /// Public HTTP/1.1 connections handed from the fast path to hyper.
    http1_handovers: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            refused: ApiError::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            missing_fields: AtomicU64::new(0),
            token_refused: AtomicU64::new(0),
            public: AtomicU64::new(0),
            transport: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_count: AtomicU64::new(0),
            latency_sum_ns: AtomicU64::new(0),
            cache_changes: AtomicU64::new(0),
            cache_resyncs: AtomicU64::new(0),
            cache_reload_failures: AtomicU64::new(0),
            key_store_up: AtomicU64::new(1),
            nonce_store_up: AtomicU64::new(1),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            http1_handovers: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Records one request.
    pub(crate) fn record(&self, outcome: Outcome, elapsed: Duration) {
        let counter = match outcome {
            Outcome::Accepted => &self.accepted,
            Outcome::Refused(e) => match ApiError::ALL.iter().position(|x| *x == e) {
                Some(i) => &self.refused[i],
                None => &self.transport,
            },
            Outcome::MissingFields => &self.missing_fields,
            Outcome::TokenRefused => &self.token_refused,
            Outcome::Public => &self.public,
            Outcome::Transport => &self.transport,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Records one cache update from the key store's announcements.
    pub(crate) fn cache_reload(&self, change: wbauth_store::Change, ok: bool) {
        let counter = match (ok, change) {
            (false, _) => &self.cache_reload_failures,
            (true, wbauth_store::Change::Resync) => &self.cache_resyncs,
            (true, _) => &self.cache_changes,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one live reload of the configuration.
    pub(crate) fn reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.reloads
        } else {
            &self.reload_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a public HTTP/1.1 connection handed from the fast path to hyper (a request the
    /// fast path does not take: chunked, `Expect`, HTTP/1.0, a body after its head…).
    pub(crate) fn http1_handover(&self) {
        self.http1_handovers.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the result of a store health check.
    pub(crate) fn store_health(&self, key_store_up: bool, nonce_store_up: bool) {
        self.key_store_up
            .store(u64::from(key_store_up), Ordering::Relaxed);
        self.nonce_store_up
            .store(u64::from(nonce_store_up), Ordering::Relaxed);
    }

    /// Store and cache figures for [`render`](Self::render).
    #[must_use]
    pub(crate) fn store_gauges(&self) -> Vec<(&'static str, &'static str, u64)> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            (
                "wbauth_key_store_up",
                "1 when the key store answered its last health check.",
                load(&self.key_store_up),
            ),
            (
                "wbauth_nonce_store_up",
                "1 when the nonce store answered its last health check.",
                load(&self.nonce_store_up),
            ),
            (
                "wbauth_key_cache_changes_total",
                "Announced key and partner changes applied to the in-memory caches.",
                load(&self.cache_changes),
            ),
            (
                "wbauth_key_cache_resyncs_total",
                "Full reloads of the in-memory caches from the key store.",
                load(&self.cache_resyncs),
            ),
            (
                "wbauth_key_cache_reload_failures_total",
                "Cache reloads that failed and were retried.",
                load(&self.cache_reload_failures),
            ),
            (
                "wbauth_config_reloads_total",
                "Live reloads of the configuration put in force.",
                load(&self.reloads),
            ),
            (
                "wbauth_config_reload_failures_total",
                "Live reloads refused (the running configuration was kept).",
                load(&self.reload_failures),
            ),
            (
                "wbauth_http1_handovers_total",
                "Public HTTP/1.1 connections handed from the fast path to the general HTTP \
                 server by a request it does not take (chunked body, Expect, HTTP/1.0, a body \
                 sent after its head).",
                load(&self.http1_handovers),
            ),
        ]
    }

    /// Requests accepted so far.
    #[cfg(test)]
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Renders the exposition text; `gauges` are extra `(name, help, value)` figures (key
    /// cache, nonce store).
    #[must_use]
    pub(crate) fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP wbauth_requests_total Private API requests by outcome and docs/errors.md row.\n",
        );
        out.push_str("# TYPE wbauth_requests_total counter\n");
        let mut line = |outcome: &str, row: &str, code: u16, value: u64| {
            let _ = writeln!(
                out,
                "wbauth_requests_total{{outcome=\"{outcome}\",row=\"{row}\",status=\"{code}\"}} {value}"
            );
        };
        line("accepted", "", 200, self.accepted.load(Ordering::Relaxed));
        // One series per row and status: the answers of one row (16a's "too old" and "too
        // new") are summed, since two samples with the same labels break a scrape.
        let mut rows: Vec<(&str, u16, u64)> = Vec::with_capacity(ApiError::ALL.len());
        for (e, counter) in ApiError::ALL.iter().zip(&self.refused) {
            let value = counter.load(Ordering::Relaxed);
            match rows
                .iter_mut()
                .find(|(row, status, _)| *row == e.row() && *status == e.status())
            {
                Some((_, _, sum)) => *sum += value,
                None => rows.push((e.row(), e.status(), value)),
            }
        }
        for (row, status, value) in rows {
            line("refused", row, status, value);
        }
        line(
            "refused",
            "7+9",
            400,
            self.missing_fields.load(Ordering::Relaxed),
        );
        line("public", "", 200, self.public.load(Ordering::Relaxed));
        line("transport", "", 0, self.transport.load(Ordering::Relaxed));

        out.push_str(
            "# HELP wbauth_request_duration_seconds Time from request head to response head.\n",
        );
        out.push_str("# TYPE wbauth_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "wbauth_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "wbauth_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "wbauth_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "wbauth_request_duration_seconds_count {count}");

        for (name, help, value) in gauges {
            // Figures named `…_total` only ever grow: counters; the rest are gauges.
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.record(Outcome::Accepted, Duration::from_micros(80));
        m.record(
            Outcome::Refused(ApiError::NonceReused),
            Duration::from_millis(3),
        );
        m.record(
            Outcome::Refused(ApiError::NonceReused),
            Duration::from_secs(20),
        );
        m.record(
            Outcome::Refused(ApiError::NonceTooOld),
            Duration::from_millis(1),
        );
        m.record(
            Outcome::Refused(ApiError::NonceTooNew),
            Duration::from_millis(1),
        );
        let text = m.render(&[
            ("wbauth_keys", "Keys in memory.", 7),
            ("wbauth_things_total", "Things.", 3),
        ]);
        assert_eq!(
            text.matches("row=\"16a\"").count(),
            1,
            "one series a row: {text}"
        );
        assert!(
            text.contains(
                "wbauth_requests_total{outcome=\"refused\",row=\"16a\",status=\"429\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE wbauth_keys gauge\n"), "{text}");
        assert!(
            text.contains("# TYPE wbauth_things_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "wbauth_requests_total{outcome=\"accepted\",row=\"\",status=\"200\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "wbauth_requests_total{outcome=\"refused\",row=\"16b\",status=\"429\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("wbauth_request_duration_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("wbauth_request_duration_seconds_bucket{le=\"0.005\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("wbauth_request_duration_seconds_bucket{le=\"+Inf\"} 5\n"),
            "{text}"
        );
        assert!(text.contains("wbauth_keys 7\n"), "{text}");
        assert_eq!(m.accepted(), 1);
    }
}
