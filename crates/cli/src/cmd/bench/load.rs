//! The load of `wbauth bench`: the state its connections share (phase, request tickets,
//! counters), how each request is built and signed, and the whole run: connect, warm up,
//! measure, collect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request};
use serde_json::{Map, Value};
use tokio::time::Instant;
use whitebit_auth::headers;
use whitebit_auth::sign::{build_body, sign_body};
use whitebit_client::{NonceSource, unix_ms};

use super::args::Mode;
use super::connection::{Link, connect, connection_loop};
use super::cpu::{CLOCK_TICKS_PER_S, cpu_ticks};
use super::keys::{Signer, keys_of_connection};
use super::plan::{Plan, Stop, Target};
use super::progress::Ticker;
use super::report::{Report, Setup};
use crate::error::CliError;

/// Phase of the run, shared with the connections.
const WARMUP: u8 = 0;
/// Requests started in this phase are counted.
const MEASURE: u8 = 1;
/// No more requests.
const DONE: u8 = 2;

/// State shared by the connection tasks.
pub(super) struct Load {
    pub(super) addr: SocketAddr,
    target: Target,
    window: bool,
    extra: Map<String, Value>,
    signers: Vec<Arc<Signer>>,
    /// Window nonces of unsigned runs.
    plain_nonces: NonceSource,
    /// First strict nonce of every key.
    pub(super) strict_base: u64,
    api_key_header: HeaderName,
    payload_header: HeaderName,
    signature_header: HeaderName,
    phase: AtomicU8,
    /// Requests left to start (`--requests`), `None` for a timed run.
    tickets: Option<AtomicU64>,
    /// Measured requests finished so far (answers and errors).
    pub(super) finished: AtomicU64,
    /// Measured answers outside 2xx and transport errors so far.
    pub(super) not_ok: AtomicU64,
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

/// Runs the whole load: connect, warm up, measure, collect.
pub(super) async fn drive(plan: Plan) -> Result<Report, CliError> {
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
        // `headers::API_KEY`, `PAYLOAD` and `SIGNATURE`, in the lowercase form HTTP/1 sends.
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
    let setup = Setup {
        url: load.target.url.clone(),
        mode,
        keys_given,
        // Every key given is in use (taken in turn when there are more keys than connections).
        keys_used: keys_given,
        connections,
        threads,
        warmup,
    };
    Ok(Report::collect(setup, wall, cpu_seconds, results))
}
