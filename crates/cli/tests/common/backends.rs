//! Every combination of key store and nonce store, for suites that run once per backend.
//!
//! One Redis and one PostgreSQL server per test binary (started on first use, on free
//! loopback ports, stopped with the binary); each gateway gets a fresh PostgreSQL database
//! and a fresh Redis database, so tests sharing a server keep apart.

use std::path::PathBuf;
use std::sync::LazyLock;

use wbauth_testkit::{PostgresServer, RedisServer, TestCa};

/// The master key the tests give gateways on the PostgreSQL key store (it needs one).
pub const MASTER_KEY: &str = "8f3c2a1b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

static REDIS: LazyLock<RedisServer> =
    LazyLock::new(|| RedisServer::start().expect("redis-server starts (./test.sh installs it)"));
static POSTGRES: LazyLock<PostgresServer> =
    LazyLock::new(|| PostgresServer::start().expect("PostgreSQL starts (./test.sh installs it)"));

/// The shared Redis server of this test binary.
pub fn redis() -> &'static RedisServer {
    &REDIS
}

/// The shared PostgreSQL server of this test binary.
pub fn postgres() -> &'static PostgresServer {
    &POSTGRES
}

/// Which stores a gateway runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite keys, journal nonces (the default).
    Embedded,
    /// SQLite keys, Redis nonces.
    SqliteRedis,
    /// SQLite keys, PostgreSQL nonces.
    SqlitePostgres,
    /// PostgreSQL keys, journal nonces.
    PostgresEmbedded,
    /// PostgreSQL keys, Redis nonces.
    PostgresRedis,
    /// PostgreSQL keys and nonces.
    PostgresPostgres,
}

/// `[store]` values for one gateway (or several sharing the same stores).
#[derive(Debug, Clone)]
pub struct StoreUrls {
    /// `store.keys`.
    pub keys: String,
    /// `store.nonces`.
    pub nonces: String,
    /// `store.redis_ca`: the CA of a `rediss://` nonce store.
    pub redis_ca: Option<PathBuf>,
}

impl StoreUrls {
    /// PostgreSQL keys with embedded nonces: one instance only, said explicitly (the gateway
    /// refuses the combination otherwise).
    fn per_instance_nonces(&self) -> bool {
        self.keys.starts_with("postgres") && self.nonces == "embedded"
    }

    /// The `WBAUTH_GATEWAY__STORE__…` and `WBAUTH_MASTER_KEY` variables.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("WBAUTH_GATEWAY__STORE__KEYS".into(), self.keys.clone()),
            ("WBAUTH_GATEWAY__STORE__NONCES".into(), self.nonces.clone()),
            ("WBAUTH_MASTER_KEY".into(), MASTER_KEY.into()),
        ];
        if self.per_instance_nonces() {
            env.push((
                "WBAUTH_GATEWAY__STORE__ALLOW_PER_INSTANCE_NONCES".into(),
                "true".into(),
            ));
        }
        if let Some(ca) = &self.redis_ca {
            env.push((
                "WBAUTH_GATEWAY__STORE__REDIS_CA".into(),
                ca.display().to_string(),
            ));
        }
        env
    }

    /// The same as TOML lines of a `[store]` section (without the header).
    pub fn toml(&self) -> String {
        let mut toml = format!("keys = {:?}\nnonces = {:?}\n", self.keys, self.nonces);
        if self.per_instance_nonces() {
            toml.push_str("allow_per_instance_nonces = true\n");
        }
        if let Some(ca) = &self.redis_ca {
            toml.push_str(&format!("redis_ca = {:?}\n", ca.display().to_string()));
        }
        toml
    }
}

impl Backend {
    /// Fresh, empty stores of this combination (servers started on first use).
    pub fn stores(self) -> StoreUrls {
        let pg = || postgres().fresh_database().expect("a fresh database");
        let redis = || redis().fresh_database_url();
        let (keys, nonces) = match self {
            Backend::Embedded => ("sqlite".to_owned(), "embedded".to_owned()),
            Backend::SqliteRedis => ("sqlite".to_owned(), redis()),
            Backend::SqlitePostgres => ("sqlite".to_owned(), pg()),
            Backend::PostgresEmbedded => (pg(), "embedded".to_owned()),
            Backend::PostgresRedis => (pg(), redis()),
            Backend::PostgresPostgres => {
                let url = pg();
                (url.clone(), url)
            }
        };
        StoreUrls {
            keys,
            nonces,
            redis_ca: None,
        }
    }
}

/// A PostgreSQL with `ssl = on` and a Redis that speaks TLS only, both with certificates of
/// one test CA for `localhost` and `127.0.0.1`; the CA's certificate in a file.
pub struct TlsServers {
    /// PostgreSQL, plain and TLS connections on one port.
    pub postgres: PostgresServer,
    /// Redis on its `tls-port` only.
    pub redis: RedisServer,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

static TLS: LazyLock<TlsServers> = LazyLock::new(|| {
    let ca = TestCa::new("wbauth test stores CA").expect("a test CA");
    let dir = tempfile::tempdir().expect("a directory for the CA");
    let ca_file = dir.path().join("stores-ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("the CA file");
    let names = ["localhost", "127.0.0.1"];
    TlsServers {
        postgres: PostgresServer::start_tls(&ca, &names).expect("PostgreSQL starts with ssl = on"),
        redis: RedisServer::start_tls(&ca, &names).expect("redis-server starts with TLS"),
        ca_file,
        _dir: dir,
    }
});

/// The TLS servers of this test binary (started on first use).
pub fn tls_servers() -> &'static TlsServers {
    &TLS
}

impl TlsServers {
    /// Fresh stores reached over TLS and fully checked: PostgreSQL with
    /// `sslmode=verify-full&sslrootcert=…`, Redis with `rediss://` and `redis_ca`.
    pub fn stores(&self, nonces: Nonces) -> StoreUrls {
        let keys = format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            self.postgres.fresh_database().expect("a fresh database"),
            self.ca_file.display()
        );
        let (nonces, redis_ca) = match nonces {
            Nonces::Redis => (self.redis.fresh_database_url(), Some(self.ca_file.clone())),
            Nonces::Postgres => (keys.clone(), None),
        };
        StoreUrls {
            keys,
            nonces,
            redis_ca,
        }
    }
}

/// Generates one test per backend for each named `async fn NAME(backend: Backend)`:
/// `mod NAME { embedded, sqlite_redis, … }`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        $(
            $crate::on_every_backend!(@tests $name:
                embedded Embedded,
                sqlite_redis SqliteRedis,
                sqlite_postgres SqlitePostgres,
                postgres_embedded PostgresEmbedded,
                postgres_redis PostgresRedis,
                postgres_postgres PostgresPostgres,
            );
        )+
    };
    (@tests $name:ident: $($test:ident $backend:ident,)+) => {
        mod $name {
            use super::common::backends::Backend;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$name(Backend::$backend).await;
                }
            )+
        }
    };
}

/// Which nonce store gateways share in a multi-instance test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nonces {
    /// A Redis server.
    Redis,
    /// The PostgreSQL server of the key store.
    Postgres,
}

/// Servers of one test's own, for tests that stop, pause or kill them (doing that to the
/// servers shared by a test binary would disturb the other tests).
pub struct OwnServers {
    /// Holds the key store (and the nonces with [`Nonces::Postgres`]).
    pub postgres: PostgresServer,
    /// Holds the nonces with [`Nonces::Redis`].
    pub redis: Option<RedisServer>,
}

impl OwnServers {
    /// Starts PostgreSQL (and Redis for [`Nonces::Redis`]) and names the stores on them.
    pub fn start(nonces: Nonces) -> (Self, StoreUrls) {
        let postgres = PostgresServer::start().expect("postgres starts");
        let keys = postgres.fresh_database().expect("a database");
        let (redis, nonce_url) = match nonces {
            Nonces::Redis => {
                let redis = RedisServer::start().expect("redis starts");
                let url = redis.url();
                (Some(redis), url)
            }
            Nonces::Postgres => (None, keys.clone()),
        };
        (
            Self { postgres, redis },
            StoreUrls {
                keys,
                nonces: nonce_url,
                redis_ca: None,
            },
        )
    }
}
