//! One connection of `wbauth bench`: a keep-alive HTTP/1.1 connection driven as a closed
//! loop, and what it measured.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::client::conn::http2;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::keys::Signer;
use super::load::Load;
use super::tls::BenchTls;

/// Time allowed to open one connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one request (write, answer, body); longer counts as a `timeout` error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed connection attempt before the next one.
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// What one connection measured.
#[derive(Default)]
pub(super) struct ConnStats {
    pub(super) latencies_us: Vec<u32>,
    pub(super) status: BTreeMap<u16, u64>,
    pub(super) errors: BTreeMap<&'static str, u64>,
    pub(super) reconnects: u64,
    /// Answers that came over HTTP/2.
    pub(super) http2_answers: u64,
}

/// One open connection: the request half, and the connection itself, which must be polled for
/// anything to move. Both are polled in the connection's own task (no second task per
/// connection, no cross-task wake-up per request: the generator stays cheap).
pub(super) struct Link {
    sender: Sender,
    driver: Driver,
}

/// The request half of a connection: HTTP/1.1, or HTTP/2 when the server chose it by ALPN.
enum Sender {
    Http1(SendRequest<Full<Bytes>>),
    /// With the absolute URI HTTP/2 requests carry (scheme and authority as pseudo-headers).
    Http2(http2::SendRequest<Full<Bytes>>, Uri),
}

impl Sender {
    async fn ready(&mut self) -> Result<(), hyper::Error> {
        match self {
            Self::Http1(s) => s.ready().await,
            Self::Http2(s, _) => s.ready().await,
        }
    }

    async fn send(
        &mut self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
        match self {
            Self::Http1(s) => s.send_request(request).await,
            Self::Http2(s, uri) => {
                *request.uri_mut() = uri.clone();
                request.headers_mut().remove(hyper::header::HOST);
                s.send_request(request).await
            }
        }
    }

    fn is_http2(&self) -> bool {
        matches!(self, Self::Http2(..))
    }
}

/// The connection future of a [`Link`], and whether it completed (the connection closed).
struct Driver {
    connection: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    closed: bool,
}

impl Driver {
    /// Runs `work` (which uses the link's sender) while driving the connection.
    async fn run<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                () = &mut self.connection, if !self.closed => self.closed = true,
                out = &mut work => return out,
            }
        }
    }
}

/// Opens one connection: TCP (no Nagle), the TLS handshake for an https:// target, and an
/// HTTP/1.1 handshake.
pub(super) async fn connect(addr: SocketAddr, tls: Option<Arc<BenchTls>>) -> Result<Link, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let Some(tls) = tls else {
        return handshake(stream, addr).await;
    };
    let (stream, h2) = tokio::time::timeout(CONNECT_TIMEOUT, tls.handshake(stream))
        .await
        .map_err(|_| format!("the TLS handshake with {addr} timed out"))??;
    if !h2 {
        return handshake(stream, addr).await;
    }
    let (sender, connection) =
        http2::handshake(hyper_util::rt::TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2 handshake with {addr}: {e}"))?;
    Ok(Link {
        sender: Sender::Http2(sender, tls.uri().clone()),
        driver: Driver {
            connection: Box::pin(async move {
                let _ = connection.await;
            }),
            closed: false,
        },
    })
}

/// The HTTP/1.1 handshake on `stream`.
async fn handshake<S>(stream: S, addr: SocketAddr) -> Result<Link, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    Ok(Link {
        sender: Sender::Http1(sender),
        driver: Driver {
            connection: Box::pin(async move {
                let _ = connection.await;
            }),
            closed: false,
        },
    })
}

/// One connection's closed loop. With several `signers` it takes them in turn, one request
/// each, so that every key given is in use and carries an equal share of the load.
pub(super) async fn connection_loop(
    load: Arc<Load>,
    signers: Vec<Arc<Signer>>,
    mut sender: Option<Link>,
) -> ConnStats {
    let mut stats = ConnStats::default();
    // Strict mode: each key's next nonce (a key is used by this connection only).
    let mut strict_next = vec![load.strict_base; signers.len().max(1)];
    let mut turn = 0usize;
    let mut had_connection = sender.is_some();
    while let Some(counted) = load.next_ticket() {
        if let Some(pacer) = &load.pacer {
            pacer.wait_turn().await;
        }
        // A live, idle connection, or a new one.
        let alive = match sender.as_mut() {
            Some(Link { sender, driver }) if !driver.closed => {
                driver.run(sender.ready()).await.is_ok()
            }
            _ => false,
        };
        if !alive {
            sender = None;
            match connect(load.addr, load.tls.clone()).await {
                Ok(s) => {
                    if had_connection && counted {
                        stats.reconnects += 1;
                    }
                    had_connection = true;
                    sender = Some(s);
                }
                Err(_) => {
                    if counted {
                        *stats.errors.entry("connect").or_default() += 1;
                        load.tally(false);
                    }
                    tokio::time::sleep(CONNECT_BACKOFF).await;
                    continue;
                }
            }
        }
        let Some(Link { sender: s, driver }) = sender.as_mut() else {
            continue;
        };
        turn = (turn + 1) % strict_next.len();
        let signer = signers.get(turn).map(Arc::as_ref);
        let Some(next) = strict_next.get_mut(turn) else {
            continue;
        };
        let request = match load.request(signer, next) {
            Ok(request) => request,
            Err(kind) => {
                if counted {
                    *stats.errors.entry(kind).or_default() += 1;
                    load.tally(false);
                }
                continue;
            }
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            REQUEST_TIMEOUT,
            driver.run(async {
                let response = s.send(request).await.map_err(|_| "send")?;
                let status = response.status().as_u16();
                let mut body = response.into_body();
                while let Some(frame) = body.frame().await {
                    frame.map_err(|_| "body")?;
                }
                Ok::<u16, &'static str>(status)
            }),
        )
        .await
        .unwrap_or(Err("timeout"));
        let elapsed = started.elapsed();
        match outcome {
            Ok(status) => {
                if counted {
                    stats.http2_answers += u64::from(s.is_http2());
                    stats
                        .latencies_us
                        .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                    *stats.status.entry(status).or_default() += 1;
                    load.tally((200..300).contains(&status));
                }
            }
            Err(kind) => {
                // The connection is in an unknown state: start a new one.
                sender = None;
                if counted {
                    *stats.errors.entry(kind).or_default() += 1;
                    load.tally(false);
                }
            }
        }
    }
    stats
}
