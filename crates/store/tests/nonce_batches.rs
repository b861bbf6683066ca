//! Concurrent consumes through the nonce stores' batched path (group commit on PostgreSQL):
//! a batch decides each key's nonces as if they had come one after the other, a nonce given
//! many times at once is accepted once, batches work from several runtimes at once, and a
//! batch that meets an outage fails closed. Every test that does not need a server of its own
//! also runs against the journal and Redis, which must give the same answers.
//!
//! Nothing sleeps for a fixed time: waits are bounded waits on a condition.

mod servers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use servers::{KINDS, Kind, fresh_keys, now_ms, open_stores};
use wbauth_store::{NonceStore, PgNonceStore, RemoteOptions, StoreError};
use wbauth_testkit::PostgresServer;
use whitebit_auth::nonce::NonceLedger;
use whitebit_auth::{ApiError, NonceMode};

fn options(op_timeout: Duration) -> RemoteOptions {
    RemoteOptions {
        pool_size: 8,
        connect_timeout: Duration::from_secs(10).min(op_timeout),
        op_timeout,
        allow_non_durable: false,
        ..RemoteOptions::default()
    }
}

/// A store of each kind (the journal in `dir`, a database of its own on PostgreSQL).
async fn open(kind: Kind, test: &str, dir: &tempfile::TempDir) -> Arc<dyn NonceStore> {
    let mut stores = open_instances(kind, test, dir, 1).await;
    stores.remove(0)
}

/// `n` instances of a store of each kind on the same data (the journal allows one store per
/// directory, so it is shared).
async fn open_instances(
    kind: Kind,
    test: &str,
    dir: &tempfile::TempDir,
    n: usize,
) -> Vec<Arc<dyn NonceStore>> {
    open_stores(kind, test, dir.path(), n, &options(Duration::from_secs(10))).await
}

/// A store's figure named `name` (0 when it has none).
fn figure(store: &dyn NonceStore, name: &str) -> u64 {
    store
        .metrics()
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(0, |(_, _, value)| *value)
}

/// A fixed shuffle (a linear congruential sequence), so a failure can be reproduced.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from((seed >> 33) % (i as u64 + 1)).expect("index");
        items.swap(i, j);
    }
}

/// One key's nonces (strict and window, duplicates, lower and higher, interleaved with
/// another key's) reach the store together: on a current-thread runtime the tasks run in the
/// order they were spawned, so all of them join one batch in that order before its flusher
/// runs. Every answer must be the reference model's for that order.
#[tokio::test]
async fn one_batch_decides_a_key_s_nonces_one_after_the_other() {
    for kind in KINDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(kind, "one_batch", &dir).await;
        let now = now_ms();
        let a = fresh_keys(2);
        let b = a + 1;
        let (strict, window) = (NonceMode::Strict, NonceMode::Window);
        let steps = [
            (a, 5, strict),
            (b, 100, strict),
            (a, 3, strict),
            (a, 7, strict),
            (a, 7, strict),
            (b, 100, strict),
            (a, 6, strict),
            (a, now + 1, window),
            (a, now + 1, window),
            (a, now, strict),
            (a, now + 2, strict),
            (b, 101, strict),
            (a, now - 10, window),
            (a, now + 2, strict),
            (a, u64::MAX, strict),
            (b, 99, strict),
            (a, u64::MAX, strict),
        ];
        let batches_before = figure(store.as_ref(), "wbauth_nonce_store_batches_total");
        let batched_before = figure(store.as_ref(), "wbauth_nonce_store_batched_total");
        let tasks: Vec<_> = steps
            .iter()
            .map(|&(key, nonce, mode)| {
                let store = store.clone();
                tokio::spawn(async move { store.consume(key, nonce, mode, now).await })
            })
            .collect();
        let mut ledger = NonceLedger::<u64>::new();
        for ((key, nonce, mode), task) in steps.into_iter().zip(tasks) {
            let expected = ledger.consume(key, nonce, mode, now);
            let got = task
                .await
                .expect("task")
                .unwrap_or_else(|e| panic!("{kind:?}: store error {e}"));
            assert_eq!(got, expected, "{kind:?}: key {key} {mode:?} nonce {nonce}");
        }
        if kind == Kind::Postgres {
            // One batch of all of them (written in rounds, one per nonce of key `a`).
            let batches = figure(store.as_ref(), "wbauth_nonce_store_batches_total");
            let batched = figure(store.as_ref(), "wbauth_nonce_store_batched_total");
            assert_eq!(batches - batches_before, 1, "{kind:?}");
            assert_eq!(batched - batched_before, steps.len() as u64, "{kind:?}");
        }
    }
}

/// Many keys, every nonce sent three times at once over two store instances: per key,
/// each nonce is accepted at most once, strict mode ends at the largest nonce (accepted
/// exactly once), and in window mode every distinct nonce is accepted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_consumes_are_accepted_exactly_once() {
    for kind in KINDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = open_instances(kind, "exactly_once", &dir, 2).await;
        let (first, second) = (stores[0].clone(), stores[1].clone());
        let now = now_ms();
        let keys = 40;
        let first_key = fresh_keys(keys);
        let mut requests = Vec::new();
        for key in first_key..first_key + keys {
            let window = (key - first_key) % 2 == 1;
            for n in 1..=8u64 {
                let nonce = if window { now + n } else { n };
                let mode = NonceMode::from_window_flag(window);
                requests.extend([(key, nonce, mode); 3]);
            }
        }
        shuffle(&mut requests, first_key);
        let tasks: Vec<_> = requests
            .iter()
            .enumerate()
            .map(|(i, &(key, nonce, mode))| {
                let store = if i % 2 == 0 { &first } else { &second }.clone();
                tokio::spawn(async move { store.consume(key, nonce, mode, now).await })
            })
            .collect();
        let mut accepted: HashMap<(u64, u64), u32> = HashMap::new();
        for (&(key, nonce, mode), task) in requests.iter().zip(tasks) {
            let answer = task
                .await
                .expect("task")
                .unwrap_or_else(|e| panic!("{kind:?}: store error {e}"));
            match (answer, mode) {
                (Ok(()), _) => *accepted.entry((key, nonce)).or_default() += 1,
                (Err(ApiError::NonceNotIncreasing), NonceMode::Strict)
                | (Err(ApiError::NonceReused), NonceMode::Window) => {}
                (Err(row), _) => panic!("{kind:?}: {mode:?} nonce {nonce}: {row:?}"),
            }
        }
        assert!(accepted.values().all(|&n| n == 1), "{kind:?}: {accepted:?}");
        for key in first_key..first_key + keys {
            let window = (key - first_key) % 2 == 1;
            if window {
                for n in 1..=8 {
                    assert!(accepted.contains_key(&(key, now + n)), "{kind:?} {key} {n}");
                }
            } else {
                assert!(accepted.contains_key(&(key, 8)), "{kind:?} {key}");
                let again = first.consume(key, 8, NonceMode::Strict, now).await;
                assert_eq!(again.expect("store"), Err(ApiError::NonceNotIncreasing));
                let next = second.consume(key, 9, NonceMode::Strict, now).await;
                assert_eq!(next.expect("store"), Ok(()), "{kind:?} {key}");
            }
        }
    }
}

/// The gateway reaches a store from one current-thread runtime per worker: consumes from
/// several such runtimes at once share the batches and are answered right. A flusher runs
/// on the runtime of the request that started it, so (as the gateway's workers do) every
/// runtime stays up until all of them are done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_serve_several_runtimes_at_once() {
    for kind in [Kind::Redis, Kind::Postgres] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(kind, "runtimes", &dir).await;
        let now = now_ms();
        let key = fresh_keys(1);
        let done = Arc::new(tokio::sync::Barrier::new(3));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let store = store.clone();
                let done = done.clone();
                tokio::task::spawn_blocking(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime.block_on(async move {
                        let tasks: Vec<_> = (1..=50u64)
                            .map(|n| {
                                let store = store.clone();
                                tokio::spawn(async move {
                                    store.consume(key, now + n, NonceMode::Window, now).await
                                })
                            })
                            .collect();
                        // No panic before the barrier: the other runtimes would wait.
                        let mut answers = Vec::new();
                        for (n, task) in (1..=50u64).zip(tasks) {
                            answers.push((n, task.await));
                        }
                        done.wait().await;
                        answers
                    })
                })
            })
            .collect();
        let mut accepted = Vec::new();
        for worker in workers {
            for (n, answer) in worker.await.expect("worker") {
                match answer.expect("task") {
                    Ok(Ok(())) => accepted.push(n),
                    Ok(Err(ApiError::NonceReused)) => {}
                    other => panic!("{kind:?}: nonce {n}: {other:?}"),
                }
            }
        }
        accepted.sort_unstable();
        assert_eq!(accepted, (1..=50).collect::<Vec<_>>(), "{kind:?}");
    }
}

/// A batch written while PostgreSQL is down answers every member 503 (fail closed); none of
/// its nonces was recorded, so after the restart each is accepted, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_meets_an_outage_fails_closed() {
    let mut pg = tokio::task::spawn_blocking(PostgresServer::start)
        .await
        .expect("join")
        .expect("postgres starts");
    let url = pg.create_database("batch_outage").expect("create database");
    let store = Arc::new(
        PgNonceStore::connect(&url, &options(Duration::from_secs(1)))
            .await
            .expect("connect"),
    );
    let now = now_ms();
    let key = fresh_keys(4);
    let answer = store.consume(key, 1, NonceMode::Strict, now).await;
    assert_eq!(answer.expect("up"), Ok(()));

    pg = tokio::task::spawn_blocking(move || {
        pg.kill();
        pg
    })
    .await
    .expect("join");
    let requests: Vec<(u64, u64, NonceMode)> = (0..4)
        .flat_map(|k| {
            (2..12).map(move |n| {
                if k % 2 == 0 {
                    (key + k, n, NonceMode::Strict)
                } else {
                    (key + k, now + n, NonceMode::Window)
                }
            })
        })
        .collect();
    let errors_before = figure(store.as_ref(), "wbauth_nonce_store_errors_total");
    let tasks: Vec<_> = requests
        .iter()
        .map(|&(key, nonce, mode)| {
            let store = store.clone();
            tokio::spawn(async move { store.consume(key, nonce, mode, now).await })
        })
        .collect();
    for ((_, nonce, mode), task) in requests.iter().zip(tasks) {
        match task.await.expect("task") {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("{mode:?} nonce {nonce} answered {other:?} while down"),
        }
    }
    assert!(figure(store.as_ref(), "wbauth_nonce_store_errors_total") > errors_before);

    let pg = tokio::task::spawn_blocking(move || {
        pg.restart().expect("postgres restarts");
        pg
    })
    .await
    .expect("join");
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.health().await.is_err() {
        assert!(Instant::now() < deadline, "no recovery within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for &(key, nonce, mode) in &requests {
        let answer = store.consume(key, nonce, mode, now).await;
        assert_eq!(answer.expect("up again"), Ok(()), "{mode:?} {nonce}");
    }
    for &(key, nonce, mode) in requests.iter().take(3) {
        let answer = store.consume(key, nonce, mode, now).await;
        assert!(answer.expect("up again").is_err(), "{mode:?} {nonce} twice");
    }
    drop(pg);
}
