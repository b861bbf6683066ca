//! The gateway's shared state: configuration, key and partner caches, stores, clock, routes,
//! rate limits and counters, read by every connection. The checks themselves are in
//! [`crate::verify`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use whitebit_auth::BodyMatch;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::ip::{IpRule, client_ip};
use crate::state::keys::KeyCache;
use crate::state::touch::TouchQueue;
use crate::store::{KeyStore, NonceStore};
use crate::verify::rate::RateLimiter;

/// Everything the checks consult. Shared by every connection.
pub struct Gateway {
    /// The configuration.
    pub config: Arc<Config>,
    /// Every key, in memory.
    pub keys: Arc<KeyCache>,
    /// The durable key store.
    pub key_store: Arc<dyn KeyStore>,
    /// The nonce store.
    pub nonces: Arc<dyn NonceStore>,
    /// The clock.
    pub clock: SharedClock,
    /// Body-match policy.
    pub body_match: BodyMatch,
    /// Kind → path patterns.
    pub kinds: HashMap<String, Vec<String>>,
    /// Trusted proxies.
    pub trusted_proxies: Vec<IpRule>,
    /// Where requests go (private, Fiat and public routes).
    pub routes: crate::verify::routing::Routes,
    /// Rate limits.
    pub rate: RateLimiter,
    /// Batched last-used updates.
    pub touch: TouchQueue,
    /// Request counters for `/metrics`.
    pub metrics: crate::ops::metrics::Metrics,
    /// Issues and verifies the gateway's own tokens.
    pub tokens: Arc<crate::tokens::TokenIssuer>,
    /// Single use of partner tokens.
    pub replay: Arc<dyn crate::store::ReplayGuard>,
    /// Fiat Gateway partners in memory (kept current by the admin API's `KeyService`).
    pub partners: Arc<crate::state::partners::PartnerCache>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The `/metrics` text: request counters plus key-cache and nonce-store figures.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        let mut gauges = vec![(
            "wbauth_keys",
            "API keys held in memory.",
            u64::try_from(self.keys.len()).unwrap_or(u64::MAX),
        )];
        gauges.extend(self.nonces.metrics());
        gauges.extend(self.replay.metrics());
        gauges.extend(self.metrics.store_gauges());
        self.metrics.render(&gauges)
    }

    /// The client address (`docs/design-decisions.md` 11).
    #[must_use]
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.trusted_proxies.is_empty() {
            return crate::ip::canonical(peer);
        }
        let name = match self.config.proxy.client_ip_header {
            crate::config::ClientIpHeader::XForwardedFor => "x-forwarded-for",
            crate::config::ClientIpHeader::Forwarded => "forwarded",
        };
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        client_ip(peer, &self.trusted_proxies, &values)
    }
}
