//! Batched "last used" writes: at most one store write per key per flush interval.

use std::collections::HashMap;
use std::sync::Mutex;

use wbauth_store::{KeyId, KeyStore, StoreError};

/// Pending last-used times.
#[derive(Debug, Default)]
pub(crate) struct TouchQueue {
    pending: Mutex<HashMap<KeyId, u64>>,
}

impl TouchQueue {
    /// Notes that `key` was used at `now_ms`.
    pub(crate) fn record(&self, key: KeyId, now_ms: u64) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = pending.entry(key).or_insert(now_ms);
        *slot = (*slot).max(now_ms);
    }

    /// Writes everything pending in one batch.
    pub(crate) async fn flush(&self, store: &dyn KeyStore) -> Result<(), StoreError> {
        let batch: Vec<(KeyId, u64)> = {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.drain().collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        store.touch_keys(batch).await
    }
}
