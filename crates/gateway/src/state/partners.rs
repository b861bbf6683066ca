//! Fiat Gateway partners in memory: Auth Key → Enc Key (HMAC-SHA256 state cached), like the
//! API key cache. Every partner is held in memory, so an unknown `x-auth-key` never reaches a
//! store; it costs the same HMAC as a known one (`whitebit_auth::fiat::verify_partner_token`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use whitebit_auth::fiat::EncKey;

use wbauth_store::PartnerRecord;

/// A partner as the request path needs it.
#[derive(Debug)]
pub(crate) struct ActivePartner {
    /// The Auth Key (`x-auth-key`, the `key` claim).
    pub(crate) auth_key: String,
    /// The Enc Key's keyed HMAC state (the key itself is not kept here).
    pub(crate) enc: EncKey,
    /// Not disabled by an operator.
    pub(crate) enabled: bool,
}

impl ActivePartner {
    /// The in-memory form of a stored partner (the Enc Key becomes a keyed HMAC state).
    #[must_use]
    pub(crate) fn from_record(record: &PartnerRecord) -> Self {
        Self {
            auth_key: record.auth_key.clone(),
            enc: EncKey::new(record.enc_key.0.expose()),
            enabled: record.enabled,
        }
    }
}

/// All partners by Auth Key.
#[derive(Debug, Default)]
pub(crate) struct PartnerCache {
    by_auth_key: RwLock<HashMap<String, Arc<ActivePartner>>>,
}

impl PartnerCache {
    /// A cache holding every stored partner (what the gateway builds at start).
    #[must_use]
    pub(crate) fn from_records(records: &[PartnerRecord]) -> Self {
        Self::new(records.iter().map(ActivePartner::from_record).collect())
    }

    /// Number of partners.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_auth_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Replaces every partner with the stored ones.
    pub(crate) fn replace_all_records(&self, records: &[PartnerRecord]) {
        self.replace_all(records.iter().map(ActivePartner::from_record).collect());
    }

    /// A cache holding `partners`.
    #[must_use]
    pub(crate) fn new(partners: Vec<ActivePartner>) -> Self {
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
    pub(crate) fn get_enabled(&self, auth_key: &str) -> Option<Arc<ActivePartner>> {
        let map = self
            .by_auth_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(auth_key).filter(|p| p.enabled).cloned()
    }

    /// Inserts or replaces a partner.
    pub(crate) fn upsert(&self, partner: ActivePartner) {
        let mut map = self
            .by_auth_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(partner.auth_key.clone(), Arc::new(partner));
    }

    /// Replaces every partner at once (a reload from the store).
    pub(crate) fn replace_all(&self, partners: Vec<ActivePartner>) {
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
    pub(crate) fn remove(&self, auth_key: &str) {
        let mut map = self
            .by_auth_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(auth_key);
    }
}
