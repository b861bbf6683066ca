//! The one error type of the stores.

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
    /// A unique name or key already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The master key cannot decrypt the stored secrets.
    #[error("wrong master key: {0}")]
    WrongMasterKey(String),
    /// The store answers but is not set up as the gateway requires (e.g. a Redis without
    /// `appendonly yes` and `appendfsync always`, `docs/design-decisions.md` 19).
    #[error("store refused: {0}")]
    Refused(String),
}

/// An IO error as a store error, saying what was being done.
pub(crate) fn io_error(e: std::io::Error, context: &str) -> StoreError {
    StoreError::Io(std::io::Error::new(e.kind(), format!("{context}: {e}")))
}
