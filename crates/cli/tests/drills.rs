//! Crash drill (`docs/design-decisions.md` 14 and 35): `kill -9` the real gateway while requests are in
//! flight, restart it on the same data dir, replay every request ever sent: zero accepted
//! twice. "Accepted" means answered 200 or delivered upstream; the recording upstream outlives
//! the gateway and counts deliveries per nonce. Run in strict mode with small counters, and in
//! window mode with the test clock frozen so every replay is still inside the window and only
//! the nonce store can refuse it.

#![cfg(feature = "test-clock")]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::gateway::{Gateway, T0, Upstream};
use serde_json::json;
use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::sign::{SignedRequest, sign_body};

const PATH: &str = "/api/v4/order/new";
const REQUESTS: u64 = 600;
const CONCURRENCY: usize = 16;

struct Prepared {
    nonce: u64,
    body: String,
    signed: SignedRequest,
}

fn prepare(secret: &str, nonces: impl Iterator<Item = u64>, window: bool) -> Vec<Prepared> {
    let key = HmacSha512Key::new(secret.as_bytes());
    nonces
        .map(|nonce| {
            let body = format!(r#"{{"request":"{PATH}","nonce":{nonce},"nonceWindow":{window},"market":"BTC_USDT"}}"#);
            let signed = sign_body(body.clone().into_bytes(), &key);
            Prepared { nonce, body, signed }
        })
        .collect()
}

/// Sends every request (CONCURRENCY at a time, in order); returns the nonces answered 200.
async fn send_all(base: &str, api_key: &str, requests: &[Prepared]) -> Vec<u64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut accepted = Vec::new();
    for chunk in requests.chunks(CONCURRENCY) {
        let mut tasks = Vec::new();
        for r in chunk {
            let request = client
                .post(format!("{base}{PATH}"))
                .header("content-type", "application/json")
                .header("x-txc-apikey", api_key)
                .header("x-txc-payload", &r.signed.payload)
                .header("x-txc-signature", &r.signed.signature)
                .body(r.body.clone());
            let nonce = r.nonce;
            tasks.push(tokio::spawn(async move {
                match request.send().await {
                    Ok(response) if response.status().as_u16() == 200 => Some(nonce),
                    _ => None,
                }
            }));
        }
        for task in tasks {
            if let Ok(Some(nonce)) = task.await {
                accepted.push(nonce);
            }
        }
    }
    accepted
}

/// Waits (bounded) until the upstream has seen at least `n` requests. `n` must be a count the
/// load is certain to reach (see `kill_point`), so the wait ends on a condition, not on luck.
async fn wait_for_deliveries(upstream: &Upstream, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while upstream.count() < n {
        assert!(
            Instant::now() < deadline,
            "the gateway forwarded only {} of the {n} requests it must forward",
            upstream.count()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// How many deliveries to wait for before the kill. It must be a count the load is certain to
/// reach, and one past a full batch, so that at least one batch has been answered before the
/// kill (batches go one after another; one holds at most CONCURRENCY deliveries). Window mode:
/// every nonce is unique and inside the frozen window, so all of them are accepted. Strict mode:
/// requests inside one batch race each other, so only the highest nonce of each batch is sure to
/// be accepted (it is above everything sent before it): one delivery per batch is guaranteed.
fn kill_point(window: bool) -> usize {
    let guaranteed = if window {
        REQUESTS as usize
    } else {
        (REQUESTS as usize).div_ceil(CONCURRENCY)
    };
    let point = (guaranteed / 3).max(CONCURRENCY + 1);
    assert!(
        point <= guaranteed,
        "the drill must be able to reach its kill point"
    );
    point
}

fn deliveries_by_nonce(upstream: &Upstream) -> HashMap<u64, usize> {
    let mut counts = HashMap::new();
    for seen in upstream.seen.lock().expect("lock").iter() {
        let body: serde_json::Value = serde_json::from_slice(&seen.body).expect("forwarded JSON");
        *counts
            .entry(body["nonce"].as_u64().expect("nonce"))
            .or_insert(0) += 1;
    }
    counts
}

async fn drill(window: bool) {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&upstream).await;
    let (key, secret) = gateway.provision_key("drill", "trade", &[]).await;
    let frozen = gateway.clock(json!({"set_ms": T0 + 60_000})).await;
    let requests = if window {
        // Unique nonces spread over the ±5 s window around the frozen clock.
        prepare(
            &secret,
            (0..REQUESTS).map(|i| frozen - 4_000 + i * 13),
            true,
        )
    } else {
        prepare(&secret, 1..=REQUESTS, false)
    };

    // Phase 1: load, and kill -9 in the middle of it.
    let base = gateway.base.clone();
    let load = {
        let key = key.clone();
        let requests: Vec<Prepared> = requests
            .iter()
            .map(|r| Prepared {
                nonce: r.nonce,
                body: r.body.clone(),
                signed: r.signed.clone(),
            })
            .collect();
        tokio::spawn(async move { send_all(&base, &key, &requests).await })
    };
    wait_for_deliveries(&upstream, kill_point(window)).await;
    let gateway = gateway.kill9_and_restart(1, frozen);
    let accepted_before = load.await.expect("load task");
    assert!(!accepted_before.is_empty());

    // Phase 2: the same (frozen) clock, every request replayed.
    let accepted_after = send_all(&gateway.base, &key, &requests).await;

    let before: std::collections::HashSet<u64> = accepted_before.iter().copied().collect();
    let twice: Vec<u64> = accepted_after
        .iter()
        .copied()
        .filter(|n| before.contains(n))
        .collect();
    let deliveries = deliveries_by_nonce(&upstream);
    let delivered_twice: Vec<u64> = deliveries
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, _)| *n)
        .collect();
    println!(
        "drill ({}): sent {} twice over a kill -9; answered 200 before {}, after {}; delivered upstream {}; accepted twice {}",
        if window { "window" } else { "strict" },
        REQUESTS,
        accepted_before.len(),
        accepted_after.len(),
        deliveries.len(),
        twice.len() + delivered_twice.len()
    );
    assert!(twice.is_empty(), "answered 200 twice: {twice:?}");
    assert!(
        delivered_twice.is_empty(),
        "delivered upstream twice: {delivered_twice:?}"
    );
    // Everything answered 200 was delivered exactly once.
    for nonce in before.iter().chain(&accepted_after) {
        assert_eq!(deliveries.get(nonce), Some(&1), "nonce {nonce}");
    }
    // A nonce recorded just before the kill but never forwarded is refused on replay: burned,
    // never doubled (the fail-safe side of `docs/design-decisions.md` 14). With the clock frozen, every
    // other nonce of the window drill is eventually accepted once.
    if window {
        let burned = REQUESTS - deliveries.len() as u64;
        println!("drill (window): {burned} nonces burned by the crash (recorded, never forwarded)");
        assert!(
            burned <= CONCURRENCY as u64,
            "only requests in flight at the kill can be burned"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_strict_mode_small_counters() {
    drill(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_window_mode_frozen_clock() {
    drill(true).await;
}
