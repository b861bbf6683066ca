//! The load of `wbauth bench`: the state its connections share (phase, request tickets,
//! counters) and how each request is built and signed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request};
use serde_json::{Map, Value};
use whitebit_auth::headers;
use whitebit_auth::sign::{build_body, sign_body};
use whitebit_client::{NonceSource, unix_ms};

use super::keys::Signer;
use super::plan::Target;

/// Phase of the run, shared with the connections.
pub(super) const WARMUP: u8 = 0;
/// Requests started in this phase are counted.
pub(super) const MEASURE: u8 = 1;
/// No more requests.
pub(super) const DONE: u8 = 2;

/// State shared by the connection tasks.
pub(super) struct Load {
    pub(super) addr: SocketAddr,
    /// TLS to an `https://` target.
    pub(super) tls: Option<Arc<super::tls::BenchTls>>,
    pub(super) target: Target,
    pub(super) window: bool,
    pub(super) extra: Map<String, Value>,
    pub(super) signers: Vec<Arc<Signer>>,
    /// Window nonces of unsigned runs.
    pub(super) plain_nonces: NonceSource,
    /// First strict nonce of every key.
    pub(super) strict_base: u64,
    pub(super) api_key_header: HeaderName,
    pub(super) payload_header: HeaderName,
    pub(super) signature_header: HeaderName,
    pub(super) phase: AtomicU8,
    /// Requests left to start (`--requests`), `None` for a timed run.
    pub(super) tickets: Option<AtomicU64>,
    /// Measured requests finished so far (answers and errors).
    pub(super) finished: AtomicU64,
    /// Measured answers outside 2xx and transport errors so far.
    pub(super) not_ok: AtomicU64,
    /// `--rate`: when each request may start.
    pub(super) pacer: Option<Pacer>,
}

/// Start times `1/rate` apart, shared by every connection: each request takes the next one.
pub(super) struct Pacer {
    base: tokio::time::Instant,
    interval_ns: u64,
    /// The next free start, in ns after `base`.
    next_ns: AtomicU64,
}

/// How far a schedule may fall behind before its backlog is dropped (no catch-up burst).
const MAX_BACKLOG_NS: u64 = 1_000_000_000;

impl Pacer {
    /// A schedule of `per_second` starts a second.
    pub(super) fn new(per_second: u64) -> Self {
        Self {
            base: tokio::time::Instant::now(),
            interval_ns: (1_000_000_000 / per_second.max(1)).max(1),
            next_ns: AtomicU64::new(0),
        }
    }

    /// The start of the next request, from now on: when the schedule is ahead, waits for it.
    pub(super) async fn wait_turn(&self) {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let floor = now.saturating_sub(MAX_BACKLOG_NS);
        let Ok(previous) =
            self.next_ns
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
                    Some(next.max(floor).saturating_add(self.interval_ns))
                })
        else {
            return;
        };
        let start = previous.max(floor);
        if start > now {
            tokio::time::sleep_until(self.base + std::time::Duration::from_nanos(start)).await;
        }
    }
}

impl Load {
    /// Whether a connection may start another request, and whether it counts.
    pub(super) fn next_ticket(&self) -> Option<bool> {
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
    pub(super) fn request(
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
    pub(super) fn tally(&self, ok: bool) {
        self.finished.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.not_ok.fetch_add(1, Ordering::Relaxed);
        }
    }
}
