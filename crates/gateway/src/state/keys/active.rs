//! [`ActiveKey`]: a stored key in the form the request path checks it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use whitebit_auth::mac::HmacSha512Key;
use whitebit_auth::path::pattern_matches;

use super::DAY_MS;
use crate::ip::IpRule;
use wbauth_store::{KeyId, KeyRecord};

/// A key as the request path needs it.
#[derive(Debug)]
pub(crate) struct ActiveKey {
    /// Store id.
    pub(crate) id: KeyId,
    /// Public key.
    pub(crate) public_key: String,
    /// Owner id.
    pub(crate) account_id: i64,
    /// Owner name (sent upstream as `X-Auth-Account`).
    pub(crate) account_name: String,
    /// Kind.
    pub(crate) kind: String,
    /// The keyed HMAC state (the secret itself is not kept here); wiped from memory when
    /// dropped.
    pub(crate) mac: HmacSha512Key,
    /// Not disabled by an operator.
    pub(crate) enabled: bool,
    /// Trusted IPs (empty: any).
    pub(crate) ips: Vec<IpRule>,
    /// A stored entry did not parse: refuse every address rather than allow any.
    ips_broken: bool,
    /// Endpoint allow-list (empty: the whole kind).
    pub(crate) endpoints: Vec<String>,
    /// Idle clock anchor (creation or last enable).
    pub(crate) idle_anchor_ms: u64,
    /// Idle-deactivated, as stored or as found by a request.
    idle_deactivated: AtomicBool,
    /// Last accepted request (0: never).
    last_used_ms: AtomicU64,
}

impl ActiveKey {
    /// Builds the cached form of a stored key. An unparsable IP entry (which validation
    /// prevents) makes the key refuse every address rather than allow any.
    #[must_use]
    pub(crate) fn from_record(record: &KeyRecord) -> Self {
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
    pub(crate) fn last_used_ms(&self) -> Option<u64> {
        match self.last_used_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// Records an accepted request.
    pub(crate) fn mark_used(&self, now_ms: u64) {
        self.last_used_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Whether the key has been idle longer than `idle_days` at `now_ms` (or was stored as
    /// idle-deactivated). Marks it deactivated when found idle.
    pub(crate) fn is_idle(&self, now_ms: u64, idle_days: u64) -> bool {
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
    pub(crate) fn allows_ip(&self, ip: IpAddr) -> bool {
        !self.ips_broken && (self.ips.is_empty() || self.ips.iter().any(|rule| rule.contains(ip)))
    }

    /// Row 14's allow-list part: no allow-list, or the path is on it (exact paths or
    /// `/prefix/*` patterns).
    #[must_use]
    pub(crate) fn allows_endpoint(&self, path: &str) -> bool {
        self.endpoints.is_empty() || self.endpoints.iter().any(|p| pattern_matches(p, path))
    }
}

impl ActiveKey {
    /// A stand-in for unknown public keys: keyed with the dummy secret nobody holds (`mac` is a
    /// copy of [`HmacSha512Key::dummy`]), so that an unknown key costs the same work as a known
    /// one (`docs/design-decisions.md` 13). Disabled, refusing every address; never accepted.
    pub(super) fn stand_in(mac: HmacSha512Key) -> Self {
        Self {
            id: 0,
            public_key: String::new(),
            account_id: 0,
            account_name: String::new(),
            kind: String::new(),
            mac,
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
