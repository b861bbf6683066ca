//! The gateway's shared state: key and partner caches, stores, clock and counters, and the
//! settings a reload replaces ([`Live`]), read by every connection. The checks themselves are
//! in [`crate::verify`].

use std::sync::Arc;

use arc_swap::ArcSwap;
use whitebit_auth::BodyMatch;

use crate::clock::SharedClock;
use crate::config::{Config, SharedConfig};
use crate::error::GatewayError;
use crate::ops::metrics::Metrics;
use crate::state::Stores;
use crate::state::keys::KeyCache;
use crate::state::partners::PartnerCache;
use crate::state::touch::TouchQueue;
use crate::tokens::TokenIssuer;
use crate::verify::live::Live;
use crate::verify::routing::Answers;
use wbauth_store::{Change, KeyStore, NonceStore, ReplayGuard, StoreError};

/// The verifier's state, shared by every connection: key and partner caches, stores, clock,
/// counters, and the settings a reload replaces (`verify/live.rs`). Built by `build_gateway`
/// (`runtime/assemble.rs`); the checks run in `Gateway::check`, the public entry for private
/// requests is [`Gateway::verify`].
pub struct Gateway {
    pub(super) keys: Arc<KeyCache>,
    pub(super) key_store: Arc<dyn KeyStore>,
    pub(super) nonces: Arc<dyn NonceStore>,
    pub(super) clock: SharedClock,
    /// The settings in force; each request reads one snapshot from start to end.
    live: ArcSwap<Live>,
    /// The configuration in force, shared with the management service.
    config: SharedConfig,
    /// Who answers accepted requests (kept across reloads).
    answers: Answers,
    /// Batched last-used updates.
    pub(super) touch: TouchQueue,
    /// Request counters for `/metrics`.
    pub(super) metrics: Metrics,
    /// Single use of partner tokens.
    pub(super) replay: Arc<dyn ReplayGuard>,
    /// Fiat Gateway partners in memory (kept current by the admin API's `KeyService`).
    pub(super) partners: Arc<PartnerCache>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Loads every key and partner from `stores` and builds the state the checks consult.
    ///
    /// # Errors
    /// A store that cannot be read, or a `[proxy] trusted` entry that is not an address or
    /// network.
    pub(crate) async fn load(
        config: Config,
        stores: &Stores,
        clock: SharedClock,
        tokens: TokenIssuer,
        answers: Answers,
    ) -> Result<Self, GatewayError> {
        let records = stores.keys.load_keys().await?;
        let partners = stores.keys.load_partners().await?;
        let live = Live::new(config, Arc::new(tokens), answers, None)?;
        Ok(Self {
            keys: Arc::new(KeyCache::from_records(&records)),
            partners: Arc::new(PartnerCache::from_records(&partners)),
            key_store: stores.keys.clone(),
            nonces: stores.nonces.clone(),
            clock,
            config: SharedConfig::new(live.config.clone()),
            live: ArcSwap::from_pointee(live),
            answers,
            touch: TouchQueue::default(),
            metrics: Metrics::default(),
            replay: stores.replay.clone(),
        })
    }

    /// The settings in force now: one snapshot for the whole of a request.
    #[must_use]
    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Puts `config` (already validated) and `tokens` in force from the next request on;
    /// requests in flight finish under the settings they started with.
    ///
    /// # Errors
    /// A `[proxy] trusted` entry that is not an address or network (nothing is replaced).
    pub(crate) fn replace_live(
        &self,
        config: Config,
        tokens: Arc<TokenIssuer>,
    ) -> Result<(), GatewayError> {
        let live = Live::new(config, tokens, self.answers, Some(&self.live()))?;
        let config = live.config.clone();
        self.live.store(Arc::new(live));
        self.config.replace(config);
        Ok(())
    }

    /// How many API keys the gateway holds in memory.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Whether the gateway holds the API key `public_key`.
    #[must_use]
    pub fn holds_key(&self, public_key: &str) -> bool {
        self.keys.get(public_key).is_some()
    }

    /// The secret of the key `public_key`, read from the key store: for the sandbox's
    /// diagnosis of a refused request, which never shows it.
    pub(crate) async fn secret_of(&self, public_key: &str) -> Option<wbauth_store::SecretBytes> {
        let key = self.keys.get(public_key)?;
        let record = self.key_store.get_key(key.id).await.ok()??;
        Some(record.secret.0)
    }

    /// The body-match policy in force.
    #[must_use]
    pub(crate) fn body_match(&self) -> BodyMatch {
        self.live().body_match
    }

    /// Reads every key and partner from the key store again (what the gateway does after a
    /// lost change feed, and every `[store] refresh_interval_ms` on a shared store).
    ///
    /// # Errors
    /// The key store's, when it cannot be read; the caches are then left as they were.
    pub async fn reload(&self) -> Result<(), StoreError> {
        self.apply_change(Change::Resync).await
    }

    /// Brings the caches up to date with one change announced by a shared key store.
    pub(crate) async fn apply_change(&self, change: Change) -> Result<(), StoreError> {
        match change {
            Change::Key(id) => match self.key_store.get_key(id).await? {
                Some(record) => self.keys.upsert(&record),
                None => self.keys.remove_id(id),
            },
            Change::Partner(_) => self.reload_partners().await?,
            Change::Resync => {
                let records = self.key_store.load_keys().await?;
                self.keys.replace_all(&records);
                self.reload_partners().await?;
            }
        }
        Ok(())
    }

    async fn reload_partners(&self) -> Result<(), StoreError> {
        let partners = self.key_store.load_partners().await?;
        self.partners.replace_all_records(&partners);
        Ok(())
    }

    /// Writes the batched last-used times (a failed write is retried with the next batch).
    pub(crate) async fn flush_last_used(&self) -> Result<(), StoreError> {
        self.touch.flush(self.key_store.as_ref()).await
    }

    /// Asks both stores whether they answer, and records it for the `*_store_up` gauges.
    pub(crate) async fn check_store_health(&self) {
        let health = crate::ops::health::check(
            self.key_store.as_ref(),
            self.nonces.as_ref(),
            self.clock.now_ms(),
        )
        .await;
        self.metrics
            .store_health(health.key_store_up, health.nonce_store_up);
    }

    /// The configuration in force now.
    #[must_use]
    pub(crate) fn config(&self) -> Arc<Config> {
        self.config.current()
    }

    /// The configuration in force, as the management service reads it.
    #[must_use]
    pub(crate) fn shared_config(&self) -> &SharedConfig {
        &self.config
    }

    /// The clock every check reads.
    #[must_use]
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Request counters and store gauges.
    #[must_use]
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The durable key store, and the caches the admin API keeps current.
    #[must_use]
    pub(crate) fn key_state(&self) -> (Arc<dyn KeyStore>, Arc<KeyCache>, Arc<PartnerCache>) {
        (
            self.key_store.clone(),
            self.keys.clone(),
            self.partners.clone(),
        )
    }

    /// The `/metrics` text: request counters plus key-cache and nonce-store figures.
    #[must_use]
    pub(crate) fn render_metrics(&self) -> String {
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
}
