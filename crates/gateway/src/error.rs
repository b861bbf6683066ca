//! The gateway crate's one error type.

use crate::config::ConfigError;
use wbauth_store::StoreError;

/// The gateway crate's one error type.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A store failed to open or to work.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listener could not be bound or served.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An operation was refused (bad input, unknown account, …).
    #[error("{0}")]
    Invalid(String),
}
