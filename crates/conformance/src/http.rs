//! A raw HTTP/1.1 client over `std::net::TcpStream`: the suite sends bytes no HTTP library
//! would (duplicate headers, a `Content-Length` without its body, any method), reads one
//! response, and closes. Every read and write is bounded by a timeout.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::ConformanceError;

/// How long the suite waits for a connection, a write or the next bytes of an answer.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// The largest answer the suite reads (a conformant server's answers are tiny).
const MAX_ANSWER: usize = 1 << 20;

/// One request, as bytes on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The request target (path), exactly as sent.
    pub(crate) target: String,
    /// Headers in order; `Host` and `Connection: close` are added.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Sends `Content-Length: body.len()` unless a header already names it.
    pub(crate) content_length: bool,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header names lower-cased, values as text.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (lower case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` to `addr` (`host` is the `Host` header) and reads one answer.
pub(crate) fn send(
    addr: SocketAddr,
    host: &str,
    request: &Request,
) -> Result<Answer, ConformanceError> {
    let io = |e: std::io::Error| ConformanceError::Io(format!("{addr}: {e}"));
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let _ = stream.set_nodelay(true);
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\n",
        request.method, request.target
    );
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let names_length = request
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    if request.content_length && !names_length {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&request.body);
    // A server may answer (413) and close before it has read a body it refused: a failed
    // write is not an error as long as an answer can be read.
    let _ = stream.write_all(&bytes);
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(answer) = parse(&received, false)? {
            return Ok(answer);
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(&chunk[..n]);
                if received.len() > MAX_ANSWER {
                    return Err(ConformanceError::Protocol(format!(
                        "{addr}: an answer over {MAX_ANSWER} bytes"
                    )));
                }
            }
            Err(e) if received.is_empty() => return Err(io(e)),
            Err(_) => break,
        }
    }
    parse(&received, true)?.ok_or_else(|| {
        ConformanceError::Protocol(format!(
            "{addr}: the connection closed before a complete answer ({} bytes)",
            received.len()
        ))
    })
}

/// One answer from the start of `bytes`, `None` while incomplete (`eof`: no more bytes come).
fn parse(bytes: &[u8], eof: bool) -> Result<Option<Answer>, ConformanceError> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            ConformanceError::Protocol(format!("not an HTTP status line: {status_line:?}"))
        })?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        match dechunk(rest) {
            Some(body) => body,
            None if eof => rest.to_vec(),
            None => return Ok(None),
        }
    } else if let Some(length) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < length {
            if eof {
                return Err(ConformanceError::Protocol(format!(
                    "the answer's body ended after {} of {length} bytes",
                    rest.len()
                )));
            }
            return Ok(None);
        }
        rest[..length].to_vec()
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Answer {
        status,
        headers,
        body,
    }))
}

/// The body of a complete chunked encoding, `None` while incomplete.
fn dechunk(mut bytes: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&bytes[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if bytes.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_with_length_chunks_or_close() {
        let plain = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}";
        let answer = parse(plain, false).expect("parsed").expect("complete");
        assert_eq!((answer.status, answer.body.as_slice()), (401, &b"{}"[..]));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        let answer = parse(chunked, false).expect("parsed").expect("complete");
        assert_eq!(answer.body, b"{}");
        assert!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", false)
                .expect("parsed")
                .is_none()
        );
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", true).is_err());
        assert!(parse(b"SSH-2.0\r\n\r\n", true).is_err());
    }
}
