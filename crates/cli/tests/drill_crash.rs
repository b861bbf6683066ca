//! Crash drill, repeated (`docs/design-decisions.md` 14 and 35): under load, `kill -9` the real
//! gateway again and again at moments drawn from a seeded generator, restart it on the same
//! data dir each time, then replay every request ever sent: zero accepted twice. "Accepted"
//! is answered 200 or delivered upstream; the recording upstream outlives every gateway.
//!
//! A "moment" is a number of deliveries the upstream has seen in the current stretch of
//! load, drawn among the counts that stretch is certain to reach, so every wait ends on a
//! condition. Strict mode uses small counters (1, 2, 3, …); window mode freezes the test clock
//! so every replay is still inside the window and only the nonce store can refuse it.
//! (`drills.rs` holds the single-kill version.)

#![cfg(feature = "test-clock")]

mod common;
mod drill_support;

use std::sync::Arc;
use std::time::Duration;

use common::gateway::{Gateway, T0, Upstream};
use drill_support::{Prepared, Reply, Rng, Scale, Tally, accepted_twice, send_batches, wait_for};
use serde_json::json;

const PATH: &str = "/api/v4/order/new";
const CONCURRENCY: usize = 16;

/// Deliveries a stretch of `n` requests is certain to produce, sent CONCURRENCY at a time in
/// nonce order. Window mode (clock frozen, unique nonces): all of them. Strict mode: requests
/// in one batch race each other, so only the highest nonce of each batch is sure to pass.
fn guaranteed(n: usize, window: bool) -> usize {
    if window { n } else { n.div_ceil(CONCURRENCY) }
}

async fn drill(window: bool) {
    let scale = Scale::from_env();
    let seed = drill_support::seed();
    let mut rng = Rng::new(seed);
    let (kills, per_stretch) = scale.pick((3, 160), (20, 400));

    let upstream = Arc::new(Upstream::start().await);
    let mut gateway = Gateway::start(&upstream).await;
    let (key, secret) = gateway.provision_key("drill", "trade", &[]).await;
    let frozen = gateway.clock(json!({"set_ms": T0 + 600_000})).await;
    let total = kills * per_stretch;
    let requests: Vec<Prepared> = if window {
        // Unique nonces spread over the ±5 s window around the frozen clock.
        let step = (8_000 / total as u64).max(1);
        (0..total as u64)
            .map(|i| Prepared::new(&key, &secret, PATH, frozen - 4_000 + i * step, true))
            .collect()
    } else {
        (1..=total as u64)
            .map(|n| Prepared::new(&key, &secret, PATH, n, false))
            .collect()
    };

    let mut tally = Tally::default();
    let mut first: Vec<(Prepared, Reply)> = Vec::new();
    let mut moments = Vec::new();
    for (generation, stretch) in requests.chunks(per_stretch).enumerate() {
        let delivered_before = upstream.count();
        // Window mode: past the first batch, so the kill lands in the middle of the load.
        // Strict mode: one delivery per batch is all that is certain; any but the first.
        let sure = guaranteed(stretch.len(), window);
        let earliest = if window { CONCURRENCY + 1 } else { 2 };
        let moment = rng.between(earliest.min(sure), sure);
        moments.push(moment);
        let load = {
            let (base, stretch) = (gateway.base.clone(), stretch.to_vec());
            tokio::spawn(async move { send_batches(&base, &stretch, CONCURRENCY).await })
        };
        let upstream_ref = upstream.clone();
        wait_for(
            &format!("{moment} deliveries before kill {generation}"),
            Duration::from_secs(120),
            move || upstream_ref.count() - delivered_before >= moment,
        )
        .await;
        gateway = gateway.kill9_and_restart(generation as u32 + 1, frozen);
        let replies = load.await.expect("load task");
        tally.add_all(&replies);
        first.extend(stretch.iter().cloned().zip(replies));
    }

    // Every request ever sent, again, to the last gateway (same frozen clock).
    let replies = send_batches(&gateway.base, &requests, CONCURRENCY).await;
    tally.add_all(&replies);
    let replay: Vec<(Prepared, Reply)> = requests.iter().cloned().zip(replies).collect();
    let twice = accepted_twice(&upstream, &first, &replay);

    // Everything answered 200 was delivered exactly once.
    let deliveries = upstream.deliveries();
    for (p, r) in first.iter().chain(&replay) {
        if r.accepted() {
            assert_eq!(
                deliveries.get(&(p.key.clone(), p.nonce)),
                Some(&1),
                "{}",
                p.body
            );
        }
    }
    // No 503 and nothing but 200, nonce refusals and dropped connections.
    assert!(!tally.rejected.contains_key("503"), "{tally:?}");
    let mut labels = vec![
        ("mode", if window { "window" } else { "strict" }.to_owned()),
        ("scale", scale.name().to_owned()),
        ("seed", seed.to_string()),
        ("kills", kills.to_string()),
        (
            "at",
            moments
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("/"),
        ),
    ];
    if window {
        // With the clock frozen every nonce is accepted once, except those recorded just
        // before a kill and never forwarded: burned (refused on replay), never doubled.
        let burned = total - deliveries.len();
        labels.push(("burned", burned.to_string()));
        assert!(
            burned <= kills * CONCURRENCY,
            "only requests in flight at a kill can be burned: {burned}"
        );
    }
    tally.report("crash", &labels, twice.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kill_9_strict_mode_small_counters() {
    drill(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kill_9_window_mode_frozen_clock() {
    drill(true).await;
}
