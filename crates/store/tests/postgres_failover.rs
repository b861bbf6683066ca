//! The PostgreSQL stores with a synchronous standby (`pg_basebackup`, loopback): start-up
//! refuses a primary whose commits do not wait for a standby when `require_sync_standby`,
//! never writes through a connection that landed on a standby, and after the primary is
//! killed and the standby promoted, every nonce acknowledged before is still there. Every
//! wait is bounded and ends on a condition.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wbauth_store::{NonceStore, PgNonceStore, RemoteOptions, StoreError};
use wbauth_testkit::PostgresServer;
use whitebit_auth::{ApiError, NonceMode};

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("ms fit in u64")
}

fn options(require_sync_standby: bool) -> RemoteOptions {
    RemoteOptions {
        pool_size: 4,
        connect_timeout: Duration::from_secs(5),
        op_timeout: Duration::from_secs(5),
        require_sync_standby,
        ..RemoteOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_standby_keeps_every_acknowledged_nonce_across_a_failover() {
    let mut primary = PostgresServer::start().expect("primary starts");
    // Without a synchronous standby, require_sync_standby refuses to start.
    let url = primary.fresh_database().expect("database");
    match PgNonceStore::connect(&url, &options(true)).await {
        Err(StoreError::Refused(message)) => assert!(
            message.contains("synchronous_standby_names is empty")
                && message.contains("store.require_sync_standby = true"),
            "{message}"
        ),
        other => panic!("async primary: {other:?}"),
    }
    let standby = PostgresServer::start_standby_of(&primary, "standby1").expect("standby");
    primary
        .make_synchronous("standby1")
        .expect("synchronous standby");
    // synchronous_commit = off is refused too.
    let db = url.rsplit('/').next().expect("db name").to_owned();
    primary
        .psql(
            "postgres",
            &format!("ALTER DATABASE \"{db}\" SET synchronous_commit = off"),
        )
        .expect("commit off");
    match PgNonceStore::connect(&url, &options(true)).await {
        Err(StoreError::Refused(message)) => {
            assert!(message.contains("synchronous_commit is off"), "{message}");
        }
        other => panic!("synchronous_commit off: {other:?}"),
    }
    primary
        .psql(
            "postgres",
            &format!("ALTER DATABASE \"{db}\" SET synchronous_commit = remote_apply"),
        )
        .expect("remote_apply");
    let store = PgNonceStore::connect(&url, &options(true))
        .await
        .expect("a synchronous standby is accepted");
    for nonce in 1..=50u64 {
        let answer = store.consume(1, nonce, NonceMode::Strict, now_ms()).await;
        assert!(matches!(answer, Ok(Ok(()))), "{nonce}: {answer:?}");
    }
    // A connection to the standby is refused, never written through.
    let standby_url = format!("postgres://postgres@127.0.0.1:{}/{db}", standby.port());
    match PgNonceStore::connect(&standby_url, &options(false)).await {
        Err(StoreError::Refused(message)) => {
            assert!(message.contains("is read-only"), "{message}");
        }
        other => panic!("standby: {other:?}"),
    }
    primary.kill();
    standby.promote().expect("standby promoted");
    let store = PgNonceStore::connect(&standby_url, &options(false))
        .await
        .expect("the promoted standby takes writes");
    for nonce in 1..=50u64 {
        let answer = store.consume(1, nonce, NonceMode::Strict, now_ms()).await;
        assert!(
            matches!(answer, Ok(Err(ApiError::NonceNotIncreasing))),
            "{nonce} after the failover: {answer:?}"
        );
    }
    let answer = store.consume(1, 51, NonceMode::Strict, now_ms()).await;
    assert!(matches!(answer, Ok(Ok(()))), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_a_read_only_server_are_dropped_never_written_through() {
    let server = PostgresServer::start().expect("postgres starts");
    let url = server.fresh_database().expect("database");
    let db = url.rsplit('/').next().expect("db name").to_owned();
    let store = PgNonceStore::connect(&url, &options(false))
        .await
        .expect("connects");
    let answer = store.consume(1, 1, NonceMode::Strict, now_ms()).await;
    assert!(matches!(answer, Ok(Ok(()))), "{answer:?}");
    // The server turns read-only (as a standby would be) and the store's sessions end: every
    // new connection is refused, so nothing is recorded and every answer fails closed.
    let set_read_only = |on: bool| {
        server
            .psql(
                "postgres",
                &format!("ALTER DATABASE \"{db}\" SET default_transaction_read_only = {on}"),
            )
            .expect("read-only setting");
        server
            .psql(
                "postgres",
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{db}' AND pid <> pg_backend_pid()"
                ),
            )
            .expect("sessions ended");
    };
    set_read_only(true);
    for nonce in 2..=5u64 {
        let answer = store.consume(1, nonce, NonceMode::Strict, now_ms()).await;
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "{nonce} on a read-only server: {answer:?}"
        );
    }
    // Writable again: the pool connects anew and the nonces refused above were never recorded.
    set_read_only(false);
    let mut n = 0;
    loop {
        match store.consume(1, 2, NonceMode::Strict, now_ms()).await {
            Ok(Ok(())) => break,
            Err(StoreError::Unavailable(_)) if n < 1_000 => n += 1,
            other => panic!("writable again: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
