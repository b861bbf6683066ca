//! HTTP/1.1 to an upstream without a general-purpose client: the request is written into one
//! buffer (head and body) and sent with one write; the answer is read into one buffer, its
//! head parsed with `httparse`, and its body framed by `Content-Length`, chunked coding or
//! the end of the connection (RFC 9112 §6.3). Header values of the answer are slices of the
//! buffer they arrived in (no copy); the hop-by-hop headers, and those the upstream's
//! `Connection` header lists, are left out as the head is read.
//!
//! The gateway only ever sends `POST` with a known length and reads the whole answer before
//! passing it on, which is what keeps this small: no request streaming, no `HEAD`, no
//! upgrades.

use axum::http::response::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, Version, header};
use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::config::HOP_BY_HOP;

/// Largest answer head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most answer headers accepted.
const MAX_HEADERS: usize = 128;
/// Room made in the read buffer before a read.
const READ_CHUNK: usize = 8 * 1024;

/// Why an answer could not be read.
#[derive(Debug)]
pub(crate) enum WireError {
    /// The connection ended before the first byte of an answer.
    ClosedEarly,
    /// Reading or writing failed.
    Io(std::io::Error),
    /// The answer broke HTTP/1.1, or the connection ended inside it.
    Malformed(&'static str),
    /// The body is larger than the limit.
    TooLarge,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClosedEarly => f.write_str("connection closed before an answer"),
            Self::Io(e) => write!(f, "{e}"),
            Self::Malformed(what) => f.write_str(what),
            Self::TooLarge => f.write_str("answer body over max_response_bytes"),
        }
    }
}

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// Status, headers (hop-by-hop ones removed, `Content-Length` left to the writer) and a
    /// non-standard reason phrase as an extension.
    pub(crate) parts: Parts,
    /// The body, de-chunked.
    pub(crate) body: Bytes,
    /// Whether the connection can carry another request.
    pub(crate) reusable: bool,
}

/// Starts a request in `out` (cleared first): the request line and `Host`. Fails when `path`
/// is not an origin-form path of visible ASCII (a normalised path always is).
pub(crate) fn start_request(out: &mut Vec<u8>, path: &str, host: &str) -> Result<(), WireError> {
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WireError::Malformed("the path cannot be sent"));
    }
    out.clear();
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Whether `value` can be a header value as it is (no control characters but tab).
#[must_use]
pub(crate) fn is_header_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

/// Adds one header to a request started by [`start_request`]. `value` must pass
/// [`is_header_value`] (the callers' values come from a `HeaderValue` or were checked).
pub(crate) fn push_header(out: &mut Vec<u8>, name: &HeaderName, value: &[u8]) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Ends the head with `Content-Length` and appends the body.
pub(crate) fn finish_request(out: &mut Vec<u8>, body: &[u8]) {
    finish_head(out, body.len());
    out.extend_from_slice(body);
}

/// Ends a head (request or response) with `Content-Length: len` and the empty line.
pub(crate) fn finish_head(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(b"content-length: ");
    push_decimal(out, len);
    out.extend_from_slice(b"\r\n\r\n");
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        if let Some(slot) = digits.get_mut(at) {
            // `rest % 10` is a digit.
            *slot = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
        if rest == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// Writes `request` whole and flushes it (through TLS too).
pub(crate) async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
) -> std::io::Result<()> {
    stream.write_all(request).await?;
    stream.flush().await
}

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (204, 304).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// The end of the connection.
    UntilClose,
}

/// An answer head, parsed: positions are offsets into the read buffer.
struct Head {
    len: usize,
    status: StatusCode,
    interim: bool,
    reason: Option<(usize, usize)>,
    headers: Vec<(HeaderName, usize, usize)>,
    framing: Framing,
    keep_alive: bool,
}

/// Reads one whole answer from `stream` into `buf` (cleared first; what it holds afterwards
/// is spare room), skipping interim (1xx) answers.
pub(crate) async fn read_answer<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    max_body: usize,
) -> Result<Answer, WireError> {
    buf.clear();
    let mut seen_bytes = false;
    let head = loop {
        if !buf.is_empty() {
            seen_bytes = true;
            if let Some(head) = parse_head(buf)? {
                if head.interim {
                    buf.advance(head.len);
                    continue;
                }
                break head;
            }
            if buf.len() >= MAX_HEAD {
                return Err(WireError::Malformed("answer head too large"));
            }
        }
        if fill(stream, buf, READ_CHUNK).await? == 0 {
            return Err(if seen_bytes {
                WireError::Malformed("connection closed inside the answer's head")
            } else {
                WireError::ClosedEarly
            });
        }
    };
    let limit = u64::try_from(max_body).unwrap_or(u64::MAX);
    let (all, body, reusable) = match head.framing {
        Framing::Empty => {
            let all = buf.split_to(head.len).freeze();
            (all, Bytes::new(), head.keep_alive && buf.is_empty())
        }
        Framing::Length(n) if n > limit => return Err(WireError::TooLarge),
        Framing::Length(n) => {
            // `n ≤ max_body`, a usize.
            let end = head.len + usize::try_from(n).unwrap_or(usize::MAX);
            while buf.len() < end {
                let want = end - buf.len();
                if fill(stream, buf, want).await? == 0 {
                    return Err(WireError::Malformed(
                        "connection closed inside the answer's body",
                    ));
                }
            }
            let all = buf.split_to(end).freeze();
            let body = all.slice(head.len..);
            (all, body, head.keep_alive && buf.is_empty())
        }
        Framing::UntilClose => {
            loop {
                if buf.len() - head.len > max_body {
                    return Err(WireError::TooLarge);
                }
                if fill(stream, buf, READ_CHUNK).await? == 0 {
                    break;
                }
            }
            let all = buf.split().freeze();
            let body = all.slice(head.len..);
            (all, body, false)
        }
        Framing::Chunked => {
            let all = buf.split_to(head.len).freeze();
            let body = read_chunked(stream, buf, max_body).await?;
            (all, body, head.keep_alive && buf.is_empty())
        }
    };
    Ok(Answer {
        parts: answer_parts(&head, &all)?,
        body,
        reusable,
    })
}

/// Reads more bytes into `buf`, with room made first for `want` of them (at least
/// [`READ_CHUNK`]) unless there is room for `want` or `READ_CHUNK` already. Returns how many arrived (0: the end of the connection).
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    want: usize,
) -> Result<usize, WireError> {
    if buf.capacity() - buf.len() < want.clamp(1, READ_CHUNK) {
        buf.reserve(want.max(READ_CHUNK));
    }
    stream.read_buf(buf).await.map_err(WireError::Io)
}

/// Parses the head at the start of `buf`: `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, WireError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(WireError::Malformed("too many headers in the answer"));
        }
        Err(_) => return Err(WireError::Malformed("the answer is not HTTP/1.1")),
    };
    let code = response.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| WireError::Malformed("answer status invalid"))?;
    if code == 101 {
        return Err(WireError::Malformed("the upstream switched protocols"));
    }
    let version = if response.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let offset = |s: &[u8]| (s.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    let reason = response
        .reason
        .filter(|r| !r.is_empty() && status.canonical_reason() != Some(*r))
        .map(|r| (offset(r.as_bytes()), offset(r.as_bytes()) + r.len()));
    let mut headers = Vec::with_capacity(response.headers.len());
    let mut length: Option<u64> = None;
    let mut chunked_last = None;
    let (mut close, mut keep_alive_token) = (false, false);
    for h in response.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| WireError::Malformed("answer header name invalid"))?;
        if name == header::CONTENT_LENGTH {
            let n = content_length(h.value)?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError::Malformed(
                    "conflicting Content-Length in the answer",
                ));
            }
            length = Some(n);
        } else if name == header::TRANSFER_ENCODING {
            chunked_last = Some(last_token_is(h.value, b"chunked"));
        } else if name == header::CONNECTION {
            close |= has_token(h.value, b"close");
            keep_alive_token |= has_token(h.value, b"keep-alive");
        }
        let start = offset(h.value);
        headers.push((name, start, start + h.value.len()));
    }
    let framing = if (100..200).contains(&code) || code == 204 || code == 304 {
        Framing::Empty
    } else {
        match (chunked_last, length) {
            (Some(true), _) if version == Version::HTTP_11 => Framing::Chunked,
            (Some(_), _) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::UntilClose,
        }
    };
    let keep_alive = !close
        && (version == Version::HTTP_11 || keep_alive_token)
        // Both framings at once (RFC 9112 §6.1): read by the coding, then close.
        && !(chunked_last.is_some() && length.is_some());
    Ok(Some(Head {
        len,
        status,
        interim: (100..200).contains(&code),
        reason,
        headers,
        framing,
        keep_alive,
    }))
}

/// A `Content-Length` value: digits, or a list of the same digits ("5, 5").
fn content_length(value: &[u8]) -> Result<u64, WireError> {
    let invalid = WireError::Malformed("answer Content-Length invalid");
    let mut found: Option<u64> = None;
    for item in value.split(|&b| b == b',') {
        let item = item.trim_ascii();
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return Err(invalid);
        }
        let mut n: u64 = 0;
        for &d in item {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(WireError::Malformed("answer Content-Length invalid"))?;
        }
        if found.is_some_and(|f| f != n) {
            return Err(invalid);
        }
        found = Some(n);
    }
    found.ok_or(invalid)
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

pub(crate) fn has_token(value: &[u8], token: &[u8]) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token))
}

fn last_token_is(value: &[u8], token: &[u8]) -> bool {
    tokens(value)
        .last()
        .is_some_and(|t| t.eq_ignore_ascii_case(token))
}

/// Whether an answer header named `name` stays with its hop: a hop-by-hop header, or one
/// that a `Connection` value of the answer (`connection`) names.
pub(crate) fn is_hop_by_hop<'v>(
    name: &HeaderName,
    connection: impl IntoIterator<Item = &'v [u8]>,
) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
        || connection
            .into_iter()
            .any(|v| has_token(v, name.as_str().as_bytes()))
}

/// The answer's status, headers and reason: hop-by-hop headers, those its `Connection`
/// header lists and `Content-Length` (the writer sets it from the body) left out.
fn answer_parts(head: &Head, all: &Bytes) -> Result<Parts, WireError> {
    let slice = |start: usize, end: usize| all.slice(start..end);
    let connection: Vec<Bytes> = head
        .headers
        .iter()
        .filter(|(name, ..)| name == header::CONNECTION)
        .map(|&(_, s, e)| slice(s, e))
        .collect();
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for (name, start, end) in &head.headers {
        if name == header::CONTENT_LENGTH || is_hop_by_hop(name, connection.iter().map(|v| &v[..]))
        {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(slice(*start, *end))
            .map_err(|_| WireError::Malformed("answer header value invalid"))?;
        headers.append(name.clone(), value);
    }
    let (mut parts, ()) = Response::new(()).into_parts();
    parts.status = head.status;
    // The version stays the gateway's own (HTTP/1.1): the upstream's is its business.
    parts.headers = headers;
    if let Some((start, end)) = head.reason
        && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(slice(start, end))
    {
        parts.extensions.insert(reason);
    }
    Ok(parts)
}

/// Reads a chunked body (and its trailers, dropped) from `buf` and `stream`, at most
/// `max_body` bytes of data.
async fn read_chunked<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    max_body: usize,
) -> Result<Bytes, WireError> {
    let cut = || WireError::Malformed("connection closed inside a chunked answer");
    let mut body = BytesMut::new();
    loop {
        let (consumed, size) = loop {
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete(found)) => break found,
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {
                    if fill(stream, buf, READ_CHUNK).await? == 0 {
                        return Err(cut());
                    }
                }
                _ => return Err(WireError::Malformed("answer chunk size invalid")),
            }
        };
        buf.advance(consumed);
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).map_err(|_| WireError::TooLarge)?;
        if body.len().saturating_add(size) > max_body {
            return Err(WireError::TooLarge);
        }
        let need = size + 2;
        while buf.len() < need {
            let want = need - buf.len();
            if fill(stream, buf, want).await? == 0 {
                return Err(cut());
            }
        }
        body.extend_from_slice(buf.get(..size).unwrap_or_default());
        if buf.get(size..need) != Some(b"\r\n".as_slice()) {
            return Err(WireError::Malformed("answer chunk not followed by CRLF"));
        }
        buf.advance(need);
    }
    // Trailer fields, then the empty line.
    let mut trailers = 0usize;
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            buf.advance(end + 2);
            if end == 0 {
                return Ok(body.freeze());
            }
            trailers += end + 2;
            if trailers > MAX_HEAD {
                return Err(WireError::Malformed("answer trailers too large"));
            }
            continue;
        }
        if buf.len() > MAX_HEAD {
            return Err(WireError::Malformed("answer trailers too large"));
        }
        if fill(stream, buf, READ_CHUNK).await? == 0 {
            return Err(cut());
        }
    }
}

#[cfg(test)]
mod tests;
