//! What can go wrong loading keys and issuing tokens.

use std::io;
use std::path::PathBuf;

use whitebit_auth::JwtEndpointError;

/// Why a signing key could not be loaded, generated, written or configured. Never contains
/// key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("token key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The key file was read but holds no usable key.
    #[error("token key file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents.
        #[source]
        source: Box<KeyError>,
    },
    /// The text is not a PEM private key this module reads.
    #[error("not a usable PEM private key: {0}")]
    Pem(&'static str),
    /// The DER inside the PEM is not a supported private key.
    #[error(
        "unsupported or invalid private key (expected RSA of at least 2048 bits, P-256 or Ed25519)"
    )]
    Unsupported,
    /// aws-lc-rs could not generate or serialise a key.
    #[error("key generation or encoding failed")]
    Crypto,
    /// A configured key id is empty.
    #[error("token key id must not be empty")]
    EmptyKid,
    /// Two configured keys share one key id.
    #[error("two token keys share the key id {0:?}")]
    DuplicateKid(String),
}

/// Why [`TokenIssuer::issue`](super::TokenIssuer::issue) failed; the endpoint answers 500 "Server configuration issues"
/// for each ([`From<TokenError>`] for [`JwtEndpointError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No signing key is configured.
    #[error("no token-signing key is configured")]
    NoUsableKey,
    /// The signing operation failed.
    #[error("token signing failed")]
    Signing,
    /// The operating system gave no randomness for the `jti`.
    #[error("no randomness for the token id")]
    Randomness,
}

impl From<TokenError> for JwtEndpointError {
    fn from(_: TokenError) -> Self {
        JwtEndpointError::ServerConfiguration
    }
}
