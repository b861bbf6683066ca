//! The in-memory key cache: every key is held in memory (`decisions.md` 13), with its keyed
//! HMAC state derived once, so verification never re-keys and unknown keys never reach a
//! database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use whitebit_auth::mac::HmacSha512Key;

use crate::config::pattern_matches;
use crate::ip::IpRule;
use crate::store::{KeyId, KeyRecord};

/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// A key as the request path needs it.
#[derive(Debug)]
pub struct ActiveKey {
    /// Store id.
    pub id: KeyId,
    /// Public key.
    pub public_key: String,
    /// Owner id.
    pub account_id: i64,
    /// Owner name (sent upstream as `X-Auth-Account`).
    pub account_name: String,
    /// Kind.
    pub kind: String,
    /// The keyed HMAC state (the secret itself is not kept here).
    pub mac: HmacSha512Key,
    /// Not disabled by an operator.
    pub enabled: bool,
    /// Trusted IPs (empty: any).
    pub ips: Vec<IpRule>,
    /// A stored entry did not parse: refuse every address rather than allow any.
    ips_broken: bool,
    /// Endpoint allow-list (empty: the whole kind).
    pub endpoints: Vec<String>,
    /// Idle clock anchor (creation or last enable).
    pub idle_anchor_ms: u64,
    /// Idle-deactivated, as stored or as found by a request.
    idle_deactivated: AtomicBool,
    /// Last accepted request (0: never).
    last_used_ms: AtomicU64,
}

impl ActiveKey {
    /// Builds the cached form of a stored key. An unparsable IP entry (which validation
    /// prevents) makes the key refuse every address rather than allow any.
    #[must_use]
    pub fn from_record(record: &KeyRecord) -> Self {
        let mut ips = Vec::with_capacity(record.ips.len());
        let mut broken = false;
        for ip in &record.ips {
            match IpRule::parse(ip) {
                Ok(rule) => ips.push(rule),
                Err(_) => broken = true,
            }
        }
        Self {
            id: record.id,
            public_key: record.public_key.clone(),
            account_id: record.account_id,
            account_name: record.account_name.clone(),
            kind: record.kind.clone(),
            mac: HmacSha512Key::new(record.secret.0.expose()),
            enabled: record.enabled,
            ips,
            ips_broken: broken,
            endpoints: record.endpoints.clone(),
            idle_anchor_ms: record.idle_anchor_ms,
            idle_deactivated: AtomicBool::new(record.idle_deactivated),
            last_used_ms: AtomicU64::new(record.last_used_ms.unwrap_or(0)),
        }
    }

    /// Last accepted request, if any.
    #[must_use]
    pub fn last_used_ms(&self) -> Option<u64> {
        match self.last_used_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// Records an accepted request.
    pub fn mark_used(&self, now_ms: u64) {
        self.last_used_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Whether the key has been idle longer than `idle_days` at `now_ms` (or was stored as
    /// idle-deactivated). Marks it deactivated when found idle.
    pub fn is_idle(&self, now_ms: u64, idle_days: u64) -> bool {
        if self.idle_deactivated.load(Ordering::Relaxed) {
            return true;
        }
        let since = self.last_used_ms().unwrap_or(0).max(self.idle_anchor_ms);
        let idle = now_ms.saturating_sub(since) > idle_days.saturating_mul(DAY_MS);
        if idle {
            self.idle_deactivated.store(true, Ordering::Relaxed);
        }
        idle
    }

    /// Row 13's address part: no allow-list, or the address is on it.
    #[must_use]
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        !self.ips_broken && (self.ips.is_empty() || self.ips.iter().any(|rule| rule.contains(ip)))
    }

    /// Row 14's allow-list part: no allow-list, or the path is on it (exact paths or
    /// `/prefix/*` patterns).
    #[must_use]
    pub fn allows_endpoint(&self, path: &str) -> bool {
        self.endpoints.is_empty() || self.endpoints.iter().any(|p| pattern_matches(p, path))
    }
}

impl ActiveKey {
    /// The stand-in for unknown public keys: keyed with the dummy secret nobody holds, so an
    /// unknown key costs the same work as a known one (`decisions.md` 13). Never accepted.
    fn unknown() -> Self {
        Self {
            id: 0,
            public_key: String::new(),
            account_id: 0,
            account_name: String::new(),
            kind: String::new(),
            mac: HmacSha512Key::dummy(),
            enabled: false,
            ips: Vec::new(),
            ips_broken: true,
            endpoints: Vec::new(),
            idle_anchor_ms: 0,
            idle_deactivated: AtomicBool::new(true),
            last_used_ms: AtomicU64::new(0),
        }
    }
}

/// All keys by public key. Reads are lock-free in practice (an uncontended `RwLock` read);
/// writes replace one entry.
#[derive(Debug)]
pub struct KeyCache {
    by_public: RwLock<HashMap<String, Arc<ActiveKey>>>,
    /// Handed out for unknown public keys by [`KeyCache::lookup`].
    unknown: Arc<ActiveKey>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::from_records(&[])
    }
}

impl KeyCache {
    /// A cache holding `records`.
    #[must_use]
    pub fn from_records(records: &[KeyRecord]) -> Self {
        let map = records
            .iter()
            .map(|r| (r.public_key.clone(), Arc::new(ActiveKey::from_record(r))))
            .collect();
        Self {
            by_public: RwLock::new(map),
            unknown: Arc::new(ActiveKey::unknown()),
        }
    }

    /// The request path's lookup (row 12): the key with this public key and `true`, or, for
    /// an unknown public key, a stand-in keyed with a dummy secret and `false`. Both cases do
    /// the same work — a map probe, a full comparison of the public key, an `Arc` clone — so
    /// that, with the HMAC that follows under either key, an unknown key is answered in the
    /// same time as a known key with a wrong signature (`benches/timing.rs`). The caller must
    /// refuse the stand-in whatever its signature check says.
    #[must_use]
    pub fn lookup(&self, public_key: &str) -> (Arc<ActiveKey>, bool) {
        let map = self
            .by_public
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(public_key) {
            Some(key) => (key.clone(), true),
            None => {
                // The comparison a hit makes, over as many bytes.
                std::hint::black_box(std::hint::black_box(public_key) == public_key);
                (self.unknown.clone(), false)
            }
        }
    }

    /// The key with this public key.
    #[must_use]
    pub fn get(&self, public_key: &str) -> Option<Arc<ActiveKey>> {
        let map = self
            .by_public
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(public_key).cloned()
    }

    /// Inserts or replaces a key (its last-used time is carried over when newer).
    pub fn upsert(&self, record: &KeyRecord) {
        let fresh = ActiveKey::from_record(record);
        let mut map = self
            .by_public
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = map.get(&record.public_key)
            && let Some(used) = old.last_used_ms()
        {
            fresh.mark_used(used);
        }
        map.insert(record.public_key.clone(), Arc::new(fresh));
    }

    /// Replaces every key at once (a reload from the store), carrying over last-used times
    /// seen here and not yet stored.
    pub fn replace_all(&self, records: &[KeyRecord]) {
        let fresh: HashMap<String, Arc<ActiveKey>> = records
            .iter()
            .map(|r| (r.public_key.clone(), Arc::new(ActiveKey::from_record(r))))
            .collect();
        let mut map = self
            .by_public
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (public_key, key) in &fresh {
            if let Some(old) = map.get(public_key)
                && old.id == key.id
                && let Some(used) = old.last_used_ms()
            {
                key.mark_used(used);
            }
        }
        *map = fresh;
    }

    /// Removes the key with store id `id`, if it is still held (a key rotated meanwhile keeps
    /// its public key under a new id and stays).
    pub fn remove_id(&self, id: KeyId) {
        let mut map = self
            .by_public
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, key| key.id != id);
    }

    /// Removes a key.
    pub fn remove(&self, public_key: &str) {
        let mut map = self
            .by_public
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(public_key);
    }

    /// Every key, as of now (the management service's idle sweep walks it).
    #[must_use]
    pub fn snapshot(&self) -> Vec<Arc<ActiveKey>> {
        let map = self
            .by_public
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.values().cloned().collect()
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_public
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
