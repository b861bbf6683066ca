//! Stores behind traits: keys and accounts, and nonces. Backends live side by side in this
//! module; the embedded defaults need nothing installed.

pub mod journal;

use std::future::Future;
use std::pin::Pin;

use whitebit_auth::{ApiError, NonceMode};

/// A boxed future, so the store traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store could not do its job: the request must fail closed (503).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// IO on the store's files or connection failed.
    #[error("store IO error: {0}")]
    Io(#[from] std::io::Error),
    /// The store is unreachable or shutting down.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's data is not what this version understands.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
}

/// The identity of an API key inside the stores (never the public key string, never reused).
pub type KeyId = u64;

/// Records accepted nonces durably and applies the rules of `whitebit_auth::nonce`.
///
/// `consume` answers `Ok(Ok(()))` only once the nonce is recorded so that no crash can let
/// it be accepted again; `Ok(Err(row))` is a rule rejection (row 16), `Err` a store failure.
pub trait NonceStore: Send + Sync + 'static {
    /// A read-only check (what the rate limiter asks before counting a request).
    fn check(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Result<(), ApiError>, StoreError>>;

    /// Checks and, when accepted, durably records the nonce.
    fn consume(
        &self,
        key: KeyId,
        nonce: u64,
        mode: NonceMode,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Result<(), ApiError>, StoreError>>;

    /// Makes everything accepted so far durable (called on shutdown).
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}
