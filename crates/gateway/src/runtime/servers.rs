//! What `wbauth serve` adds to the public listener: the clock tests can move, the admin
//! listener (management API, health, metrics) and the web console's.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::{Stores, bind};

use crate::clock::SharedClock;
use crate::edge::admin::{AdminHosts, AdminOptions, AdminToken, admin_router, with_host_check};
use crate::edge::tls::{Certificates, ListenerTls};
use crate::error::GatewayError;
use crate::service::KeyService;
use crate::service::reload::Reloader;
use crate::verify::gateway::Gateway;
use wbauth_store::NonceStore;

/// The clock `wbauth serve` runs on: the system clock, or — in builds with the `test-clock`
/// feature — a `TestClock` (`crate::clock`) that `POST /test/clock` on the admin listener
/// moves (`docs/design-decisions.md` 29).
#[derive(Clone)]
pub struct ServeClock {
    /// The clock every component reads.
    pub(crate) clock: SharedClock,
    /// The same clock, movable by `POST /test/clock` (test builds of `wbauth serve` only).
    #[cfg(feature = "test-clock")]
    pub(crate) test: Option<Arc<crate::clock::TestClock>>,
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
                test: Some(test),
            }
        }
        #[cfg(not(feature = "test-clock"))]
        {
            Self::system()
        }
    }

    /// The system clock, in every build (the sandbox's).
    #[must_use]
    pub fn system() -> Self {
        Self::given(Arc::new(crate::clock::SystemClock))
    }

    /// `clock` (for instance a [`crate::clock::ManualClock`] in tests), not movable over HTTP.
    #[must_use]
    pub fn given(clock: SharedClock) -> Self {
        Self {
            clock,
            #[cfg(feature = "test-clock")]
            test: None,
        }
    }
}

/// The admin listener and what it serves.
#[derive(Debug)]
pub(crate) struct AdminServer {
    /// The bound listener (`[admin] addr`).
    pub(crate) listener: TcpListener,
    /// Its TLS (`[admin] tls`), if any.
    pub(crate) tls: Option<Arc<ListenerTls>>,
    /// The router ([`admin_router_for`]).
    pub(crate) router: axum::Router,
}

/// What the admin listener reloads and reports on.
pub(crate) struct Reloading {
    /// `POST /admin/reload` (none: no configuration file to reload).
    pub(crate) reloader: Option<Arc<Reloader>>,
    /// The TLS listeners, whose certificates `/readyz` reports on.
    pub(crate) certificates: Certificates,
}

/// The admin router of a gateway: the management API over `service` (built with
/// [`KeyService::for_gateway`], so it shares the gateway's store, cache, configuration and
/// clock), `/healthz`, `/readyz` over both stores, and `POST /test/clock` in test builds.
/// `extra` is merged in without authentication: mount `/metrics` there. Every route answers
/// only the `Host` values `hosts` allows.
pub(crate) fn admin_router_for(
    service: Arc<KeyService>,
    stores: &Stores,
    token: AdminToken,
    clock: &ServeClock,
    extra: Option<axum::Router>,
    hosts: AdminHosts,
    reloading: Reloading,
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
            reloader: reloading.reloader,
            certificates: reloading.certificates,
            #[cfg(feature = "test-clock")]
            test_clock: clock.test.clone(),
        },
    );
    with_host_check(router, hosts)
}

/// The web console's listener and router (`[console] listen`; see [`crate::edge::console`]).
#[derive(Debug)]
pub(crate) struct ConsoleServer {
    /// The bound listener.
    pub(crate) listener: TcpListener,
    /// Its TLS (`[console] tls`), if any.
    pub(crate) tls: Option<Arc<ListenerTls>>,
    /// The router ([`crate::edge::console::console_router`]).
    pub(crate) router: axum::Router,
}

impl ConsoleServer {
    /// Binds `[console] listen` when it is set (the console is off by default) and builds the
    /// console over `service` (the admin API's [`KeyService`]).
    pub(crate) async fn bind_if_configured(
        gateway: &Arc<Gateway>,
        service: &Arc<KeyService>,
        tls: Option<Arc<ListenerTls>>,
    ) -> Result<Option<Self>, GatewayError> {
        let Some(addr) = gateway.config().console.listen else {
            // Another instance may serve the console: its public address still makes links.
            if let Some(url) = &gateway.config().console.public_url {
                service.set_console_url(url);
            }
            return Ok(None);
        };
        let listener = bind(addr, "console").await?;
        match (&gateway.config().console.public_url, listener.local_addr()) {
            (Some(url), _) => service.set_console_url(url),
            (None, Ok(bound)) => {
                let scheme = if tls.is_some() { "https" } else { "http" };
                service.set_console_url(&format!("{scheme}://{bound}"));
            }
            (None, Err(_)) => {}
        }
        Ok(Some(Self {
            listener,
            tls,
            router: crate::edge::console::console_router(gateway.clone(), service.clone()),
        }))
    }
}

/// `GET /metrics` for the admin listener (no authentication: it carries no per-key data).
pub(crate) fn metrics_router(
    gateway: std::sync::Arc<crate::verify::gateway::Gateway>,
) -> axum::Router {
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
