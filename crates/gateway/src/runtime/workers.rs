//! The public listener's workers (`[runtime]`): each a single-threaded tokio runtime on its
//! own thread, accepting from the same listening socket (one accept queue, each worker
//! polling it from its own event loop) and serving its connections with its own answerer (router), hence
//! its own upstream connections. Shared state (the gateway, its caches and stores) is reached
//! through `Arc`s, read-mostly. With `[runtime] shared = true` the listener is served on the
//! caller's runtime instead, as before.
//!
//! Stopping happens in two steps so the stores can be flushed while every runtime is still
//! alive (a pooled store connection opened by a worker belongs to that worker's event loop):
//! [`PublicServer::serve`] stops accepting and drains, [`PublicServer::release`] ends the
//! workers' runtimes.

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};

use crate::config::RuntimeConfig;
use crate::edge::listener::{Answerer, HttpSettings, serve, serve_with_slots};
use crate::edge::tls::ListenerTls;

/// Builds a worker's answerer (called once on each worker's thread).
pub(crate) type MakeAnswerer = Arc<dyn Fn() -> Answerer + Send + Sync>;

/// The public listener, about to be served.
pub(crate) enum PublicServer {
    /// On the caller's runtime.
    Shared {
        listener: TcpListener,
        tls: Option<Arc<ListenerTls>>,
        router: Answerer,
        settings: HttpSettings,
    },
    /// On worker threads.
    Workers(Workers),
}

/// Running workers.
pub(crate) struct Workers {
    stop: watch::Sender<bool>,
    release: watch::Sender<()>,
    served: Vec<oneshot::Receiver<io::Result<()>>>,
    finished: Vec<oneshot::Receiver<()>>,
}

impl PublicServer {
    /// Starts serving `listener` as `runtime` says: the workers start accepting at once.
    ///
    /// # Errors
    /// The listener cannot be shared between workers, or a worker thread cannot start.
    pub(crate) fn start(
        listener: TcpListener,
        tls: Option<Arc<ListenerTls>>,
        make_answerer: &MakeAnswerer,
        settings: HttpSettings,
        runtime: &RuntimeConfig,
    ) -> io::Result<Self> {
        if runtime.shared {
            return Ok(Self::Shared {
                listener,
                tls,
                router: make_answerer(),
                settings,
            });
        }
        let std_listener = listener.into_std()?;
        let slots = Arc::new(Semaphore::new(settings.max_connections));
        let (stop, stopped) = watch::channel(false);
        let (release, released) = watch::channel(());
        let mut workers = Workers {
            stop,
            release,
            served: Vec::new(),
            finished: Vec::new(),
        };
        for index in 0..runtime.worker_count() {
            let listener = std_listener.try_clone()?;
            let make_answerer = make_answerer.clone();
            let slots = slots.clone();
            let tls = tls.clone();
            let mut stopped = stopped.clone();
            let mut released = released.clone();
            let (served_tx, served_rx) = oneshot::channel();
            let (finished_tx, finished_rx) = oneshot::channel();
            std::thread::Builder::new()
                .name(format!("wbauth-worker-{index}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = served_tx.send(Err(e));
                            let _ = finished_tx.send(());
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        let served = match TcpListener::from_std(listener) {
                            Ok(listener) => {
                                let stop = async move {
                                    // A dropped sender stops the worker too.
                                    let _ = stopped.wait_for(|stop| *stop).await;
                                };
                                serve_with_slots(
                                    listener,
                                    tls,
                                    make_answerer(),
                                    settings,
                                    slots,
                                    stop,
                                )
                                .await
                            }
                            Err(e) => Err(e),
                        };
                        let _ = served_tx.send(served);
                        // Kept alive until the stores are flushed (or the handle is dropped).
                        let _ = released.changed().await;
                    });
                    drop(runtime);
                    let _ = finished_tx.send(());
                })?;
            workers.served.push(served_rx);
            workers.finished.push(finished_rx);
        }
        Ok(Self::Workers(workers))
    }

    /// Serves until `shutdown`, then stops accepting and drains in-flight requests. The
    /// workers' runtimes stay up until [`Release::release`].
    ///
    /// # Errors
    /// A worker that failed (the first error).
    pub(crate) async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> (io::Result<()>, Release) {
        match self {
            Self::Shared {
                listener,
                tls,
                router,
                settings,
            } => (
                serve(listener, tls, router, settings, shutdown).await,
                Release(None),
            ),
            Self::Workers(workers) => {
                let Workers {
                    stop,
                    release,
                    served,
                    finished,
                } = workers;
                shutdown.await;
                let _ = stop.send(true);
                let mut result = Ok(());
                for served in served {
                    let outcome = served.await.unwrap_or_else(|_| {
                        Err(io::Error::other("a public listener worker stopped"))
                    });
                    if result.is_ok() {
                        result = outcome;
                    }
                }
                (result, Release(Some((release, finished))))
            }
        }
    }
}

/// What keeps the workers' runtimes up after they stopped serving.
#[must_use]
pub(crate) struct Release(Option<(watch::Sender<()>, Vec<oneshot::Receiver<()>>)>);

impl Release {
    /// Ends the workers' runtimes (once the stores are flushed) and waits for them.
    pub(crate) async fn release(self) {
        if let Some((release, finished)) = self.0 {
            drop(release);
            for done in finished {
                let _ = done.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// One request on a new connection; the whole answer (the server closes after it).
    async fn get(addr: std::net::SocketAddr) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    async fn serves_and_stops(runtime: RuntimeConfig) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let make: MakeAnswerer =
            Arc::new(|| Answerer::Router(axum::Router::new().fallback(|| async { "hello" })));
        let settings = HttpSettings::gateway_defaults();
        let server =
            PublicServer::start(listener, None, &make, settings, &runtime).expect("started");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let (result, release) = server
                .serve(async move {
                    let _ = stopped.await;
                })
                .await;
            release.release().await;
            result
        });
        for _ in 0..8 {
            let answer = get(addr).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.ends_with("hello"), "{answer}");
        }
        let _ = stop.send(());
        served.await.expect("joined").expect("clean stop");
        // Stopped: the listening socket is closed, in every worker.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn several_workers_serve_one_listener_and_stop_cleanly() {
        serves_and_stops(RuntimeConfig {
            workers: 3,
            ..RuntimeConfig::default()
        })
        .await;
    }

    #[tokio::test]
    async fn the_shared_runtime_serves_and_stops_cleanly() {
        serves_and_stops(RuntimeConfig {
            shared: true,
            ..RuntimeConfig::default()
        })
        .await;
    }
}
