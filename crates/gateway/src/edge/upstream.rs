//! Connections to upstreams without a background task: each HTTP/1.1 connection is driven by
//! the task of the request that holds it (the request written with one write, the answer read
//! and parsed by [`wire`](crate::edge::wire)), and goes back to its upstream's idle list once
//! the answer has been read in full. One [`UpstreamClient`] belongs to one worker
//! (`[runtime] workers`), so its lists are never contended; an upstream holds at most
//! `[runtime] upstream_connections` connections per worker, and a request finding them all
//! busy waits for one within the route's timeout (then 504, as a slow upstream).
//!
//! Nothing is spawned per connection or per request and no task wakes another.
//!
//! An `https://` upstream is reached over TLS (rustls, the route's roots, SNI, an optional
//! client certificate: [`UpstreamTls`]). With `http2 = true` and an upstream that takes
//! HTTP/2 by ALPN, one multiplexed connection per upstream and worker carries every request
//! (hyper's HTTP/2 client); being shared, it is driven by a task of its own (spawned once per
//! connection).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::http::response::Parts;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, header};
use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use whitebit_auth::error::causes;

use crate::edge::stream::Stream;
use crate::edge::wire;
use crate::verify::upstream_tls::UpstreamTls;

/// The body of a request sent upstream over HTTP/2.
type OutBody = Full<Bytes>;

/// The headers of a request sent upstream, handed one by one to whoever writes them.
pub(crate) trait OutHeaders: Sync {
    /// Calls `f` with every header, in order (values valid as header values).
    fn each(&self, f: &mut dyn FnMut(&HeaderName, &[u8]));
}

/// How long an idle connection may wait for its next request before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Giving up on opening a connection after this long (within the route's own timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One open HTTP/1.1 connection and its buffers (kept from request to request).
struct Conn {
    stream: Stream,
    /// The request being sent.
    write: Vec<u8>,
    /// What arrives.
    read: BytesMut,
    idle_since: Instant,
}

impl Conn {
    fn new(stream: Stream) -> Self {
        Self {
            stream,
            write: Vec::with_capacity(1024),
            read: BytesMut::new(),
            idle_since: Instant::now(),
        }
    }

    /// Whether the idle connection can carry a request: nothing has arrived on it (an end of
    /// stream, an error or unasked-for bytes all retire it). Costs no system call unless the
    /// socket became readable.
    async fn still_open(&mut self) -> bool {
        poll_fn(|cx| {
            let mut probe = [0u8; 1];
            let mut probe = ReadBuf::new(&mut probe);
            Poll::Ready(
                Pin::new(&mut self.stream)
                    .poll_read(cx, &mut probe)
                    .is_pending(),
            )
        })
        .await
    }
}

/// A new connection: HTTP/1.1, or HTTP/2 when offered and chosen by ALPN. Moved once, from
/// the handshake to its pool: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Connected {
    Http1(Conn),
    Http2(http2::SendRequest<OutBody>),
}

/// An upstream's connections: the idle ones, the permits bounding open ones, and the `Host`
/// header its requests carry.
struct Host {
    authority: Authority,
    /// The TLS settings the connections were made with (`None`: plain HTTP).
    tls: Option<Arc<str>>,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    /// The shared HTTP/2 connection (`http2 = true` routes), while it is open.
    h2: Mutex<Option<http2::SendRequest<OutBody>>>,
    /// The upstream answered an offer of HTTP/2 with HTTP/1.1: use the pool.
    h1_only: std::sync::atomic::AtomicBool,
}

impl Host {
    /// An idle connection not idle for too long, if any (the most recently used first).
    fn idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(conn) = idle.pop() {
            if conn.idle_since.elapsed() < IDLE_TIMEOUT {
                return Some(conn);
            }
        }
        None
    }

    /// The open HTTP/2 connection, if any.
    fn h2(&self) -> Option<http2::SendRequest<OutBody>> {
        let mut h2 = self.h2.lock().unwrap_or_else(PoisonError::into_inner);
        if h2.as_ref().is_some_and(http2::SendRequest::is_closed) {
            *h2 = None;
        }
        h2.clone()
    }

    fn give_back(&self, mut conn: Conn) {
        conn.idle_since = Instant::now();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }
}

/// The upstream connections of one worker, by upstream authority (`host:port`).
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// A handful of upstreams: found by comparing authorities, no hashing.
    hosts: Mutex<Vec<Arc<Host>>>,
    max_per_host: usize,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("max_per_host", &self.inner.max_per_host)
            .finish_non_exhaustive()
    }
}

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// No connection could be opened.
    Connect(String),
    /// The connection failed before the whole answer arrived, or the answer was too large.
    Exchange(String),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "upstream unreachable: {e}"),
            Self::Exchange(e) => write!(f, "upstream answer broken or too large: {e}"),
        }
    }
}

/// A connection checked out of its upstream's list, with the permit that counts it.
struct Lease {
    conn: Conn,
    _permit: OwnedSemaphorePermit,
    reused: bool,
}

impl UpstreamClient {
    /// A client holding at most `max_per_host` connections to each upstream.
    #[must_use]
    pub(crate) fn new(max_per_host: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                hosts: Mutex::new(Vec::new()),
                max_per_host: max_per_host.max(1),
            }),
        }
    }

    /// The connections of `authority` with the TLS settings `tls` (made on first use).
    fn host(&self, authority: &Authority, tls: Option<&UpstreamTls>) -> Arc<Host> {
        let identity = tls.map(|t| &t.identity);
        let mut hosts = self
            .inner
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(host) = hosts
            .iter()
            .find(|h| h.authority == *authority && h.tls.as_ref() == identity)
        {
            return host.clone();
        }
        let host = Arc::new(Host {
            authority: authority.clone(),
            tls: identity.cloned(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(self.inner.max_per_host)),
            h2: Mutex::new(None),
            h1_only: std::sync::atomic::AtomicBool::new(false),
        });
        hosts.push(host.clone());
        host
    }

    /// A connection to `host`: an idle one that is still open, else a new one. Waits while
    /// the upstream's connections are all in use.
    async fn lease(host: &Host, tls: Option<&UpstreamTls>) -> Result<Lease, UpstreamError> {
        let permit = host
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| UpstreamError::Connect("connection limit closed".into()))?;
        while let Some(mut conn) = host.idle() {
            if conn.still_open().await {
                tracing::trace!(target: "wbauth::upstream", upstream = %host.authority, "reusing an idle connection");
                return Ok(Lease {
                    conn,
                    _permit: permit,
                    reused: true,
                });
            }
            tracing::trace!(target: "wbauth::upstream", upstream = %host.authority, "an idle connection was closed by the upstream");
        }
        Ok(Lease {
            conn: connect_http1(&host.authority, tls).await?,
            _permit: permit,
            reused: false,
        })
    }

    /// Sends `POST path` with `headers` and `body` to `authority` (`Host` and
    /// `Content-Length` are set here) and reads the answer in full, at most `max_body` bytes;
    /// the answer's hop-by-hop headers are left out. A reused connection the upstream closed
    /// before the request could be written is replaced once by a new one (the request never
    /// left); a request that was written is never sent again.
    pub(crate) async fn send(
        &self,
        authority: &Authority,
        tls: Option<&UpstreamTls>,
        path: &str,
        headers: &dyn OutHeaders,
        body: Bytes,
        max_body: usize,
    ) -> Result<(Parts, Bytes), UpstreamError> {
        let host = self.host(authority, tls);
        if tls.is_some_and(|t| t.http2) && !host.h1_only.load(std::sync::atomic::Ordering::Relaxed)
        {
            let sender = match host.h2() {
                Some(sender) => sender,
                None => match connect(authority, tls).await? {
                    Connected::Http2(sender) => {
                        *host.h2.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(sender.clone());
                        sender
                    }
                    Connected::Http1(conn) => {
                        // HTTP/1.1 it is, for this upstream: the connection joins the pool.
                        host.h1_only
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                        host.give_back(conn);
                        return Box::pin(self.send(authority, tls, path, headers, body, max_body))
                            .await;
                    }
                },
            };
            return exchange_h2(sender, authority, path, headers, body, max_body).await;
        }
        let mut lease = Self::lease(&host, tls).await?;
        let request = &mut lease.conn.write;
        wire::start_request(request, path, authority.as_str())
            .map_err(|e| UpstreamError::Exchange(e.to_string()))?;
        headers.each(&mut |name, value| wire::push_header(request, name, value));
        wire::finish_request(request, &body);
        loop {
            if let Err(e) = wire::send(&mut lease.conn.stream, &lease.conn.write).await {
                if !lease.reused {
                    return Err(UpstreamError::Exchange(e.to_string()));
                }
                // The upstream closed the idle connection: the request did not reach it.
                let mut fresh = connect_http1(authority, tls).await?;
                std::mem::swap(&mut fresh.write, &mut lease.conn.write);
                lease.conn = fresh;
                lease.reused = false;
                continue;
            }
            let answer = wire::read_answer(&mut lease.conn.stream, &mut lease.conn.read, max_body)
                .await
                .map_err(|e| UpstreamError::Exchange(e.to_string()))?;
            if answer.reusable {
                host.give_back(lease.conn);
            }
            return Ok((answer.parts, answer.body));
        }
    }
}

/// Opens an HTTP/1.1 connection to `authority` (an upstream that chose HTTP/2 here is an
/// error: the pool carries HTTP/1.1 only).
async fn connect_http1(
    authority: &Authority,
    tls: Option<&UpstreamTls>,
) -> Result<Conn, UpstreamError> {
    match connect(authority, tls).await? {
        Connected::Http1(conn) => Ok(conn),
        Connected::Http2(_) => Err(UpstreamError::Connect(
            "the upstream switched to HTTP/2 after declining it".into(),
        )),
    }
}

/// Opens a connection to `authority`: TCP, then the TLS handshake for an `https://` upstream
/// (HTTP/2 when offered and chosen: its handshake too).
async fn connect(
    authority: &Authority,
    tls: Option<&UpstreamTls>,
) -> Result<Connected, UpstreamError> {
    let port = authority
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let opened = async {
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = tls else {
            return Ok((Stream::Plain(stream), false));
        };
        let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
        let stream = connector
            .connect(tls.server_name.clone(), stream)
            .await
            .map_err(|e| UpstreamError::Connect(format!("TLS handshake failed: {e}")))?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok((Stream::Tls(Box::new(stream)), h2))
    };
    let (stream, h2) = tokio::time::timeout(CONNECT_TIMEOUT, opened)
        .await
        .map_err(|_| UpstreamError::Connect("connect timed out".into()))??;
    if h2 {
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Connect(causes(&e)))?;
        // Shared by every request to this upstream: driven by a task of its own.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        tracing::trace!(target: "wbauth::upstream", upstream = %authority, "connected (HTTP/2)");
        return Ok(Connected::Http2(sender));
    }
    tracing::trace!(target: "wbauth::upstream", upstream = %authority, "connected");
    Ok(Connected::Http1(Conn::new(stream)))
}

/// One request and its whole answer (at most `max_body` bytes) on the shared HTTP/2
/// connection `sender`.
async fn exchange_h2(
    mut sender: http2::SendRequest<OutBody>,
    authority: &Authority,
    path: &str,
    headers: &dyn OutHeaders,
    body: Bytes,
    max_body: usize,
) -> Result<(Parts, Bytes), UpstreamError> {
    use http_body_util::BodyExt as _;
    fn broken(e: &(dyn std::error::Error + 'static)) -> UpstreamError {
        UpstreamError::Exchange(causes(e))
    }
    // HTTP/2 names the scheme and authority in pseudo-headers, taken from the URI.
    let uri = axum::http::Uri::builder()
        .scheme("https")
        .authority(authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| broken(&e))?;
    let mut request = Request::post(uri)
        .body(Full::new(body))
        .map_err(|e| broken(&e))?;
    let map = request.headers_mut();
    headers.each(&mut |name, value| {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(name.clone(), value);
        }
    });
    sender.ready().await.map_err(|e| broken(&e))?;
    let response = sender.send_request(request).await.map_err(|e| broken(&e))?;
    let (mut parts, body) = response.into_parts();
    let body = http_body_util::Limited::new(body, max_body)
        .collect()
        .await
        .map_err(|e| broken(&*e))?
        .to_bytes();
    strip_hop_by_hop(&mut parts.headers);
    Ok((parts, body))
}

/// Removes the hop-by-hop headers of an answer, and those its `Connection` header lists (the
/// names present are looked at first: usually none is hop-by-hop, nothing is allocated).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let connection: Vec<HeaderValue> = headers
        .get_all(header::CONNECTION)
        .iter()
        .cloned()
        .collect();
    let hop_by_hop =
        |name: &HeaderName| wire::is_hop_by_hop(name, connection.iter().map(HeaderValue::as_bytes));
    if headers.keys().any(hop_by_hop) {
        let names: Vec<HeaderName> = headers.keys().filter(|n| hop_by_hop(n)).cloned().collect();
        for name in names {
            headers.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// What the test upstream does with each connection.
    #[derive(Clone, Copy)]
    enum Behaviour {
        /// Answers every request, keeps the connection open.
        KeepAlive,
        /// Answers one request, then closes the connection without saying so.
        CloseAfterOne,
        /// Reads the request, never answers.
        Silent,
    }

    /// A real upstream on 127.0.0.1:0; counts the connections it accepted.
    async fn upstream(behaviour: Behaviour) -> (Authority, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authority: Authority = listener
            .local_addr()
            .expect("addr")
            .to_string()
            .parse()
            .expect("authority");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        // Each test request fits one read: head and a short body.
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        match behaviour {
                            Behaviour::Silent => continue,
                            Behaviour::KeepAlive | Behaviour::CloseAfterOne => {
                                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                                if stream.write_all(answer).await.is_err() {
                                    return;
                                }
                            }
                        }
                        if matches!(behaviour, Behaviour::CloseAfterOne) {
                            return;
                        }
                    }
                });
            }
        });
        (authority, accepted)
    }

    /// No headers but `Host` and `Content-Length`.
    struct NoHeaders;

    impl OutHeaders for NoHeaders {
        fn each(&self, _: &mut dyn FnMut(&HeaderName, &[u8])) {}
    }

    /// `POST /api/v4/x` with a two-byte body.
    async fn post(
        client: &UpstreamClient,
        authority: &Authority,
    ) -> Result<(Parts, Bytes), UpstreamError> {
        let body = Bytes::from_static(b"{}");
        client
            .send(authority, None, "/api/v4/x", &NoHeaders, body, 1024)
            .await
    }

    #[tokio::test]
    async fn one_connection_carries_request_after_request() {
        let (authority, accepted) = upstream(Behaviour::KeepAlive).await;
        let client = UpstreamClient::new(4);
        for _ in 0..5 {
            let (parts, body) = post(&client, &authority).await.expect("answered");
            assert_eq!(parts.status, 200);
            assert_eq!(&body[..], b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_replaced() {
        let (authority, accepted) = upstream(Behaviour::CloseAfterOne).await;
        let client = UpstreamClient::new(4);
        for _ in 0..5 {
            let (parts, _) = post(&client, &authority)
                .await
                .expect("answered on a new connection");
            assert_eq!(parts.status, 200);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_full_upstream_makes_the_next_request_wait() {
        let (authority, accepted) = upstream(Behaviour::Silent).await;
        let client = UpstreamClient::new(1);
        let first = {
            let (client, authority) = (client.clone(), authority.clone());
            tokio::spawn(async move { post(&client, &authority).await.map(|_| ()) })
        };
        // Until the first request holds the only connection.
        while accepted.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The second waits for the connection the first holds: only the route's timeout
        // (504 in `send_upstream`) ends the wait.
        let second =
            tokio::time::timeout(Duration::from_millis(100), post(&client, &authority)).await;
        assert!(
            second.is_err(),
            "no second connection while the first is busy"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        first.abort();
    }
}
