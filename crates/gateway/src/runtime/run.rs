//! Binding listeners and running them with the background tasks until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::servers::{AdminServer, ConsoleServer};
use super::{Stores, sync_caches};

use super::workers::{MakeAnswerer, PublicServer};
use crate::edge::listener::{Answerer, HttpSettings, serve};
use crate::edge::sandbox::Teacher;
use crate::edge::server::AppState;
use crate::error::GatewayError;
use crate::service::KeyService;
use crate::verify::gateway::Gateway;

/// Pending connections the kernel queues for a listener before the gateway accepts them (capped
/// by `net.core.somaxconn`). The standard library's 128 overflows when a few hundred clients
/// connect at once (each overflow costs the client a one-second SYN retry); nginx uses 511.
pub(crate) const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener with `SO_REUSEADDR` and a backlog of 1,024 (the standard library's 128
/// overflows when a few hundred clients connect at once), naming the address in the error.
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
pub(crate) async fn run(
    gateway: Arc<Gateway>,
    stores: &Stores,
    public: PublicSide,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GatewayError> {
    let PublicSide {
        listener,
        tls,
        teacher,
    } = public;
    let settings = HttpSettings::for_limits(
        gateway.config().verify.max_body_bytes,
        gateway.config().listen.header_timeout_ms,
    )
    .with_max_connections(gateway.config().listen.max_connections);
    // One answerer per worker: each has its own upstream connections. The public API's
    // handler is called without a router in between; the sandbox keeps its router.
    let make_answerer: MakeAnswerer = {
        let gateway = gateway.clone();
        match teacher.clone() {
            Some(teacher) => Arc::new(move || {
                Answerer::Router(crate::edge::sandbox::router(
                    gateway.clone(),
                    teacher.clone(),
                ))
            }),
            None => Arc::new(move || Answerer::Public(AppState::new(gateway.clone()))),
        }
    };
    let public = PublicServer::start(
        listener,
        tls,
        &make_answerer,
        settings,
        &gateway.config().runtime,
    )
    .map_err(|source| GatewayError::Io {
        context: "starting the public listener's workers".into(),
        source,
    })?;
    // Held requests (the sandbox's injected timeouts) end when shutdown begins.
    let shutdown = async move {
        shutdown.await;
        if let Some(teacher) = teacher {
            teacher.stop();
        }
    };

    let sweeper = {
        let nonces = stores.nonces.clone();
        let replay = stores.replay.clone();
        let clock = gateway.clock().clone();
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
                let _ = gateway.flush_last_used().await;
            }
        })
    };

    let monitor = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEALTH_INTERVAL);
            loop {
                tick.tick().await;
                gateway.check_store_health().await;
            }
        })
    };
    // A store shared with other instances announces their changes.
    let syncer = stores.keys.changes().map(|feed| {
        let refresh = Duration::from_millis(gateway.config().store.refresh_interval_ms);
        tokio::spawn(sync_caches(gateway.clone(), feed, refresh))
    });

    let (served, workers) = public.serve(shutdown).await;
    sweeper.abort();
    toucher.abort();
    monitor.abort();
    if let Some(syncer) = syncer {
        syncer.abort();
    }
    let nonce_flush = stores.nonces.flush().await;
    let touch_flush = gateway.flush_last_used().await;
    workers.release().await;
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

/// How often keys found idle are persisted as idle-deactivated.
pub(crate) const IDLE_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The public listener, and the sandbox's teaching on it when there is one.
pub(crate) struct PublicSide {
    pub(crate) listener: TcpListener,
    pub(crate) tls: Option<Arc<crate::edge::tls::ListenerTls>>,
    pub(crate) teacher: Option<Arc<Teacher>>,
}

/// Runs the public listener exactly as [`run`] does and, with the same shutdown, the admin
/// listener, the web console's when there is one, and the idle sweep
/// ([`KeyService::sweep_idle`]).
pub(crate) async fn run_with_admin(
    gateway: Arc<Gateway>,
    stores: &Stores,
    public: PublicSide,
    admin: AdminServer,
    console: Option<ConsoleServer>,
    service: Arc<KeyService>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GatewayError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let settings = HttpSettings::for_limits(
        gateway.config().verify.max_body_bytes,
        gateway.config().listen.header_timeout_ms,
    );
    let admin_task = {
        let mut stopped = stopped.clone();
        tokio::spawn(serve(
            admin.listener,
            admin.tls,
            admin.router,
            settings,
            async move {
                // A closed channel (the public side ended) stops the admin side too.
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    };
    let console_task = console.map(|console| {
        let mut stopped = stopped.clone();
        tokio::spawn(serve(
            console.listener,
            console.tls,
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
    let public = run(gateway, stores, public, async move {
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
