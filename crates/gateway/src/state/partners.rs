//! Fiat Gateway partners in memory: Auth Key → Enc Key (HMAC-SHA256 state cached), like the
//! API key cache. Every partner is held in memory, so an unknown `x-auth-key` never reaches a
//! store; it costs the same HMAC as a known one (`whitebit_auth::fiat::verify_partner_token`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use whitebit_auth::fiat::EncKey;

/// A partner as the request path needs it.
#[derive(Debug)]
pub struct ActivePartner {
    /// Store id.
    pub id: i64,
    /// The Auth Key (`x-auth-key`, the `key` claim).
    pub auth_key: String,
    /// A name for humans (sent upstream as `X-Auth-Partner`).
    pub name: String,
    /// The Enc Key's keyed HMAC state (the key itself is not kept here).
    pub enc: EncKey,
    /// Not disabled by an operator.
    pub enabled: bool,
}

/// All partners by Auth Key.
#[derive(Debug, Default)]
pub struct PartnerCache {
    by_auth_key: RwLock<HashMap<String, Arc<ActivePartner>>>,
}

impl PartnerCache {
    /// A cache holding `partners`.
    #[must_use]
    pub fn new(partners: Vec<ActivePartner>) -> Self {
        let map = partners
            .into_iter()
            .map(|p| (p.auth_key.clone(), Arc::new(p)))
            .collect();
        Self {
            by_auth_key: RwLock::new(map),
        }
    }

    /// The enabled partner with this Auth Key (disabled partners are treated as unknown).
    #[must_use]
    pub fn get_enabled(&self, auth_key: &str) -> Option<Arc<ActivePartner>> {
        let map = self
            .by_auth_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(auth_key).filter(|p| p.enabled).cloned()
    }

    /// Inserts or replaces a partner.
    pub fn upsert(&self, partner: ActivePartner) {
        let mut map = self
            .by_auth_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(partner.auth_key.clone(), Arc::new(partner));
    }

    /// Replaces every partner at once (a reload from the store).
    pub fn replace_all(&self, partners: Vec<ActivePartner>) {
        let map = partners
            .into_iter()
            .map(|p| (p.auth_key.clone(), Arc::new(p)))
            .collect();
        *self
            .by_auth_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = map;
    }

    /// Removes a partner.
    pub fn remove(&self, auth_key: &str) {
        let mut map = self
            .by_auth_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(auth_key);
    }

    /// Number of partners.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_auth_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
