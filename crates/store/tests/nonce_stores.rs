//! The nonce stores against real servers: one suite, run against every backend — the
//! embedded journal (in a temporary directory), Redis and PostgreSQL (throw-away servers on
//! loopback, one of each shared by this test binary; tests that kill a server start their
//! own). Each test uses key ids of its own (and a database of its own on PostgreSQL).
//!
//! Nothing sleeps for a fixed time: waits are bounded waits on a condition.

mod servers;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use servers::{KINDS, Kind, POSTGRES, REDIS, fresh_keys, now_ms, open_stores};
use wbauth_store::{
    NonceStore, PgNonceStore, RedisNonceStore, RemoteOptions, StoreError, StoreHealth,
};
use wbauth_testkit::{PostgresServer, RedisServer};
use whitebit_auth::nonce::{NonceBook, NonceLedger};
use whitebit_auth::{ApiError, NonceMode};

type Answer = Result<Result<(), ApiError>, StoreError>;

/// Generous timeouts: a loaded two-core machine must not turn a slow answer into a failure.
fn options() -> RemoteOptions {
    RemoteOptions {
        pool_size: 16,
        connect_timeout: Duration::from_secs(10),
        op_timeout: Duration::from_secs(10),
        allow_non_durable: false,
        ..RemoteOptions::default()
    }
}

/// Short timeouts, for the outage tests.
fn short_options() -> RemoteOptions {
    RemoteOptions {
        pool_size: 4,
        connect_timeout: Duration::from_secs(1),
        op_timeout: Duration::from_secs(1),
        allow_non_durable: false,
        ..RemoteOptions::default()
    }
}

/// One backend opened for one test: `instances` stores on the same data (two connections to
/// the same server; the journal allows one store per directory, so it is shared).
struct Backend {
    kind: Kind,
    stores: Vec<Arc<dyn NonceStore>>,
    /// The PostgreSQL database of this test.
    database: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn store(&self) -> &dyn NonceStore {
        self.stores[0].as_ref()
    }
}

async fn open(kind: Kind, test: &str, instances: usize) -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores = open_stores(kind, test, dir.path(), instances, &options()).await;
    Backend {
        kind,
        stores,
        database: (kind == Kind::Postgres).then(|| test.to_owned()),
        _dir: (kind == Kind::Journal).then_some(dir),
    }
}

/// Runs `test` against each backend in turn.
async fn on_every_backend<F, Fut>(test: &str, instances: usize, f: F)
where
    F: Fn(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    for kind in KINDS {
        eprintln!("{test}: {kind:?}");
        f(open(kind, test, instances).await).await;
    }
}

fn ok(kind: Kind, answer: Answer) -> Result<(), ApiError> {
    answer.unwrap_or_else(|e| panic!("{kind:?}: unexpected store error: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

/// One step: (key 0..3, window mode, how the nonce is picked, raw randomness, offset from
/// now, how far the clock moves first).
type Step = (u64, bool, u8, u64, i64, u64);

const POW53: u64 = 1 << 53;
const SPECIAL: [u64; 12] = [
    0,
    1,
    POW53 - 1,
    POW53,
    POW53 + 1,
    POW53 + 2,
    i64::MAX as u64,
    i64::MAX as u64 + 1,
    u64::MAX - 2,
    u64::MAX - 1,
    u64::MAX,
    1_000,
];

fn pick(list: &[u64], raw: u64) -> Option<u64> {
    let len = u64::try_from(list.len()).ok()?;
    let index = usize::try_from(raw.checked_rem(len)?).ok()?;
    list.get(index).copied()
}

fn offset(now: u64, by: i64) -> u64 {
    now.checked_add_signed(by).unwrap_or(now)
}

/// The nonce a step sends, given what was sent so far and the key's mark in the model.
fn nonce_of(step: &Step, now: u64, mark: Option<u64>, used: &[u64]) -> u64 {
    let &(_, window, how, raw, by, _) = step;
    let near_mark = |raw: u64| {
        let mark = mark.unwrap_or(now);
        match raw % 3 {
            0 => mark.saturating_sub(1),
            1 => mark,
            _ => mark.saturating_add(1),
        }
    };
    if window {
        match how {
            0..=5 => offset(now, by),
            6 | 7 => pick(used, raw).unwrap_or(now),
            8 => near_mark(raw),
            _ => {
                let edge = [now - 5_001, now - 5_000, now + 5_000, now + 5_001];
                pick(&edge, raw).unwrap_or(now)
            }
        }
    } else {
        match how {
            0 | 1 => pick(&SPECIAL, raw).unwrap_or(0),
            2 | 3 => near_mark(raw),
            4 | 5 => pick(used, raw).unwrap_or(raw),
            6 | 7 => offset(now, by),
            8 => raw,
            _ => raw % 1_000,
        }
    }
}

async fn run_case(store: &dyn NonceStore, steps: &[Step]) -> Result<(), TestCaseError> {
    let first_key = fresh_keys(3);
    // Near the real time: Redis expires window entries by its own clock.
    let mut now = now_ms();
    let mut ledger = NonceLedger::<u64>::new();
    let mut used = Vec::new();
    for step in steps {
        let &(key, window, _, _, _, advance) = step;
        let key = first_key + key;
        now += advance;
        let mode = NonceMode::from_window_flag(window);
        let mark = ledger.book(&key).and_then(NonceBook::high_water);
        let nonce = nonce_of(step, now, mark, &used);
        let expected_check = ledger.book(&key).map_or_else(
            || NonceBook::new().check(nonce, mode, now),
            |book| book.check(nonce, mode, now),
        );
        let checked = store
            .check(key, nonce, mode, now)
            .await
            .map_err(|e| TestCaseError::fail(format!("check: store error {e}")))?;
        prop_assert_eq!(
            checked,
            expected_check,
            "check of {:?} nonce {} at {} (mark {:?})",
            mode,
            nonce,
            now,
            mark
        );
        let expected = ledger.consume(key, nonce, mode, now);
        let got = store
            .consume(key, nonce, mode, now)
            .await
            .map_err(|e| TestCaseError::fail(format!("consume: store error {e}")))?;
        prop_assert_eq!(
            got,
            expected,
            "consume of {:?} nonce {} at {} (mark {:?})",
            mode,
            nonce,
            now,
            mark
        );
        used.push(nonce);
    }
    Ok(())
}

#[test]
fn every_store_matches_the_reference_model() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let steps = proptest::collection::vec(
        (
            0u64..3,
            any::<bool>(),
            0u8..10,
            any::<u64>(),
            -7_000i64..=7_000,
            0u64..800,
        ),
        1..40,
    );
    for kind in KINDS {
        let backend = runtime.block_on(open(kind, "model", 1));
        let mut runner = TestRunner::new(Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&steps, |steps| {
            runtime.block_on(run_case(backend.store(), &steps))
        });
        if let Err(e) = result {
            panic!("{kind:?} differs from the reference model: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u64_nonces_are_exact_at_2_pow_53_and_near_u64_max() {
    on_every_backend("float_trap", 1, |backend| async move {
        let (kind, store) = (backend.kind, backend.store());
        let now = now_ms();
        let key = fresh_keys(3);
        let strict = |n| store.consume(key, n, NonceMode::Strict, now);
        // As doubles, 2^53 and 2^53 + 1 are the same number.
        assert_eq!(ok(kind, strict(POW53).await), Ok(()), "{kind:?}");
        assert_eq!(ok(kind, strict(POW53 + 1).await), Ok(()), "{kind:?}");
        assert_eq!(
            ok(kind, strict(POW53 + 1).await),
            Err(ApiError::NonceNotIncreasing),
            "{kind:?}"
        );
        assert_eq!(ok(kind, strict(i64::MAX as u64).await), Ok(()), "{kind:?}");
        assert_eq!(
            ok(kind, strict(i64::MAX as u64 + 1).await),
            Ok(()),
            "{kind:?}"
        );
        assert_eq!(ok(kind, strict(u64::MAX - 1).await), Ok(()), "{kind:?}");
        assert_eq!(ok(kind, strict(u64::MAX).await), Ok(()), "{kind:?}");
        assert_eq!(
            ok(kind, strict(u64::MAX).await),
            Err(ApiError::NonceNotIncreasing),
            "{kind:?}"
        );
        // The other way round: 2^53 + 1 then 2^53.
        let other = key + 1;
        let strict = |n| store.consume(other, n, NonceMode::Strict, now);
        assert_eq!(ok(kind, strict(POW53 + 1).await), Ok(()), "{kind:?}");
        assert_eq!(
            ok(kind, strict(POW53).await),
            Err(ApiError::NonceNotIncreasing),
            "{kind:?}"
        );
        // A fresh key accepts 0, once.
        let fresh = key + 2;
        let strict = |n| store.consume(fresh, n, NonceMode::Strict, now);
        assert_eq!(ok(kind, strict(0).await), Ok(()), "{kind:?}");
        assert_eq!(
            ok(kind, strict(0).await),
            Err(ApiError::NonceNotIncreasing),
            "{kind:?}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Concurrency, check, health
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_over_two_instances_are_accepted_once() {
    on_every_backend("concurrency", 2, |backend| async move {
        let kind = backend.kind;
        let now = now_ms();
        for (mode, nonce, rejection) in [
            (NonceMode::Strict, 42, ApiError::NonceNotIncreasing),
            (NonceMode::Window, now + 3, ApiError::NonceReused),
        ] {
            let key = fresh_keys(1);
            let tasks: Vec<_> = (0..200)
                .map(|i| {
                    let store = Arc::clone(&backend.stores[i % backend.stores.len()]);
                    tokio::spawn(async move { store.consume(key, nonce, mode, now).await })
                })
                .collect();
            let mut accepted = 0;
            for task in tasks {
                match ok(kind, task.await.expect("task")) {
                    Ok(()) => accepted += 1,
                    Err(row) => assert_eq!(row, rejection, "{kind:?} {mode:?}"),
                }
            }
            assert_eq!(accepted, 1, "{kind:?} {mode:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_never_writes() {
    on_every_backend("check", 1, |backend| async move {
        let (kind, store) = (backend.kind, backend.store());
        let now = now_ms();
        let key = fresh_keys(2);
        let check = |n, mode| store.check(key, n, mode, now);
        let consume = |n, mode| store.consume(key, n, mode, now);
        let (strict, window) = (NonceMode::Strict, NonceMode::Window);

        // Strict: a checked nonce is still accepted, once.
        assert_eq!(ok(kind, check(5, strict).await), Ok(()), "{kind:?}");
        assert_eq!(ok(kind, check(5, strict).await), Ok(()), "{kind:?}");
        assert_eq!(ok(kind, consume(5, strict).await), Ok(()), "{kind:?}");
        let not_increasing = Err(ApiError::NonceNotIncreasing);
        assert_eq!(ok(kind, check(5, strict).await), not_increasing, "{kind:?}");
        assert_eq!(ok(kind, check(6, strict).await), Ok(()), "{kind:?}");

        // Window: the same, and the time check comes first.
        let n = now + 1;
        assert_eq!(ok(kind, check(n, window).await), Ok(()), "{kind:?}");
        assert_eq!(ok(kind, check(n, window).await), Ok(()), "{kind:?}");
        assert_eq!(ok(kind, consume(n, window).await), Ok(()), "{kind:?}");
        let reused = Err(ApiError::NonceReused);
        assert_eq!(ok(kind, check(n, window).await), reused, "{kind:?}");
        assert_eq!(ok(kind, consume(n, window).await), reused, "{kind:?}");
        for (n, row) in [
            (now + 5_001, ApiError::NonceTooNew),
            (now - 5_001, ApiError::NonceTooOld),
        ] {
            assert_eq!(ok(kind, check(n, window).await), Err(row), "{kind:?}");
            assert_eq!(ok(kind, consume(n, window).await), Err(row), "{kind:?}");
        }
        // The window acceptance raised the mark.
        assert_eq!(ok(kind, check(n, strict).await), not_increasing, "{kind:?}");

        // A window-mode check does not raise the mark of a fresh key.
        let other = key + 1;
        let answer = store.check(other, now, window, now).await;
        assert_eq!(ok(kind, answer), Ok(()), "{kind:?}");
        let answer = store.consume(other, 1, strict, now).await;
        assert_eq!(ok(kind, answer), Ok(()), "{kind:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_a_clock_close_to_ours() {
    on_every_backend("health", 1, |backend| async move {
        let (kind, store) = (backend.kind, backend.store());
        let health = store.health().await.expect("healthy");
        match (kind, health) {
            (Kind::Journal, StoreHealth { clock_ms }) => assert_eq!(clock_ms, None),
            (_, StoreHealth { clock_ms }) => {
                let theirs = clock_ms.expect("a remote store reports its clock");
                let ours = now_ms();
                assert!(
                    theirs.abs_diff(ours) < 5_000,
                    "{kind:?}: {theirs} vs {ours}"
                );
            }
        }
        store.flush().await.expect("flush");
        assert!(
            store
                .metrics()
                .iter()
                .all(|(name, _, _)| name.starts_with("wbauth_")),
            "{kind:?}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Outages and durability
// ---------------------------------------------------------------------------------------------

/// Waits (bounded) until the store answers again, by itself.
async fn wait_for_recovery(store: &dyn NonceStore, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.health().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "{what}: the store did not recover within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Accepts nonces, lets `kill` crash the server, checks the store fails closed, lets
/// `restart` bring it back and checks the store recovers with its state.
async fn outage_drill(
    what: &str,
    store: &dyn NonceStore,
    kill: impl FnOnce(),
    restart: impl FnOnce(),
) {
    let now = now_ms();
    let key = fresh_keys(1);
    // The largest window nonce allowed: its entry lives the longest (`now + 15 s`).
    let late = now + 5_000;
    let (strict, window) = (NonceMode::Strict, NonceMode::Window);
    let answer = store.consume(key, 100, strict, now).await;
    assert_eq!(answer.expect(what), Ok(()), "{what}");
    let answer = store.consume(key, late, window, now).await;
    assert_eq!(answer.expect(what), Ok(()), "{what}");

    kill();
    for nonce in [101, late + 1] {
        let answer = store.consume(key, nonce, strict, now).await;
        assert!(answer.is_err(), "{what}: answered {answer:?} while down");
    }
    let answer = store.consume(key, late - 1, window, now).await;
    assert!(answer.is_err(), "{what}: answered {answer:?} while down");
    assert!(store.check(key, 101, strict, now).await.is_err(), "{what}");
    assert!(store.health().await.is_err(), "{what}");

    restart();
    wait_for_recovery(store, what).await;
    // The mark survived: no replay; the window entry too.
    let not_increasing = Err(ApiError::NonceNotIncreasing);
    let answer = store.consume(key, late, strict, now).await;
    assert_eq!(answer.expect(what), not_increasing, "{what}");
    let answer = store.consume(key, late, window, now).await;
    assert_eq!(answer.expect(what), Err(ApiError::NonceReused), "{what}");
    // Nonces never accepted before the crash are accepted now, once.
    let answer = store.consume(key, late - 1, window, now).await;
    assert_eq!(answer.expect(what), Ok(()), "{what}");
    let answer = store.consume(key, late + 1, strict, now).await;
    assert_eq!(answer.expect(what), Ok(()), "{what}");
    let answer = store.consume(key, late + 1, strict, now).await;
    assert_eq!(answer.expect(what), not_increasing, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_closed_and_the_marks_survive_a_restart() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("join")
        .expect("redis-server starts");
    let redis = std::sync::Mutex::new(redis);
    let url = redis.lock().expect("lock").url();
    let store = RedisNonceStore::connect(&url, &short_options())
        .await
        .expect("connect");
    outage_drill(
        "redis",
        &store,
        || redis.lock().expect("lock").kill(),
        || {
            redis
                .lock()
                .expect("lock")
                .restart()
                .expect("redis restarts")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_fails_closed_and_the_marks_survive_a_restart() {
    let pg = tokio::task::spawn_blocking(PostgresServer::start)
        .await
        .expect("join")
        .expect("postgres starts");
    let url = pg.create_database("outage").expect("create database");
    let pg = std::sync::Mutex::new(pg);
    let store = PgNonceStore::connect(&url, &short_options())
        .await
        .expect("connect");
    outage_drill(
        "postgres",
        &store,
        || pg.lock().expect("lock").kill(),
        || {
            pg.lock()
                .expect("lock")
                .restart()
                .expect("postgres restarts")
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Redis only
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_without_durability_is_refused_unless_overridden() {
    let start = |args: &'static [&'static str]| async move {
        tokio::task::spawn_blocking(move || RedisServer::start_with(args))
            .await
            .expect("join")
            .expect("redis-server starts")
    };
    for (args, found) in [
        (&["--appendonly", "no"][..], "appendonly no"),
        (
            &["--appendonly", "yes", "--appendfsync", "everysec"][..],
            "appendfsync everysec",
        ),
        (
            &["--appendonly", "yes", "--rename-command", "CONFIG", ""][..],
            "CONFIG GET",
        ),
    ] {
        let redis = start(args).await;
        match RedisNonceStore::connect(&redis.url(), &options()).await {
            Err(StoreError::Refused(message)) => {
                assert!(message.contains(found), "{args:?}: {message}");
                assert!(
                    message.contains("store.redis_allow_non_durable = true"),
                    "{args:?}: {message}"
                );
            }
            other => panic!("{args:?}: {other:?}"),
        }
        let overridden = RemoteOptions {
            allow_non_durable: true,
            ..options()
        };
        let store = RedisNonceStore::connect(&redis.url(), &overridden)
            .await
            .expect("accepted with the override");
        let answer = store.consume(1, 1, NonceMode::Strict, now_ms()).await;
        assert_eq!(ok(Kind::Redis, answer), Ok(()), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_errors_never_show_the_password() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("join")
        .expect("redis-server starts");
    // Set after the start: the test kit's readiness probe is an unauthenticated PING.
    let client = redis::Client::open(redis.url()).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection");
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("Sup3rSecret")
        .query_async(&mut con)
        .await
        .expect("CONFIG SET requirepass");
    let with_password = |password: &str| {
        redis
            .url()
            .replacen("redis://", &format!("redis://:{password}@"), 1)
    };
    match RedisNonceStore::connect(&with_password("N0tTheSecret"), &short_options()).await {
        Err(StoreError::Unavailable(message)) => {
            assert!(!message.contains("N0tTheSecret"), "{message}");
            assert!(message.contains(":***@"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let store = RedisNonceStore::connect(&with_password("Sup3rSecret"), &options())
        .await
        .expect("connect with the password");
    assert!(!format!("{store:?}").contains("Sup3rSecret"));
    let answer = store.consume(1, 1, NonceMode::Strict, now_ms()).await;
    assert_eq!(ok(Kind::Redis, answer), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreadable_mark_is_corrupt_and_left_alone() {
    let url = tokio::task::spawn_blocking(|| REDIS.url())
        .await
        .expect("redis started");
    let store = RedisNonceStore::connect(&url, &options())
        .await
        .expect("connect");
    let key = fresh_keys(1);
    let mark = format!("wbauth:{{k{key}}}:hw");
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection");
    // A float-looking value, as a naive script would have written it.
    let () = redis::cmd("SET")
        .arg(&mark)
        .arg("9.007199254740992e15")
        .query_async(&mut con)
        .await
        .expect("SET");
    let now = now_ms();
    for mode in [NonceMode::Strict, NonceMode::Window] {
        let answer = store.consume(key, now, mode, now).await;
        assert!(
            matches!(answer, Err(StoreError::Corrupt(_))),
            "{mode:?}: {answer:?}"
        );
        let answer = store.check(key, now, mode, now).await;
        assert!(
            matches!(answer, Err(StoreError::Corrupt(_))),
            "{mode:?}: {answer:?}"
        );
    }
    let value: String = redis::cmd("GET")
        .arg(&mark)
        .query_async(&mut con)
        .await
        .expect("GET");
    assert_eq!(value, "9.007199254740992e15");
    let entries: Vec<String> = redis::cmd("KEYS")
        .arg(format!("wbauth:{{k{key}}}:w:*"))
        .query_async(&mut con)
        .await
        .expect("KEYS");
    assert!(entries.is_empty(), "{entries:?}");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL only
// ---------------------------------------------------------------------------------------------

fn count_window_rows(database: &str) -> u64 {
    POSTGRES
        .psql(database, "SELECT count(*) FROM nonce_window")
        .expect("psql")
        .trim()
        .parse()
        .expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sweep_deletes_expired_rows_only() {
    let backend = open(Kind::Postgres, "sweep", 1).await;
    let store = backend.store();
    let database = backend.database.clone().expect("a database");
    let now = now_ms();
    let key = fresh_keys(1);
    let window = NonceMode::Window;
    let (early, late) = (now - 4_000, now + 4_000);
    for n in [early, late] {
        assert_eq!(
            ok(Kind::Postgres, store.consume(key, n, window, now).await),
            Ok(())
        );
    }
    // Long-expired rows of another key: more than one sweep batch.
    let db = database.clone();
    tokio::task::spawn_blocking(move || {
        POSTGRES
            .psql(
                &db,
                "INSERT INTO nonce_window (key_id, nonce, expires_ms) \
                 SELECT 999999999, g, g FROM generate_series(1, 2500) AS g",
            )
            .expect("insert expired rows");
    })
    .await
    .expect("join");
    let db = database.clone();
    let count = move || {
        let db = db.clone();
        async move {
            tokio::task::spawn_blocking(move || count_window_rows(&db))
                .await
                .expect("join")
        }
    };
    assert_eq!(count().await, 2_502);

    // Nothing of the live entries goes.
    assert_eq!(store.sweep(now).await.expect("sweep"), 2_500);
    assert_eq!(count().await, 2);
    for n in [early, late] {
        let answer = store.consume(key, n, window, now).await;
        assert_eq!(ok(Kind::Postgres, answer), Err(ApiError::NonceReused));
    }
    // `early` expires at early + 10 s = now + 6 s; `late` lives on.
    assert_eq!(store.sweep(now + 5_999).await.expect("sweep"), 0);
    assert_eq!(store.sweep(now + 6_000).await.expect("sweep"), 1);
    assert_eq!(count().await, 1);
    let answer = store.consume(key, late, window, now + 9_000).await;
    assert_eq!(ok(Kind::Postgres, answer), Err(ApiError::NonceReused));
    let answer = store.consume(key, early, window, now + 9_000).await;
    assert_eq!(ok(Kind::Postgres, answer), Err(ApiError::NonceTooOld));
    assert_eq!(store.sweep(now + 6_000).await.expect("sweep"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_key_ids_beyond_bigint() {
    let backend = open(Kind::Postgres, "key_range", 1).await;
    let store = backend.store();
    let now = now_ms();
    let answer = store.consume(1 << 63, 1, NonceMode::Strict, now).await;
    assert!(matches!(answer, Err(StoreError::Corrupt(_))), "{answer:?}");
    let answer = store.check(u64::MAX, 1, NonceMode::Strict, now).await;
    assert!(matches!(answer, Err(StoreError::Corrupt(_))), "{answer:?}");
}

/// Partner tokens are single use across instances sharing a Redis or PostgreSQL nonce store;
/// a claim lives until the token expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_claims_are_single_use_across_instances() {
    use wbauth_store::Claim;
    use wbauth_store::ReplayGuard;

    let redis_url = tokio::task::spawn_blocking(|| REDIS.url())
        .await
        .expect("redis started");
    let pg_url = tokio::task::spawn_blocking(|| {
        POSTGRES
            .create_database("token_claims")
            .expect("create database")
    })
    .await
    .expect("postgres started");
    let options = options();
    let redis = || RedisNonceStore::connect(&redis_url, &options);
    let postgres = || PgNonceStore::connect(&pg_url, &options);
    let pairs: [(&str, [Arc<dyn ReplayGuard>; 2]); 2] = [
        (
            "redis",
            [
                Arc::new(redis().await.expect("redis")),
                Arc::new(redis().await.expect("redis")),
            ],
        ),
        (
            "postgres",
            [
                Arc::new(postgres().await.expect("postgres")),
                Arc::new(postgres().await.expect("postgres")),
            ],
        ),
    ];

    for (name, [first, second]) in pairs {
        let now = now_ms();
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&now.to_be_bytes());
        id[8] = name.len() as u8;
        // 100 concurrent claims of one token over two instances: one is fresh.
        let mut tasks = Vec::new();
        for i in 0..100 {
            let store = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tasks.push(tokio::spawn(async move {
                store.claim(id, now + 60_000, now).await
            }));
        }
        let mut fresh = 0;
        for task in tasks {
            match task.await.expect("task").expect("claim") {
                Claim::Fresh => fresh += 1,
                Claim::Replayed => {}
            }
        }
        assert_eq!(fresh, 1, "{name}");
        // Another token is independent.
        let mut other = id;
        other[31] = 1;
        assert_eq!(
            second.claim(other, now + 60_000, now).await.expect("claim"),
            Claim::Fresh,
            "{name}"
        );
        // An expired claim no longer counts (the token itself is refused as expired by then).
        let mut short = id;
        short[30] = 2;
        assert_eq!(
            first.claim(short, now - 1, now).await.expect("claim"),
            Claim::Fresh
        );
        assert_eq!(
            second.claim(short, now + 60_000, now).await.expect("claim"),
            Claim::Fresh,
            "{name}: an expired claim blocked a new one"
        );
        assert_eq!(
            first.claim(short, now + 60_000, now).await.expect("claim"),
            Claim::Replayed,
            "{name}"
        );
    }
}
