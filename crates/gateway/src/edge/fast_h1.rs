//! The HTTP/1.1 fast path of the listeners. Nearly every request a gateway sees is the same
//! shape: `POST` (or `GET`), HTTP/1.1, a `Content-Length`, a small body that arrives with its
//! head. Such a request is read into the connection's buffer, parsed with `httparse` (the
//! parser hyper uses), handed to the handler ([`Handler`]: the public API's, or a router: the
//! sandbox, the admin API, the console) with header values that are slices of that buffer,
//! and answered with one write of head and body (a body that comes in pieces, as the sandbox's
//! `slow_body` fault makes, is written piece by piece, chunked).
//!
//! Anything else — another method or version, `Transfer-Encoding`, `Expect`, `Connection`,
//! `Upgrade`, a declared body over the limit, a body that has not arrived with its head, a head
//! that breaks a rule or a limit — is not interpreted here: the connection, with every byte
//! read so far put back in front ([`Rewind`]), goes to hyper for the rest of its life, which
//! answers exactly as it does on a connection that never took the fast path (400, 431, 413,
//! `100 Continue`, chunked bodies, row 2's draining…).
//!
//! Timing is hyper's: the head must be complete within `header_timeout` of the moment the
//! connection waits for it (an idle keep-alive connection is closed then; a partial head gets
//! 408), and a connection waiting between requests closes when shutdown begins.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::watch;

use crate::edge::server::CloseConnection;
use crate::edge::stream::Rewind;
use crate::edge::wire;

/// What answers the requests of a fast-path connection.
pub(crate) trait Handler {
    /// The largest body the handler takes now (a larger declared one goes to hyper).
    fn max_body(&self) -> u64;

    /// The answer to `request` from `peer`.
    fn answer(
        &self,
        request: Request<Body>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + Send;
}

/// Most request headers (hyper's default limit; more goes to hyper, which answers 431).
const MAX_HEADERS: usize = 100;
/// Room made in the read buffer before a read.
const READ_CHUNK: usize = 8 * 1024;
/// The largest body taken on the fast path (a larger one goes to hyper).
const FAST_BODY_MAX: u64 = 64 * 1024;
/// Bodies larger than this are written after the head instead of copied behind it.
const COPIED_BODY_MAX: usize = 16 * 1024;

/// How a fast-path connection ended.
pub(crate) enum Ended<S> {
    /// Closed (by the client, a timeout, shutdown or a write error).
    Closed,
    /// A request the fast path does not take: the connection, its bytes put back, for hyper.
    Handover(Rewind<S>),
}

/// The limits of the listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Time allowed for a request head, from the moment the connection waits for it.
    pub(crate) header_timeout: Duration,
    /// Largest request head.
    pub(crate) max_header_bytes: usize,
}

/// What a parsed head says.
enum Parsed {
    /// A request the fast path takes: its head length, body length and the request.
    Take { end: usize, head: Head },
    /// Not (yet) complete.
    Partial,
    /// Anything else: hyper's.
    Decline,
}

/// A head the fast path takes; positions are offsets into the buffer.
struct Head {
    len: usize,
    body_len: usize,
    method: Method,
    target: (usize, usize),
    headers: Vec<(HeaderName, usize, usize)>,
}

/// Serves requests on `stream` from `peer` until the connection ends or a request is handed
/// over. `shutdown` turns true when the listener stops.
pub(crate) async fn serve<S, H>(
    mut stream: S,
    handler: &H,
    peer: SocketAddr,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let deadline = tokio::time::Instant::now() + limits.header_timeout;
        // Until a whole request is in the buffer.
        let (end, head) = loop {
            if !buf.is_empty() {
                let max_body = handler.max_body().min(FAST_BODY_MAX);
                match parse(&buf, limits.max_header_bytes, max_body) {
                    Parsed::Take { end, head } if buf.len() >= end => break (end, head),
                    // The body is still on its way: hyper reads it under the body timeout.
                    Parsed::Take { .. } | Parsed::Decline => {
                        return Ended::Handover(Rewind::new(buf.freeze(), stream));
                    }
                    Parsed::Partial if buf.len() > limits.max_header_bytes => {
                        return Ended::Handover(Rewind::new(buf.freeze(), stream));
                    }
                    Parsed::Partial => {}
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(READ_CHUNK);
            }
            let read = tokio::select! {
                read = stream.read_buf(&mut buf) => read,
                () = tokio::time::sleep_until(deadline) => {
                    if !buf.is_empty() {
                        // A head begun and not finished in time: hyper's answer.
                        let _ = stream
                            .write_all(b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        let _ = stream.flush().await;
                    }
                    return Ended::Closed;
                }
                changed = shutdown.changed(), if buf.is_empty() => {
                    // Shutdown (or the listener gone): an idle connection closes.
                    let _ = changed;
                    return Ended::Closed;
                }
            };
            match read {
                Ok(0) | Err(_) => return Ended::Closed,
                Ok(_) => {}
            }
        };
        let request = buf.split_to(end).freeze();
        let Some(request) = build(&request, head) else {
            // Values hyper would refuse too (it answers 400): let it.
            let mut back = BytesMut::from(&request[..]);
            back.extend_from_slice(&buf);
            return Ended::Handover(Rewind::new(back.freeze(), stream));
        };
        let response = handler.answer(request, peer).await;
        if response.extensions().get::<CloseConnection>().is_some() {
            return Ended::Closed;
        }
        let Some(close) = write_response(&mut stream, &mut out, response).await else {
            return Ended::Closed;
        };
        if close || *shutdown.borrow() {
            let _ = stream.shutdown().await;
            return Ended::Closed;
        }
    }
}

/// Parses the request at the start of `buf`.
fn parse(buf: &[u8], max_header_bytes: usize, max_body: u64) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Decline,
    };
    if len > max_header_bytes || request.version != Some(1) {
        return Parsed::Decline;
    }
    let method = match request.method {
        Some("POST") => Method::POST,
        Some("GET") => Method::GET,
        _ => return Parsed::Decline,
    };
    let Some(target) = request.path.filter(|p| p.starts_with('/')) else {
        return Parsed::Decline;
    };
    let offset = |s: &[u8]| (s.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    let mut body_len: Option<u64> = None;
    let mut headers = Vec::with_capacity(request.headers.len());
    for h in request.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
            return Parsed::Decline;
        };
        if name == header::CONTENT_LENGTH {
            // One plain decimal length; a list or a second header is hyper's to judge.
            if body_len.is_some() || h.value.is_empty() || !h.value.iter().all(u8::is_ascii_digit) {
                return Parsed::Decline;
            }
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.parse().ok())
            {
                Some(n) if n <= max_body => body_len = Some(n),
                _ => return Parsed::Decline,
            }
        } else if name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
            || name == header::EXPECT
            || name == header::UPGRADE
            || name == header::TE
            || name.as_str() == "keep-alive"
        {
            return Parsed::Decline;
        }
        let start = offset(h.value);
        headers.push((name, start, start + h.value.len()));
    }
    let target_start = offset(target.as_bytes());
    let body_len = usize::try_from(body_len.unwrap_or(0)).unwrap_or(usize::MAX);
    Parsed::Take {
        end: len.saturating_add(body_len),
        head: Head {
            len,
            body_len,
            method,
            target: (target_start, target_start + target.len()),
            headers,
        },
    }
}

/// The request as the handler takes it: header values and body are slices of `bytes`.
fn build(bytes: &Bytes, head: Head) -> Option<Request<Body>> {
    let uri = Uri::from_maybe_shared(bytes.slice(head.target.0..head.target.1)).ok()?;
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for (name, start, end) in head.headers {
        let value = HeaderValue::from_maybe_shared(bytes.slice(start..end)).ok()?;
        headers.append(name, value);
    }
    let body = bytes.slice(head.len..head.len + head.body_len);
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = head.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Some(request)
}

/// Writes `response`: head and body with one write when the body is whole at once (small:
/// copied behind the head), else the head and then each piece as it comes (chunked unless
/// its length is known). Returns whether the connection is to close afterwards, or `None`
/// when it broke.
async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &mut Vec<u8>,
    response: Response<Body>,
) -> Option<bool> {
    let (parts, mut body) = response.into_parts();
    let first = next_data(&mut body).await?;
    let whole = body.is_end_stream();
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    match parts.extensions.get::<hyper::ext::ReasonPhrase>() {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        None => out.extend_from_slice(
            parts
                .status
                .canonical_reason()
                .unwrap_or_default()
                .as_bytes(),
        ),
    }
    out.extend_from_slice(b"\r\n");
    let mut close = false;
    let mut dated = false;
    for (name, value) in &parts.headers {
        // The framing is this writer's.
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        if name == header::CONNECTION {
            close |= wire::has_token(value.as_bytes(), b"close");
        }
        dated |= name == header::DATE;
        wire::push_header(out, name, value.as_bytes());
    }
    if !dated {
        out.extend_from_slice(b"date: ");
        DATE.with(|date| out.extend_from_slice(&date.now()));
        out.extend_from_slice(b"\r\n");
    }
    let status = parts.status.as_u16();
    if status == 204 || status == 304 || (100..200).contains(&status) {
        out.extend_from_slice(b"\r\n");
        return wire::send(stream, out).await.is_ok().then_some(close);
    }
    if whole {
        let first = first.unwrap_or_default();
        wire::finish_head(out, first.len());
        if first.len() <= COPIED_BODY_MAX {
            out.extend_from_slice(&first);
            return wire::send(stream, out).await.is_ok().then_some(close);
        }
        return (wire::send(stream, out).await.is_ok() && wire::send(stream, &first).await.is_ok())
            .then_some(close);
    }
    // In pieces: the length when known, else chunked.
    let first = first.unwrap_or_default();
    let known = body
        .size_hint()
        .exact()
        .and_then(|rest| usize::try_from(rest).ok())
        .map(|rest| rest + first.len());
    match known {
        Some(len) => wire::finish_head(out, len),
        None => out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n"),
    }
    let mut piece = Some(first);
    loop {
        if let Some(data) = piece.take().filter(|d| !d.is_empty()) {
            if known.is_none() {
                out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                out.extend_from_slice(&data);
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(&data);
            }
            if wire::send(stream, out).await.is_err() {
                return None;
            }
            out.clear();
        }
        match next_data(&mut body).await? {
            Some(data) => piece = Some(data),
            None => break,
        }
    }
    if known.is_none() {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    wire::send(stream, out).await.is_ok().then_some(close)
}

/// The body's next data (trailers skipped), `None` at its end; `Err` when it failed.
async fn next_data(body: &mut Body) -> Option<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Some(None),
            Some(Err(_)) => return None,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Some(data));
                }
            }
        }
    }
}

/// The `Date` header's value, formatted once a second per worker thread.
struct CachedDate {
    second: std::cell::Cell<u64>,
    text: std::cell::Cell<[u8; 29]>,
}

impl CachedDate {
    fn now(&self) -> [u8; 29] {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second.get() {
            let mut text = [b' '; 29];
            let formatted = httpdate::fmt_http_date(now);
            for (slot, byte) in text.iter_mut().zip(formatted.bytes()) {
                *slot = byte;
            }
            self.text.set(text);
            self.second.set(second);
        }
        self.text.get()
    }
}

thread_local! {
    static DATE: CachedDate = const {
        CachedDate {
            second: std::cell::Cell::new(u64::MAX),
            text: std::cell::Cell::new([b' '; 29]),
        }
    };
}

#[cfg(test)]
mod tests;
