//! TLS to the networked stores, against real servers with certificates of a test CA:
//! PostgreSQL with `ssl = on` (`sslmode`, `sslrootcert` in the URL) and a Redis that speaks TLS
//! only (`rediss://`, [`RemoteOptions::redis_ca`]). Each refusal must say what is wrong and
//! what to do, without the URL's password, and come within the store's timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use wbauth_store::{
    KeyStore as _, MasterKey, MasterKeySource, NonceStore, PgKeyStore, PgNonceStore,
    RedisNonceStore, RemoteOptions, StoreError,
};
use wbauth_testkit::{PostgresServer, RedisServer, TestCa};
use whitebit_auth::NonceMode;

/// The CA of every server here, and its certificate in a file.
struct Ca {
    ca: TestCa,
    dir: tempfile::TempDir,
}

impl Ca {
    fn new(name: &str) -> Self {
        let ca = TestCa::new(name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Self { ca, dir }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

static CA: LazyLock<Ca> = LazyLock::new(|| Ca::new("wbauth store test CA"));
/// Another CA, which signed none of the servers.
static OTHER_CA: LazyLock<Ca> = LazyLock::new(|| Ca::new("another CA"));

/// PostgreSQL with TLS, its certificate issued for `localhost` only: reached as `localhost` the
/// name matches, reached as `127.0.0.1` it does not.
static POSTGRES_TLS: LazyLock<PostgresServer> = LazyLock::new(|| {
    PostgresServer::start_tls(&CA.ca, &["localhost"]).expect("PostgreSQL starts with ssl = on")
});
static POSTGRES_PLAIN: LazyLock<PostgresServer> =
    LazyLock::new(|| PostgresServer::start().expect("PostgreSQL starts"));
static REDIS_TLS: LazyLock<RedisServer> = LazyLock::new(|| {
    RedisServer::start_tls(&CA.ca, &["localhost", "127.0.0.1"]).expect("redis-server with TLS")
});
static REDIS_PLAIN: LazyLock<RedisServer> =
    LazyLock::new(|| RedisServer::start().expect("redis-server"));

const PASSWORD: &str = "s3cret-pw";

fn options() -> RemoteOptions {
    RemoteOptions {
        pool_size: 4,
        connect_timeout: Duration::from_secs(10),
        op_timeout: Duration::from_secs(10),
        ..RemoteOptions::default()
    }
}

fn master() -> MasterKey {
    MasterKey::from_source(&MasterKeySource::Env("ab".repeat(32))).unwrap()
}

/// A fresh database's URL, reached as `host`, with a password (trust authentication ignores
/// it: it is there to be kept out of messages) and `query`.
fn pg_url(server: &PostgresServer, host: &str, query: &str) -> String {
    let url = server.fresh_database().unwrap();
    let url = url.replace(
        "postgres@127.0.0.1:",
        &format!("postgres:{PASSWORD}@{host}:"),
    );
    format!("{url}?{query}")
}

fn verify(mode: &str, ca: &Path) -> String {
    format!("sslmode={mode}&sslrootcert={}", ca.display())
}

/// Runs `connect` bounded by a minute (far above every timeout it is given): a refusal must
/// come, never a hang.
async fn refused<T>(connect: impl Future<Output = Result<T, StoreError>>) -> String {
    let answer = tokio::time::timeout(Duration::from_secs(60), connect)
        .await
        .expect("an answer within the store's timeouts, not a hang");
    let Err(e) = answer else {
        panic!("connected where it must be refused");
    };
    let message = e.to_string();
    assert!(!message.contains(PASSWORD), "{message}");
    message
}

/// The server counts TLS connections of the gateway (`application_name` `wbauth`).
fn tls_connections(server: &PostgresServer) -> u32 {
    server
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE s.ssl AND a.application_name = 'wbauth'",
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn postgres_stores_work_over_verified_tls() {
    let url = pg_url(
        &POSTGRES_TLS,
        "localhost",
        &verify("verify-full", &CA.file()),
    );
    let keys = PgKeyStore::connect(&url, master(), &options())
        .await
        .unwrap();
    let account = keys.insert_account("alice".into(), 10).await.unwrap();
    assert_eq!(
        keys.get_account("alice".into()).await.unwrap(),
        Some(account)
    );
    let nonces = PgNonceStore::connect(&url, &options()).await.unwrap();
    let strict = NonceMode::Strict;
    assert_eq!(nonces.consume(1, 5, strict, 0).await.unwrap(), Ok(()));
    assert!(nonces.consume(1, 5, strict, 0).await.unwrap().is_err());
    assert!(tls_connections(&POSTGRES_TLS) >= 2);
}

#[tokio::test]
async fn postgres_refuses_a_certificate_of_another_ca() {
    let url = pg_url(
        &POSTGRES_TLS,
        "localhost",
        &verify("verify-full", &OTHER_CA.file()),
    );
    let message = refused(PgNonceStore::connect(&url, &options())).await;
    let ca = OTHER_CA.file().display().to_string();
    assert!(
        message.contains(&format!("not signed by the CA in {ca}")),
        "{message}"
    );
    assert!(message.contains("sslrootcert=FILE"), "{message}");
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let url = pg_url(
        &POSTGRES_TLS,
        "127.0.0.1",
        &verify("verify-full", &CA.file()),
    );
    let message = refused(PgNonceStore::connect(&url, &options())).await;
    assert!(
        message.contains("not issued for the host name in the URL"),
        "{message}"
    );
    assert!(
        message.contains("sslmode=verify-ca checks the CA only"),
        "{message}"
    );
    let url = pg_url(&POSTGRES_TLS, "127.0.0.1", &verify("verify-ca", &CA.file()));
    let nonces = PgNonceStore::connect(&url, &options()).await.unwrap();
    assert_eq!(
        nonces.consume(1, 7, NonceMode::Strict, 0).await.unwrap(),
        Ok(())
    );
}

#[tokio::test]
async fn postgres_without_ssl_refuses_sslmode_require() {
    let url = pg_url(&POSTGRES_PLAIN, "127.0.0.1", "sslmode=require");
    let message = refused(PgNonceStore::connect(&url, &options())).await;
    assert!(message.contains("does not speak TLS"), "{message}");
    assert!(message.contains("ssl = on, ssl_cert_file"), "{message}");
    // A CA file that is not there is named before any connection is tried.
    let url = pg_url(
        &POSTGRES_PLAIN,
        "127.0.0.1",
        "sslmode=verify-full&sslrootcert=nope.pem",
    );
    let message = refused(PgNonceStore::connect(&url, &options())).await;
    assert!(
        message.contains("cannot read the CA file nope.pem"),
        "{message}"
    );
}

fn with_ca(ca: &Path) -> RemoteOptions {
    RemoteOptions {
        redis_ca: Some(ca.to_owned()),
        ..options()
    }
}

/// `url` with a password: Redis here asks for none, so a password is sent with `AUTH`… which
/// a Redis without one refuses; only the refusals use it.
fn with_password(url: &str) -> String {
    url.replacen("://", &format!("://:{PASSWORD}@"), 1)
}

#[tokio::test]
async fn redis_works_over_tls_with_the_ca() {
    let url = REDIS_TLS.fresh_database_url();
    assert!(url.starts_with("rediss://"), "{url}");
    let store = RedisNonceStore::connect(&url, &with_ca(&CA.file()))
        .await
        .unwrap();
    let window = NonceMode::Window;
    let now = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert_eq!(store.consume(1, now, window, now).await.unwrap(), Ok(()));
    assert!(store.consume(1, now, window, now).await.unwrap().is_err());
    assert_eq!(
        store.consume(1, now + 1, window, now).await.unwrap(),
        Ok(())
    );
}

#[tokio::test]
async fn redis_refuses_a_certificate_of_another_ca() {
    let url = with_password(&REDIS_TLS.fresh_database_url());
    let message = refused(RedisNonceStore::connect(&url, &with_ca(&OTHER_CA.file()))).await;
    let ca = OTHER_CA.file().display().to_string();
    assert!(
        message.contains(&format!("not signed by the CA in {ca}")),
        "{message}"
    );
    assert!(message.contains("[store] redis_ca"), "{message}");
    // Without redis_ca, the system's roots do not know the test CA either.
    let message = refused(RedisNonceStore::connect(&url, &options())).await;
    assert!(message.contains("the system's trusted roots"), "{message}");
}

#[tokio::test]
async fn plain_and_tls_ports_are_not_mixed_up() {
    let plain_to_tls = with_password(
        &REDIS_TLS
            .fresh_database_url()
            .replacen("rediss", "redis", 1),
    );
    let message = refused(RedisNonceStore::connect(&plain_to_tls, &options())).await;
    assert!(message.contains("write rediss://"), "{message}");
    let tls_to_plain = with_password(
        &REDIS_PLAIN
            .fresh_database_url()
            .replacen("redis", "rediss", 1),
    );
    let message = refused(RedisNonceStore::connect(
        &tls_to_plain,
        &with_ca(&CA.file()),
    ))
    .await;
    assert!(
        message.contains("write redis:// for a plain port"),
        "{message}"
    );
}
