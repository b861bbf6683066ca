//! What the nonce-store test binaries share: one throw-away Redis and one PostgreSQL per
//! binary (started on first use), key ids never used before, the time, and stores of each
//! backend opened on them.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use wbauth_store::{
    JournalConfig, JournalNonceStore, NonceStore, PgNonceStore, RedisNonceStore, RemoteOptions,
};
use wbauth_testkit::{PostgresServer, RedisServer};

pub(crate) static REDIS: LazyLock<RedisServer> =
    LazyLock::new(|| RedisServer::start().expect("redis-server starts"));
pub(crate) static POSTGRES: LazyLock<PostgresServer> =
    LazyLock::new(|| PostgresServer::start().expect("postgres starts"));

/// Key ids never used before by this test binary (the shared Redis holds every test's keys).
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// `n` consecutive fresh key ids; the first.
pub(crate) fn fresh_keys(n: u64) -> u64 {
    NEXT_KEY.fetch_add(n, Ordering::Relaxed)
}

/// Now, Unix ms.
pub(crate) fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("ms fit in u64")
}

/// The nonce store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Journal,
    Redis,
    Postgres,
}

pub(crate) const KINDS: [Kind; 3] = [Kind::Journal, Kind::Redis, Kind::Postgres];

/// `n` stores of `kind` on the same data: the journal in `dir` (one store per directory, so
/// shared), or `n` connections to the shared Redis, or to a PostgreSQL database named `test`
/// created for it.
pub(crate) async fn open_stores(
    kind: Kind,
    test: &str,
    dir: &std::path::Path,
    n: usize,
    options: &RemoteOptions,
) -> Vec<Arc<dyn NonceStore>> {
    let mut stores: Vec<Arc<dyn NonceStore>> = Vec::with_capacity(n);
    match kind {
        Kind::Journal => {
            let journal: Arc<dyn NonceStore> = Arc::new(
                JournalNonceStore::open(JournalConfig::new(dir), now_ms())
                    .expect("open the journal store"),
            );
            stores.resize(n, journal);
        }
        Kind::Redis => {
            let url = tokio::task::spawn_blocking(|| REDIS.url())
                .await
                .expect("redis started");
            for _ in 0..n {
                let store = RedisNonceStore::connect(&url, options).await;
                stores.push(Arc::new(store.expect("connect to redis")));
            }
        }
        Kind::Postgres => {
            let name = test.to_owned();
            let url = tokio::task::spawn_blocking(move || {
                POSTGRES.create_database(&name).expect("create database")
            })
            .await
            .expect("postgres started");
            for _ in 0..n {
                let store = PgNonceStore::connect(&url, options).await;
                stores.push(Arc::new(store.expect("connect to postgres")));
            }
        }
    }
    stores
}
