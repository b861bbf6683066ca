//! Assembling a gateway from its configuration: stores, caches, background tasks, listeners.

pub mod sandbox;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clock::SharedClock;
use crate::config::{Config, DurabilityConfig, KeyBackend, NonceBackend};
use crate::edge::admin::{AdminHosts, AdminOptions, AdminToken, admin_router, with_host_check};
use crate::edge::server::{HttpSettings, public_router, serve};
use crate::error::GatewayError;
use crate::ip::IpRule;
use crate::service::KeyService;
use crate::state::keys::KeyCache;
use crate::state::touch::TouchQueue;
use crate::store::secret_file;
use crate::store::{
    Change, ChangeFeed, Durability, JournalConfig, JournalNonceStore, KeyStore, MASTER_KEY_ENV,
    MasterKey, MasterKeySource, NonceStore, PgKeyStore, PgNonceStore, RedisNonceStore, ReplayGuard,
    ReplayStore, SqliteKeyStore, StoreError, load_or_create_master_key,
};
use crate::verify::gateway::Gateway;
use crate::verify::rate::RateLimiter;

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

/// Opens the stores `[store]` names: the embedded ones in `data_dir` by default, PostgreSQL
/// and Redis when configured (`WBAUTH_MASTER_KEY` is then required, `docs/design-decisions.md` 18).
pub async fn open_stores(config: &Config, now_ms: u64) -> Result<Stores, GatewayError> {
    let dir = &config.store.data_dir;
    create_private_dir(dir)?;
    let env_key = std::env::var(MASTER_KEY_ENV).ok().filter(|v| !v.is_empty());
    let remote = config.store.remote_options();
    let keys: Arc<dyn KeyStore> = match config.store.key_backend().map_err(GatewayError::Invalid)? {
        KeyBackend::Sqlite => {
            let master = load_or_create_master_key(dir, env_key.as_deref())?;
            Arc::new(SqliteKeyStore::open(&dir.join("keys.sqlite"), master).await?)
        }
        KeyBackend::Postgres(url) => {
            let Some(hex) = env_key.as_deref() else {
                return Err(GatewayError::Invalid(format!(
                    "store.keys: the PostgreSQL key store needs {MASTER_KEY_ENV} (64 hex \
                     characters, the same on every instance)"
                )));
            };
            let master = MasterKey::from_source(&MasterKeySource::Env(hex.to_owned()))?;
            Arc::new(
                PgKeyStore::connect(&url, master, &remote)
                    .await
                    .map_err(|e| at_key("store.keys", e))?,
            )
        }
    };
    let (nonces, replay): (Arc<dyn NonceStore>, Arc<dyn ReplayGuard>) = match config
        .store
        .nonce_backend()
        .map_err(GatewayError::Invalid)?
    {
        NonceBackend::Embedded => {
            let journal = JournalNonceStore::open(
                JournalConfig {
                    dir: dir.join("nonces"),
                    durability: match config.store.durability {
                        DurabilityConfig::ProcessCrash => Durability::ProcessCrash,
                        DurabilityConfig::PowerLoss => Durability::PowerLoss,
                    },
                    ..JournalConfig::default()
                },
                now_ms,
            )?;
            let replay = ReplayStore::open(
                &dir.join("tokens"),
                config.store.durability == DurabilityConfig::PowerLoss,
                now_ms,
            )?;
            (Arc::new(journal), Arc::new(replay))
        }
        NonceBackend::Redis(url) => {
            let store = Arc::new(
                RedisNonceStore::connect(&url, &remote)
                    .await
                    .map_err(|e| at_key("store.nonces", e))?,
            );
            (store.clone(), store)
        }
        NonceBackend::Postgres(url) => {
            let store = Arc::new(
                PgNonceStore::connect(&url, &remote)
                    .await
                    .map_err(|e| at_key("store.nonces", e))?,
            );
            (store.clone(), store)
        }
    };
    Ok(Stores {
        keys,
        nonces,
        replay,
    })
}

/// A store error that says which `[store]` setting named the store.
fn at_key(key: &str, e: StoreError) -> StoreError {
    let with = |message: String| format!("{key}: {message}");
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(with(m)),
        StoreError::Corrupt(m) => StoreError::Corrupt(with(m)),
        StoreError::Conflict(m) => StoreError::Conflict(with(m)),
        StoreError::WrongMasterKey(m) => StoreError::WrongMasterKey(with(m)),
        StoreError::Refused(m) => StoreError::Refused(with(m)),
        io @ StoreError::Io(_) => io,
    }
}

fn create_private_dir(dir: &Path) -> Result<(), GatewayError> {
    secret_file::create_private_dir(dir).map_err(|source| GatewayError::Io {
        context: format!("creating the data directory {}", dir.display()),
        source,
    })
}

/// Builds the shared gateway state. `builtin` routes every path to the sandbox's built-in
/// answers instead of the configured upstreams.
pub async fn build_gateway(
    config: Config,
    stores: &Stores,
    clock: SharedClock,
    builtin: bool,
) -> Result<Arc<Gateway>, GatewayError> {
    let records = stores.keys.load_keys().await?;
    let partners = stores.keys.load_partners().await?;
    let trusted_proxies = config
        .proxy
        .trusted
        .iter()
        .map(|t| IpRule::parse(t).map_err(GatewayError::Invalid))
        .collect::<Result<Vec<_>, _>>()?;
    let kinds: HashMap<String, Vec<String>> = config
        .kinds
        .iter()
        .map(|k| (k.name.clone(), k.paths.clone()))
        .collect();
    let tokens = token_issuer(&config, builtin)?;
    let routes = crate::verify::Routes::new(&config, builtin);
    Ok(Arc::new(Gateway {
        body_match: config.verify.body_match.into(),
        rate: RateLimiter::new(config.rate_limit.kinds.clone()),
        keys: Arc::new(KeyCache::from_records(&records)),
        partners: Arc::new(crate::service::partner_cache(&partners)),
        key_store: stores.keys.clone(),
        nonces: stores.nonces.clone(),
        clock,
        kinds,
        trusted_proxies,
        routes,
        touch: TouchQueue::default(),
        metrics: crate::ops::metrics::Metrics::default(),
        tokens: Arc::new(tokens),
        replay: stores.replay.clone(),
        config: Arc::new(config),
    }))
}

/// The token issuer: the configured PEM keys (a key that cannot be loaded is logged and
/// skipped, so the endpoint answers 500 "Server configuration issues" rather than the gateway
/// refusing to start); the sandbox generates an RS256 key when none is configured.
fn token_issuer(
    config: &Config,
    generate: bool,
) -> Result<crate::tokens::TokenIssuer, GatewayError> {
    use crate::tokens::{SigningKey, TokenIssuer};
    let mut keys = Vec::new();
    for (i, key) in config.tokens.keys.iter().enumerate() {
        match SigningKey::load_pem_file(&key.pem).and_then(|k| k.with_kid(key.kid.as_deref())) {
            Ok(k) => keys.push(k),
            Err(e) => {
                tracing::error!(target: "wbauth::tokens", "tokens.keys[{i}] is not usable: {e}")
            }
        }
    }
    if keys.is_empty() && generate {
        keys.push(
            SigningKey::generate_rs256()
                .map_err(|e| GatewayError::Invalid(format!("generating a token key: {e}")))?,
        );
    }
    let issuer = TokenIssuer::new(
        config.tokens.issuer.clone(),
        config.tokens.audience.clone(),
        keys,
    )
    .map_err(|e| GatewayError::Invalid(format!("tokens.keys: {e}")))?;
    Ok(issuer.with_lifetime_ms(config.tokens.lifetime_ms))
}

/// Pending connections the kernel queues for a listener before the gateway accepts them (capped
/// by `net.core.somaxconn`). The standard library's 128 overflows when a few hundred clients
/// connect at once (each overflow costs the client a one-second SYN retry); nginx uses 511.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener (`SO_REUSEADDR`, a backlog of [`LISTEN_BACKLOG`]), naming the address in
/// the error.
pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, GatewayError> {
    let io_error = |source| GatewayError::Io {
        context: format!("binding the {what} listener on {addr}"),
        source,
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(io_error)?;
    socket.set_reuseaddr(true).map_err(io_error)?;
    socket.bind(addr).map_err(io_error)?;
    socket.listen(LISTEN_BACKLOG).map_err(io_error)
}

/// Runs the public listener until `shutdown`, with the background tasks (nonce sweep,
/// batched last-used writes); on shutdown drains requests and flushes the stores.
pub async fn run(
    gateway: Arc<Gateway>,
    stores: &Stores,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GatewayError> {
    let settings = HttpSettings::for_limits(
        gateway.config.verify.max_body_bytes,
        gateway.config.listen.header_timeout_ms,
    )
    .with_max_connections(gateway.config.listen.max_connections);
    let router = public_router(gateway.clone());

    let sweeper = {
        let nonces = stores.nonces.clone();
        let replay = stores.replay.clone();
        let clock = gateway.clock.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                // A failed sweep is retried on the next tick; expired entries never match.
                if let Err(e) = nonces.sweep(clock.now_ms()).await {
                    tracing::warn!(target: "wbauth::store", "nonce sweep failed: {e}");
                }
                if let Err(e) = replay.sweep(clock.now_ms()).await {
                    tracing::warn!(target: "wbauth::store", "token replay sweep failed: {e}");
                }
            }
        })
    };
    let toucher = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                // A failed write is retried with the next batch (the cache stays right).
                let _ = gateway.touch.flush(gateway.key_store.as_ref()).await;
            }
        })
    };

    let monitor = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEALTH_INTERVAL);
            loop {
                tick.tick().await;
                let health = crate::ops::health::check(
                    gateway.key_store.as_ref(),
                    gateway.nonces.as_ref(),
                    gateway.clock.now_ms(),
                )
                .await;
                gateway
                    .metrics
                    .store_health(health.key_store_up, health.nonce_store_up);
            }
        })
    };
    // A store shared with other instances announces their changes.
    let syncer = gateway.key_store.changes().map(|feed| {
        let refresh = Duration::from_millis(gateway.config.store.refresh_interval_ms);
        tokio::spawn(sync_caches(gateway.clone(), feed, refresh))
    });

    let served = serve(listener, router, settings, shutdown).await;
    sweeper.abort();
    toucher.abort();
    monitor.abort();
    if let Some(syncer) = syncer {
        syncer.abort();
    }
    let nonce_flush = stores.nonces.flush().await;
    let touch_flush = gateway.touch.flush(gateway.key_store.as_ref()).await;
    served.map_err(|source| GatewayError::Io {
        context: "serving the public API".into(),
        source,
    })?;
    nonce_flush?;
    touch_flush?;
    Ok(())
}

/// How often the stores' health is checked for the `wbauth_*_store_up` gauges.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// How soon a failed cache reload is tried again.
const RELOAD_RETRY: Duration = Duration::from_secs(1);

/// Keeps the in-memory keys and partners in step with a key store shared by several instances:
/// each announced change is read again at once, everything is reloaded after a lost
/// announcement connection and every `refresh` as a safety net, and a failed reload is retried
/// every second until it succeeds. Ends when the feed ends.
pub async fn sync_caches(gateway: Arc<Gateway>, mut feed: ChangeFeed, refresh: Duration) {
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut failed = false;
    loop {
        let change = tokio::select! {
            change = feed.recv() => match change {
                Some(change) => change,
                None => return,
            },
            _ = tick.tick() => Change::Resync,
            () = tokio::time::sleep(RELOAD_RETRY), if failed => Change::Resync,
        };
        let result = apply_change(&gateway, change).await;
        gateway.metrics.cache_reload(change, result.is_ok());
        match result {
            Ok(()) => failed = failed && change != Change::Resync,
            Err(e) => {
                tracing::warn!(target: "wbauth::store", "reloading keys after {change:?} failed (retried every second): {e}");
                failed = true;
            }
        }
    }
}

/// Brings the caches up to date with one announced change.
async fn apply_change(gateway: &Gateway, change: Change) -> Result<(), StoreError> {
    match change {
        Change::Key(id) => match gateway.key_store.get_key(id).await? {
            Some(record) => gateway.keys.upsert(&record),
            None => gateway.keys.remove_id(id),
        },
        Change::Partner(_) => reload_partners(gateway).await?,
        Change::Resync => {
            let records = gateway.key_store.load_keys().await?;
            gateway.keys.replace_all(&records);
            reload_partners(gateway).await?;
        }
    }
    Ok(())
}

async fn reload_partners(gateway: &Gateway) -> Result<(), StoreError> {
    let partners = gateway.key_store.load_partners().await?;
    gateway.partners.replace_all(
        partners
            .iter()
            .map(crate::service::active_partner)
            .collect(),
    );
    Ok(())
}

/// A temporary directory removed when dropped (the sandbox's data dir).
#[derive(Debug)]
pub struct TempDataDir {
    path: PathBuf,
}

impl TempDataDir {
    /// Creates `wbauth-sandbox-<random>` under the system temp dir.
    pub fn create() -> Result<Self, GatewayError> {
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix)
            .map_err(|e| GatewayError::Invalid(format!("no randomness: {e}")))?;
        let path = std::env::temp_dir().join(format!(
            "wbauth-sandbox-{}",
            whitebit_auth::encoding::hex_encode(&suffix)
        ));
        create_private_dir(&path)?;
        Ok(Self { path })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// `wbauth serve`: the admin listener (management API, health, metrics) next to the public one
// ---------------------------------------------------------------------------------------------

/// The clock `wbauth serve` runs on: the system clock, or — in builds with the `test-clock`
/// feature — a `TestClock` (`crate::clock`) that `POST /test/clock` on the admin listener
/// moves (`docs/design-decisions.md` 29).
#[derive(Clone)]
pub struct ServeClock {
    /// The clock every component reads.
    pub clock: SharedClock,
    /// The same clock, movable (test builds only).
    #[cfg(feature = "test-clock")]
    pub test: Arc<crate::clock::TestClock>,
}

impl std::fmt::Debug for ServeClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeClock")
            .field("now_ms", &self.clock.now_ms())
            .finish()
    }
}

impl Default for ServeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ServeClock {
    /// The system clock (a test clock following it, in `test-clock` builds; there
    /// `WBAUTH_TEST_CLOCK_MS` freezes it at start, so a restarted gateway resumes at the time
    /// a test had set).
    #[must_use]
    pub fn new() -> Self {
        #[cfg(feature = "test-clock")]
        {
            let test = Arc::new(crate::clock::TestClock::default());
            if let Some(ms) = std::env::var("WBAUTH_TEST_CLOCK_MS")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
            {
                test.set(ms);
            }
            Self {
                clock: test.clone(),
                test,
            }
        }
        #[cfg(not(feature = "test-clock"))]
        {
            Self {
                clock: Arc::new(crate::clock::SystemClock),
            }
        }
    }
}

/// The admin listener and what it serves.
#[derive(Debug)]
pub struct AdminServer {
    /// The bound listener (`[admin] addr`).
    pub listener: TcpListener,
    /// The router ([`admin_router_for`]).
    pub router: axum::Router,
}

/// The admin router of a gateway: the management API over `service` (built with
/// [`KeyService::for_gateway`], so it shares the gateway's store, cache, configuration and
/// clock), `/healthz`, `/readyz` over both stores, and `POST /test/clock` in test builds.
/// `extra` is merged in without authentication: mount `/metrics` there. Every route answers
/// only the `Host` values `hosts` allows.
pub fn admin_router_for(
    service: Arc<KeyService>,
    stores: &Stores,
    token: AdminToken,
    clock: &ServeClock,
    extra: Option<axum::Router>,
    hosts: AdminHosts,
) -> axum::Router {
    let nonces: Arc<dyn NonceStore> = stores.nonces.clone();
    #[cfg(not(feature = "test-clock"))]
    let _ = clock;
    let router = admin_router(
        service,
        token,
        AdminOptions {
            extra: extra.unwrap_or_default(),
            nonces: Some(nonces),
            #[cfg(feature = "test-clock")]
            test_clock: Some(clock.test.clone()),
        },
    );
    with_host_check(router, hosts)
}

/// The web console's listener and router (`[console] listen`; see [`crate::edge::console`]).
#[derive(Debug)]
pub struct ConsoleServer {
    /// The bound listener.
    pub listener: TcpListener,
    /// The router ([`crate::edge::console::console_router`]).
    pub router: axum::Router,
}

impl ConsoleServer {
    /// Binds `[console] listen` when it is set (the console is off by default) and builds the
    /// console over `service` (the admin API's [`KeyService`]).
    pub async fn bind_if_configured(
        gateway: &Arc<Gateway>,
        service: &Arc<KeyService>,
    ) -> Result<Option<Self>, GatewayError> {
        let Some(addr) = gateway.config.console.listen else {
            // Another instance may serve the console: its public address still makes links.
            if let Some(url) = &gateway.config.console.public_url {
                service.set_console_url(url);
            }
            return Ok(None);
        };
        let listener = bind(addr, "console").await?;
        match (&gateway.config.console.public_url, listener.local_addr()) {
            (Some(url), _) => service.set_console_url(url),
            (None, Ok(bound)) => service.set_console_url(&format!("http://{bound}")),
            (None, Err(_)) => {}
        }
        Ok(Some(Self {
            listener,
            router: crate::edge::console::console_router(gateway.clone(), service.clone()),
        }))
    }
}

/// How often keys found idle are persisted as idle-deactivated.
pub const IDLE_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Runs the public listener exactly as [`run`] does and, with the same shutdown, the admin
/// listener, the web console's when there is one, and the idle sweep
/// ([`KeyService::sweep_idle`]).
pub async fn run_with_admin(
    gateway: Arc<Gateway>,
    stores: &Stores,
    listener: TcpListener,
    admin: AdminServer,
    console: Option<ConsoleServer>,
    service: Arc<KeyService>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GatewayError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let settings = HttpSettings::for_limits(
        gateway.config.verify.max_body_bytes,
        gateway.config.listen.header_timeout_ms,
    );
    let admin_task = {
        let mut stopped = stopped.clone();
        tokio::spawn(serve(admin.listener, admin.router, settings, async move {
            // A closed channel (the public side ended) stops the admin side too.
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    };
    let console_task = console.map(|console| {
        let mut stopped = stopped.clone();
        tokio::spawn(serve(
            console.listener,
            console.router,
            settings,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    });
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(IDLE_SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = service.sweep_idle().await {
                eprintln!("wbauth: persisting idle keys failed (retried later): {e}");
            }
        }
    });
    let public = run(gateway, stores, listener, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    sweeper.abort();
    drop(stopped);
    let admin = match admin_task.await {
        Ok(served) => served.map_err(|source| GatewayError::Io {
            context: "serving the admin API".into(),
            source,
        }),
        Err(e) => Err(GatewayError::Invalid(format!(
            "the admin listener failed: {e}"
        ))),
    };
    let console = match console_task {
        None => Ok(()),
        Some(task) => match task.await {
            Ok(served) => served.map_err(|source| GatewayError::Io {
                context: "serving the web console".into(),
                source,
            }),
            Err(e) => Err(GatewayError::Invalid(format!(
                "the console listener failed: {e}"
            ))),
        },
    };
    public?;
    admin?;
    console
}

/// `GET /metrics` for the admin listener (no authentication: it carries no per-key data).
pub fn metrics_router(gateway: std::sync::Arc<crate::verify::gateway::Gateway>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let gateway = gateway.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    gateway.render_metrics(),
                )
            }
        }),
    )
}
