//! What the nonce-store test binaries share: one throw-away Redis and one PostgreSQL per
//! binary (started on first use), key ids never used before, and the time.

#![allow(dead_code)]

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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
