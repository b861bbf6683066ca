//! The whole run of `wbauth bench`: connect, warm up, measure, collect.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use hyper::header::HeaderName;
use tokio::time::Instant;
use whitebit_auth::headers;
use whitebit_client::{NonceSource, unix_ms};

use super::args::Mode;
use super::connection::{Link, connect, connection_loop};
use super::cpu::{CLOCK_TICKS_PER_S, cpu_ticks, watched_seconds, watched_ticks};
use super::keys::{Signer, keys_of_connection};
use super::load::{DONE, Load, MEASURE, Pacer, WARMUP};
use super::plan::{Plan, Stop};
use super::progress::Ticker;
use super::report::{Report, Setup};
use crate::error::CliError;

/// Runs the whole load: connect, warm up, measure, collect.
pub(super) async fn drive(plan: Plan) -> Result<Report, CliError> {
    let Plan {
        target,
        connections,
        threads,
        stop,
        warmup,
        rate,
        mode,
        extra,
        signers,
        progress,
        watch,
        tls,
    } = plan;
    let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| CliError::Unreachable(format!("cannot resolve {}: {e}", target.host)))?
        .next()
        .ok_or_else(|| CliError::Unreachable(format!("{} resolves to no address", target.host)))?;

    // Every connection is opened before the clock starts.
    let mut opening = tokio::task::JoinSet::new();
    for index in 0..connections {
        let tls = tls.clone();
        opening.spawn(async move { (index, connect(addr, tls).await) });
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
        tls,
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
        pacer: rate.map(Pacer::new),
    });

    let mut start = (Instant::now(), cpu_ticks());
    let mut watched_start = watched_ticks(&watch);
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
        watched_start = watched_ticks(&watch);
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
    let servers = watched_seconds(&watch, &watched_start, &watched_ticks(&watch));
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
        rate,
    };
    let mut report = Report::collect(setup, wall, cpu_seconds, results);
    report.servers = servers;
    Ok(report)
}
