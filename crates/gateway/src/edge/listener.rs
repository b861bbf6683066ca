//! Serving a bound listener: HTTP/1.1 with header timeouts and limits derived from the body
//! limit, or HTTPS with HTTP/2 and HTTP/1.1 by ALPN when the listener has TLS; a cap on open
//! connections; graceful shutdown. The server takes an already-bound listener and a shutdown
//! future, so tests bind port 0 and stop cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Request};
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use crate::edge::fast_h1;
use crate::edge::server::{AppState, CloseConnection, Peer, answered};
use crate::edge::tls::ListenerTls;

/// HTTP settings of a listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// Time allowed for the request headers.
    pub(crate) header_timeout: Duration,
    /// Largest header block (derived from the body limit: the payload header is 4/3 of the
    /// body, plus room for the others).
    pub(crate) max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub(crate) drain_timeout: Duration,
    /// Open connections at most; beyond it new connections are closed at once.
    pub(crate) max_connections: usize,
}

impl HttpSettings {
    /// Settings for a body limit and header timeout.
    #[must_use]
    pub(crate) fn for_limits(max_body_bytes: usize, header_timeout_ms: u64) -> Self {
        Self {
            header_timeout: Duration::from_millis(header_timeout_ms),
            max_header_bytes: (max_body_bytes / 3 * 4 + 4 + 16 * 1024).max(8 * 1024),
            drain_timeout: Duration::from_secs(30),
            max_connections: crate::config::DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// The gateway's defaults (`[verify] max_body_bytes`, `[listen] header_timeout_ms`).
    #[must_use]
    pub fn gateway_defaults() -> Self {
        Self::for_limits(
            crate::config::VerifyConfig::default().max_body_bytes,
            crate::config::ListenConfig::default().header_timeout_ms,
        )
    }

    /// An HTTP/1.1 connection builder with these limits, keep-alive on.
    #[must_use]
    pub fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(self.max_header_bytes)
            // A hard limit: the buffer limit alone lets a header block that arrives in one
            // large read through.
            .max_header_size(self.max_header_bytes)
            .keep_alive(true);
        builder
    }

    /// An HTTP/2 connection builder with these limits (HTTPS listeners, by ALPN).
    #[must_use]
    pub(crate) fn http2(&self) -> hyper::server::conn::http2::Builder<TokioExecutor> {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(256);
        builder
    }

    /// The same settings with another connection limit (`[listen] max_connections`).
    #[must_use]
    pub(crate) fn with_max_connections(self, max_connections: usize) -> Self {
        Self {
            max_connections: max_connections.max(1),
            ..self
        }
    }
}

/// The next connection on `listener`. A failed accept (out of file descriptors and the like)
/// is retried after a short pause, so the listener keeps serving what it has.
pub async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(conn) => return conn,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Why a connection was closed without an answer (the sandbox's `reset` fault).
#[derive(Debug)]
struct ConnectionClosed;

impl std::fmt::Display for ConnectionClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed without an answer (injected reset)")
    }
}

impl std::error::Error for ConnectionClosed {}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and
/// drains in-flight requests (up to the drain timeout). At most `settings.max_connections`
/// connections are open at once: a connection accepted beyond that is closed straight away
/// (the client sees the connection closed and may retry), so idle or slow clients can hold
/// no more than their share and the accept queue keeps moving.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ListenerTls>>,
    answerer: impl Into<Answerer>,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    serve_with_slots(listener, tls, answerer.into(), settings, slots, shutdown).await
}

/// What answers a listener's requests.
#[derive(Clone)]
pub(crate) enum Answerer {
    /// An axum router (the admin API, the console, the sandbox).
    Router(Router),
    /// The public API's handler, called straight from the connection: no router, no boxed
    /// service in between (they showed in the per-request instruction counts).
    Public(AppState),
}

impl From<Router> for Answerer {
    fn from(router: Router) -> Self {
        Self::Router(router)
    }
}

impl Answerer {
    /// The answer to `request` from `peer`.
    async fn answer(
        self,
        mut request: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> Response {
        match self {
            Self::Router(router) => {
                request.extensions_mut().insert(Peer(peer));
                match router.oneshot(request.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
            Self::Public(state) => {
                answered(&state, Some(Extension(Peer(peer))), request.map(Body::new))
                    .await
                    .0
            }
        }
    }
}

impl fast_h1::Handler for Answerer {
    fn max_body(&self) -> u64 {
        match self {
            // The body limit in force now (a reload changes it).
            Self::Public(state) => state.gateway.config().verify.max_body_bytes as u64,
            // A router applies its own limits to the body it is given.
            Self::Router(_) => u64::MAX,
        }
    }

    async fn answer(&self, mut request: Request<Body>, peer: SocketAddr) -> Response {
        match self {
            Self::Public(state) => {
                answered(state, Some(Extension(Peer(peer))), request)
                    .await
                    .0
            }
            Self::Router(router) => {
                request.extensions_mut().insert(Peer(peer));
                match router.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        }
    }
}

/// [`serve`] with the connection limit `slots` shared with other listeners (the workers of
/// one public listener share `max_connections`).
pub(crate) async fn serve_with_slots(
    listener: TcpListener,
    tls: Option<Arc<ListenerTls>>,
    answerer: Answerer,
    settings: HttpSettings,
    slots: Arc<tokio::sync::Semaphore>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    // Connections on the HTTP/1.1 fast path (`fast_h1`) are told of shutdown by this.
    let (stop_fast, fast_stopped) = tokio::sync::watch::channel(false);
    let limits = fast_h1::Limits {
        header_timeout: settings.header_timeout,
        max_header_bytes: settings.max_header_bytes,
    };
    // Built once per listener, cloned (a reference count) per connection.
    let http1 = settings.http1();
    let tls = tls.map(|tls| (tls, settings.http2()));
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(target: "wbauth::server", %addr, "connection limit reached, closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            answerer: answerer.clone(),
            peer: addr,
            watcher: graceful.watcher(),
            fast: (limits, fast_stopped.clone()),
        };
        match &tls {
            // Plain HTTP/1.1: the connection is served in one task, as it comes.
            None => {
                let http1 = http1.clone();
                tokio::spawn(async move {
                    connection.http1(&http1, stream).await;
                    drop(slot);
                });
            }
            // HTTPS: the handshake (bounded by the header timeout) in the connection's task.
            Some((tls, http2)) => {
                let (tls, http1, http2) = (tls.clone(), http1.clone(), http2.clone());
                tokio::spawn(async move {
                    connection
                        .tls(&tls, (&http1, &http2), settings.header_timeout, stream)
                        .await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    let _ = stop_fast.send(true);
    drop(fast_stopped);
    let drained = async {
        graceful.shutdown().await;
        stop_fast.closed().await;
    };
    let _ = tokio::time::timeout(settings.drain_timeout, drained).await;
    Ok(())
}

/// The service answering each request of a connection from `peer`.
fn service(
    answerer: Answerer,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = ConnectionClosed,
    Future = impl Future<Output = Result<Response, ConnectionClosed>> + Send,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let answer = answerer.clone().answer(request, peer);
        async move {
            let response = answer.await;
            // A response marked so (the sandbox's `reset` fault): close the connection
            // (HTTP/2: reset the stream), answer nothing.
            if response.extensions().get::<CloseConnection>().is_some() {
                return Err(ConnectionClosed);
            }
            Ok(response)
        }
    })
}

/// One accepted connection and what answers it.
struct Connection {
    answerer: Answerer,
    peer: SocketAddr,
    watcher: Watcher,
    /// The HTTP/1.1 fast path's limits and shutdown signal.
    fast: (fast_h1::Limits, tokio::sync::watch::Receiver<bool>),
}

impl Connection {
    /// Serves HTTP/1.1 on `io` until the connection ends (or shutdown drains it): on the fast
    /// path, with hyper taking over at the first request the fast path does not take.
    async fn http1<I>(self, builder: &hyper::server::conn::http1::Builder, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            answerer,
            peer,
            watcher,
            fast: (limits, stopped),
        } = self;
        match fast_h1::serve(io, &answerer, peer, limits, stopped).await {
            fast_h1::Ended::Closed => {}
            fast_h1::Ended::Handover(io) => {
                if let Answerer::Public(state) = &answerer {
                    state.gateway.metrics().http1_handover();
                }
                let connection =
                    builder.serve_connection(TokioIo::new(io), service(answerer, peer));
                let _ = watcher.watch(connection).await;
            }
        }
    }

    /// The TLS handshake, then HTTP/2 or HTTP/1.1 as the client chose by ALPN.
    async fn tls(
        self,
        tls: &ListenerTls,
        (http1, http2): (
            &hyper::server::conn::http1::Builder,
            &hyper::server::conn::http2::Builder<TokioExecutor>,
        ),
        handshake_timeout: Duration,
        stream: TcpStream,
    ) {
        let Some(accepted) = tls.accept(stream, handshake_timeout, self.peer).await else {
            return;
        };
        if accepted.h2 {
            let Self {
                answerer,
                peer,
                watcher,
                fast: (_, stopped),
            } = self;
            // HTTP/2 connections drain through the graceful watcher alone.
            drop(stopped);
            let connection =
                http2.serve_connection(TokioIo::new(accepted.stream), service(answerer, peer));
            let _ = watcher.watch(connection).await;
        } else {
            self.http1(http1, accepted.stream).await;
        }
    }
}
