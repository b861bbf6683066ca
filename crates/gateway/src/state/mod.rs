//! What the gateway holds in memory between requests: every key, the Fiat Gateway partners,
//! and the batched last-used times waiting to be written.

pub(crate) mod keys;
pub(crate) mod partners;
pub(crate) mod touch;

use std::sync::Arc;

use wbauth_store::{KeyStore, NonceStore, ReplayGuard};

/// The opened stores.
pub struct Stores {
    /// Keys, accounts and partners.
    pub keys: Arc<dyn KeyStore>,
    /// Nonces.
    pub nonces: Arc<dyn NonceStore>,
    /// Single use of Fiat Gateway partner tokens (on the nonce store's backend).
    pub replay: Arc<dyn ReplayGuard>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
