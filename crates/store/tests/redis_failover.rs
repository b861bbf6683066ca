//! The Redis nonce store across a failover: a master, one replica and three Sentinels on
//! loopback (`wbauth_testkit::RedisHa`), reached through a `redis+sentinel://` URL with
//! `nonce_replicas_ack = 1`. Every wait is bounded and ends on a condition.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wbauth_store::{NonceStore, RedisNonceStore, RemoteOptions, StoreError};
use wbauth_testkit::{RedisHa, RedisServer};
use whitebit_auth::{ApiError, NonceMode};

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("ms fit in u64")
}

fn options(replicas_ack: u32) -> RemoteOptions {
    RemoteOptions {
        connect_timeout: Duration::from_secs(5),
        op_timeout: Duration::from_secs(1),
        nonce_replicas_ack: replicas_ack,
        ..RemoteOptions::default()
    }
}

/// One HA set at a time: each runs five servers on a shared machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_url_follows_a_failover_and_no_acknowledged_nonce_is_lost() {
    let _serial = SERIAL.lock().await;
    let mut ha = RedisHa::start(1, 3).expect("master, replica and sentinels start");
    let store = RedisNonceStore::connect(&ha.sentinel_url(0), &options(1))
        .await
        .expect("connects through the sentinels");
    let mut accepted = Vec::new();
    for nonce in 1..=50u64 {
        let answer = store.consume(1, nonce, NonceMode::Strict, now_ms()).await;
        assert!(matches!(answer, Ok(Ok(()))), "{nonce}: {answer:?}");
        accepted.push(nonce);
        let now = now_ms();
        let answer = store.consume(2, now + nonce, NonceMode::Window, now).await;
        assert!(matches!(answer, Ok(Ok(()))), "window {nonce}: {answer:?}");
        accepted.push(now + nonce);
    }
    let old = ha.kill_master().expect("master killed");
    // Once the replica is promoted it has no replica of its own: nothing can be confirmed
    // (WAIT 1), so every answer is the fail-closed error until the old master rejoins.
    let new = ha
        .wait_for_failover(old, Duration::from_secs(60))
        .expect("the sentinels promoted the replica");
    assert_ne!(new, old);
    let answer = store.consume(1, 500, NonceMode::Strict, now_ms()).await;
    assert!(
        matches!(answer, Err(StoreError::Unavailable(_))),
        "no replica: {answer:?}"
    );
    ha.rejoin(old).expect("the old master rejoins as a replica");
    let rejoined = Instant::now();
    let mut next = 1_000u64;
    loop {
        let last = match store.consume(1, next, NonceMode::Strict, now_ms()).await {
            Ok(Ok(())) => break,
            Err(StoreError::Unavailable(message)) => message,
            other => panic!("after the failover: {other:?}"),
        };
        next += 1;
        assert!(
            rejoined.elapsed() < Duration::from_secs(60),
            "never recovered: {last}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every nonce acknowledged before the kill is still known to the new master.
    for nonce in 1..=50u64 {
        let answer = store.consume(1, nonce, NonceMode::Strict, now_ms()).await;
        assert!(
            matches!(answer, Ok(Err(ApiError::NonceNotIncreasing))),
            "strict {nonce} after the failover: {answer:?}"
        );
    }
    for nonce in accepted.iter().skip(1).step_by(2) {
        let answer = store.check(2, *nonce, NonceMode::Window, now_ms()).await;
        assert!(
            matches!(
                answer,
                Ok(Err(ApiError::NonceReused | ApiError::NonceTooOld))
            ),
            "window {nonce} after the failover: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_ack_above_the_replicas_is_refused_and_a_missing_replica_fails_closed() {
    let _serial = SERIAL.lock().await;
    // A lone Redis has no replica to wait for.
    let lone = RedisServer::start().expect("redis starts");
    match RedisNonceStore::connect(&lone.url(), &options(1)).await {
        Err(StoreError::Refused(message)) => {
            assert!(
                message.contains("store.nonce_replicas_ack = 1")
                    && message.contains("0 connected replicas")
                    && message.contains("lower store.nonce_replicas_ack"),
                "{message}"
            );
        }
        other => panic!("ack 1 without replicas: {other:?}"),
    }
    let mut ha = RedisHa::start(1, 0).expect("master and replica start");
    let master = ha.server_ports()[0];
    let url = format!("redis://127.0.0.1:{master}/0");
    match RedisNonceStore::connect(&url, &options(2)).await {
        Err(StoreError::Refused(message)) => {
            assert!(message.contains("1 connected replicas"), "{message}");
        }
        other => panic!("ack 2 with one replica: {other:?}"),
    }
    let store = RedisNonceStore::connect(&url, &options(1))
        .await
        .expect("ack 1 with one replica");
    let answer = store.consume(1, 1, NonceMode::Strict, now_ms()).await;
    assert!(matches!(answer, Ok(Ok(()))), "{answer:?}");
    // The replica is gone: the write cannot be confirmed, 503.
    let replica = ha.server_ports()[1];
    ha.kill_server(replica).expect("replica killed");
    let answer = store.consume(1, 2, NonceMode::Strict, now_ms()).await;
    match answer {
        Err(StoreError::Unavailable(message)) => assert!(
            message.contains("replicas asked for") || message.contains("timed out"),
            "{message}"
        ),
        other => panic!("replica gone: {other:?}"),
    }
}
