//! Connections to upstreams without a background task: each HTTP/1.1 connection
//! (`hyper::client::conn::http1`) is driven by the task of the request that holds it, and goes
//! back to its upstream's idle list once the answer has been read in full. One
//! [`UpstreamClient`] belongs to one worker (`[runtime] workers`), so its lists are never
//! contended; an upstream holds at most `[runtime] upstream_connections` connections per
//! worker, and a request finding them all busy waits for one within the route's timeout
//! (then 504, as a slow upstream).
//!
//! Nothing is spawned per connection or per request and no task wakes another: the legacy
//! pooled client (hyper-util) spawned a task per connection and handed every request and
//! answer across tasks.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::http::uri::Authority;
use axum::http::{HeaderValue, Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The body of a request sent upstream.
pub(crate) type OutBody = Full<bytes::Bytes>;

/// How long an idle connection may wait for its next request before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Giving up on opening a connection after this long (within the route's own timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One open connection: the handle requests are sent on and the connection state machine,
/// polled by whichever task uses the connection.
struct Conn {
    sender: http1::SendRequest<OutBody>,
    driver: http1::Connection<TokioIo<TcpStream>, OutBody>,
    idle_since: Instant,
}

/// An upstream's connections: the idle ones, the permits bounding open ones, and the `Host`
/// header its requests carry.
struct Host {
    authority: Authority,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    host_header: Option<HeaderValue>,
}

impl Host {
    /// An idle connection that is still open, if any (the most recently used first).
    fn idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(conn) = idle.pop() {
            if conn.idle_since.elapsed() < IDLE_TIMEOUT && !conn.sender.is_closed() {
                return Some(conn);
            }
        }
        None
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

    /// The connections of `authority` (made on first use).
    fn host(&self, authority: &Authority) -> Arc<Host> {
        let mut hosts = self
            .inner
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(host) = hosts.iter().find(|h| h.authority == *authority) {
            return host.clone();
        }
        let host = Arc::new(Host {
            authority: authority.clone(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(self.inner.max_per_host)),
            host_header: HeaderValue::from_str(authority.as_str()).ok(),
        });
        hosts.push(host.clone());
        host
    }

    /// A connection to `host`: an idle one that is still open, else a new one. Waits while
    /// the upstream's connections are all in use.
    async fn lease(host: &Host) -> Result<Lease, UpstreamError> {
        let permit = host
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| UpstreamError::Connect("connection limit closed".into()))?;
        while let Some(mut conn) = host.idle() {
            // One poll: a connection the upstream closed while it was idle finishes now.
            let closed =
                poll_fn(|cx| Poll::Ready(Pin::new(&mut conn.driver).poll(cx).is_ready())).await;
            if !closed {
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
            conn: connect(&host.authority).await?,
            _permit: permit,
            reused: false,
        })
    }

    /// Sends `request` (whose URI is the path; `Host` is set here) to `authority` and reads the
    /// answer in full, at most `max_body` bytes. A reused connection the upstream closed just
    /// before the request was written is replaced once by a new one (the request never left).
    pub(crate) async fn send(
        &self,
        authority: &Authority,
        mut request: Request<OutBody>,
        max_body: usize,
    ) -> Result<(axum::http::response::Parts, bytes::Bytes), UpstreamError> {
        let host = self.host(authority);
        if let Some(value) = &host.host_header {
            request.headers_mut().insert(header::HOST, value.clone());
        }
        let mut lease = Self::lease(&host).await?;
        loop {
            match exchange(&mut lease.conn, request, max_body).await {
                Ok((answer, reusable)) => {
                    if reusable {
                        host.give_back(lease.conn);
                    }
                    return Ok(answer);
                }
                Err(Failure::NotSent(back)) if lease.reused => {
                    request = *back;
                    lease.conn = connect(authority).await?;
                    lease.reused = false;
                }
                Err(Failure::NotSent(_)) => {
                    return Err(UpstreamError::Exchange("connection closed".into()));
                }
                Err(Failure::Broken(e)) => return Err(UpstreamError::Exchange(e)),
            }
        }
    }
}

/// Opens a connection to `authority`.
async fn connect(authority: &Authority) -> Result<Conn, UpstreamError> {
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| UpstreamError::Connect("connect timed out".into()))?
        .map_err(|e| UpstreamError::Connect(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, driver) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| UpstreamError::Connect(e.to_string()))?;
    tracing::trace!(target: "wbauth::upstream", upstream = %authority, "connected");
    Ok(Conn {
        sender,
        driver,
        idle_since: Instant::now(),
    })
}

/// How one exchange on one connection failed.
enum Failure {
    /// The request was not written (the connection was closed first): it comes back.
    NotSent(Box<Request<OutBody>>),
    /// The connection broke after the request left, or the answer was too large.
    Broken(String),
}

/// One request and its whole answer on `conn`, the connection driven by this task meanwhile.
/// Also says whether the connection can carry another request.
async fn exchange(
    conn: &mut Conn,
    request: Request<OutBody>,
    max_body: usize,
) -> Result<((axum::http::response::Parts, bytes::Bytes), bool), Failure> {
    let Conn { sender, driver, .. } = conn;
    let mut driver_done = false;
    let ready = drive(driver, &mut driver_done, sender.ready()).await;
    if ready.is_err() {
        return Err(Failure::NotSent(Box::new(request)));
    }
    let sent = drive(driver, &mut driver_done, sender.try_send_request(request)).await;
    let response: Response<Incoming> = match sent {
        Ok(response) => response,
        Err(mut e) => {
            return match e.take_message() {
                Some(request) => Err(Failure::NotSent(Box::new(request))),
                None => Err(Failure::Broken(e.into_error().to_string())),
            };
        }
    };
    let (parts, body) = response.into_parts();
    let collected = drive(driver, &mut driver_done, async {
        use http_body_util::BodyExt as _;
        http_body_util::Limited::new(body, max_body).collect().await
    })
    .await
    .map_err(|e| Failure::Broken(e.to_string()))?
    .to_bytes();
    let reusable = !driver_done && !sender.is_closed();
    Ok(((parts, collected), reusable))
}

/// Runs `work` while polling the connection `driver` (until it finishes: then `done`).
async fn drive<T>(
    driver: &mut http1::Connection<TokioIo<TcpStream>, OutBody>,
    done: &mut bool,
    work: impl Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if !*done && Pin::new(&mut *driver).poll(cx).is_ready() {
            *done = true;
            // The connection ended: the work ends too (with an error) on its next poll.
            return work.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await
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

    fn request() -> Request<OutBody> {
        let mut request = Request::new(Full::new(bytes::Bytes::from_static(b"{}")));
        *request.method_mut() = axum::http::Method::POST;
        *request.uri_mut() = axum::http::Uri::from_static("/api/v4/x");
        request
    }

    #[tokio::test]
    async fn one_connection_carries_request_after_request() {
        let (authority, accepted) = upstream(Behaviour::KeepAlive).await;
        let client = UpstreamClient::new(4);
        for _ in 0..5 {
            let (parts, body) = client
                .send(&authority, request(), 1024)
                .await
                .expect("answered");
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
            let (parts, _) = client
                .send(&authority, request(), 1024)
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
            tokio::spawn(async move { client.send(&authority, request(), 1024).await })
        };
        // Until the first request holds the only connection.
        while accepted.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The second waits for the connection the first holds: only the route's timeout
        // (504 in `send_upstream`) ends the wait.
        let second = tokio::time::timeout(
            Duration::from_millis(100),
            client.send(&authority, request(), 1024),
        )
        .await;
        assert!(
            second.is_err(),
            "no second connection while the first is busy"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        first.abort();
    }
}
