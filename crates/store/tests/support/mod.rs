//! What the key store tests insert: shared by the contract (`tests/key_stores.rs`) and the
//! embedded store's own tests (`src/sql/sqlite/tests.rs`, through `#[path]`).

use super::{NewKey, SecretBytes};

/// A `trade` key with one trusted address and one endpoint pattern, created at 1000 ms.
pub(crate) fn new_key(public_key: &str, account_id: i64, secret: &[u8]) -> NewKey {
    NewKey {
        public_key: public_key.to_owned(),
        account_id,
        kind: "trade".to_owned(),
        secret: SecretBytes::new(secret.to_vec()),
        ips: vec!["203.0.113.7".to_owned()],
        endpoints: vec!["/api/v4/order/*".to_owned()],
        created_ms: 1_000,
    }
}
