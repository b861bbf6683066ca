//! Opening the stores `[store]` names, and the sandbox's temporary data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, DurabilityConfig, KeyBackend, NonceBackend};
use crate::error::GatewayError;
use crate::state::Stores;
use wbauth_store::secret_file;
use wbauth_store::{
    Durability, JournalConfig, JournalNonceStore, KeyStore, MASTER_KEY_ENV, MasterKey,
    MasterKeySource, NonceStore, PgKeyStore, PgNonceStore, RedisNonceStore, ReplayGuard,
    ReplayStore, SqliteKeyStore, StoreError, load_or_create_master_key,
};

/// Opens the stores `[store]` names: the embedded ones in `data_dir` by default, PostgreSQL
/// and Redis when configured (`WBAUTH_MASTER_KEY` is then required, `docs/design-decisions.md` 18).
pub async fn open_stores(config: &Config, now_ms: u64) -> Result<Stores, GatewayError> {
    let dir = &config.store.data_dir;
    create_private_dir(dir)?;
    let env_key = std::env::var(MASTER_KEY_ENV).ok().filter(|v| !v.is_empty());
    let remote = config.store.remote_options();
    // The nonce stores first: a start they refuse (a Redis that is not durable, say) must
    // leave nothing behind, and opening the key store records the master key's check value
    // in a fresh database.
    let (nonces, replay): (Arc<dyn NonceStore>, Arc<dyn ReplayGuard>) = match config
        .store
        .nonce_backend()
        .map_err(GatewayError::Invalid)?
    {
        NonceBackend::Embedded => {
            let journal = JournalNonceStore::open(
                JournalConfig {
                    dir: dir.join("nonces"),
                    durability: match config.store.durability {
                        DurabilityConfig::ProcessCrash => Durability::ProcessCrash,
                        DurabilityConfig::PowerLoss => Durability::PowerLoss,
                    },
                    ..JournalConfig::default()
                },
                now_ms,
            )?;
            let replay = ReplayStore::open(
                &dir.join("tokens"),
                config.store.durability == DurabilityConfig::PowerLoss,
                now_ms,
            )?;
            (Arc::new(journal), Arc::new(replay))
        }
        NonceBackend::Redis(url) => {
            let store = Arc::new(
                RedisNonceStore::connect(&url, &remote)
                    .await
                    .map_err(|e| at_key("store.nonces", e))?,
            );
            (store.clone(), store)
        }
        NonceBackend::Postgres(url) => {
            let store = Arc::new(
                PgNonceStore::connect(&url, &remote)
                    .await
                    .map_err(|e| at_key("store.nonces", e))?,
            );
            (store.clone(), store)
        }
    };
    let keys: Arc<dyn KeyStore> = match config.store.key_backend().map_err(GatewayError::Invalid)? {
        KeyBackend::Sqlite => {
            let master = load_or_create_master_key(dir, env_key.as_deref())?;
            Arc::new(SqliteKeyStore::open(&dir.join("keys.sqlite"), master).await?)
        }
        KeyBackend::Postgres(url) => {
            let Some(hex) = env_key.as_deref() else {
                return Err(GatewayError::Invalid(format!(
                    "store.keys: the PostgreSQL key store needs {MASTER_KEY_ENV} (64 hex \
                     characters, the same on every instance)"
                )));
            };
            let master = MasterKey::from_source(&MasterKeySource::Env(hex.to_owned()))?;
            Arc::new(
                PgKeyStore::connect(&url, master, &remote)
                    .await
                    .map_err(|e| at_key("store.keys", e))?,
            )
        }
    };
    Ok(Stores {
        keys,
        nonces,
        replay,
    })
}

/// A store error that says which `[store]` setting named the store.
fn at_key(key: &str, e: StoreError) -> StoreError {
    let with = |message: String| format!("{key}: {message}");
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(with(m)),
        StoreError::Corrupt(m) => StoreError::Corrupt(with(m)),
        StoreError::Conflict(m) => StoreError::Conflict(with(m)),
        StoreError::WrongMasterKey(m) => StoreError::WrongMasterKey(with(m)),
        StoreError::Refused(m) => StoreError::Refused(with(m)),
        io @ StoreError::Io(_) => io,
    }
}

fn create_private_dir(dir: &Path) -> Result<(), GatewayError> {
    secret_file::create_private_dir(dir).map_err(|source| GatewayError::Io {
        context: format!("creating the data directory {}", dir.display()),
        source,
    })
}
/// A temporary directory removed when dropped (the sandbox's data dir).
#[derive(Debug)]
pub struct TempDataDir {
    path: PathBuf,
}

impl TempDataDir {
    /// Creates `wbauth-sandbox-<random>` under the system temp dir.
    pub fn create() -> Result<Self, GatewayError> {
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix)
            .map_err(|e| GatewayError::Invalid(format!("no randomness: {e}")))?;
        let path = std::env::temp_dir().join(format!(
            "wbauth-sandbox-{}",
            whitebit_auth::encoding::hex_encode(&suffix)
        ));
        create_private_dir(&path)?;
        Ok(Self { path })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
