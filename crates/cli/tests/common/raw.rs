//! Raw HTTP/1.1 over a `TcpStream`: for requests no HTTP client will send (duplicated or
//! non-UTF-8 headers, CR/LF inside values, lying framing, slow clients). Every read is
//! bounded by a timeout, so a gateway that never answers fails the test instead of hanging it.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest a test waits for an answer that must come.
pub const ANSWER_WAIT: Duration = Duration::from_secs(20);

/// What came back on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A complete response.
    Response(RawResponse),
    /// The connection was closed (or reset) before a complete response arrived; `partial`
    /// holds whatever bytes came first (empty for a plain close).
    Closed { partial: Vec<u8> },
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lowercased, values as text (lossy).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Reply {
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Response(r) => Some(r.status),
            Reply::Closed { .. } => None,
        }
    }
}

/// Parses one response from the start of `bytes`: `None` while it is incomplete.
fn parse_response(bytes: &[u8], eof: bool) -> Option<RawResponse> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = match length {
        Some(n) if rest.len() >= n => rest[..n].to_vec(),
        Some(_) => return None,
        None if eof => rest.to_vec(),
        None => return None,
    };
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

/// Reads until one complete response arrived, the peer closed, or `wait` passed (a panic:
/// the gateway neither answered nor closed).
pub fn read_reply(stream: &mut TcpStream, wait: Duration) -> Reply {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(response) = parse_response(&got, false) {
            return Reply::Response(response);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no answer and no close within {wait:?}; got {:?}",
            String::from_utf8_lossy(&got)
        );
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Reset: the peer closed without reading everything we sent.
            Err(_) => break,
        }
    }
    match parse_response(&got, true) {
        Some(response) => Reply::Response(response),
        None => Reply::Closed { partial: got },
    }
}

/// Connects to `addr` (`HOST:PORT`).
pub fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the gateway");
    let _ = stream.set_nodelay(true);
    stream
}

/// Sends `request` on a fresh connection (written by another thread, so a server that
/// answers before reading everything cannot deadlock us) and reads the reply.
pub fn exchange(addr: &str, request: Vec<u8>) -> Reply {
    let mut stream = connect(addr);
    let mut writer = stream.try_clone().expect("clone stream");
    let written = std::thread::spawn(move || {
        // The server may close early (413 before the body, a parse error): not our concern.
        let _ = writer.write_all(&request);
        let _ = writer.flush();
    });
    let reply = read_reply(&mut stream, ANSWER_WAIT);
    let _ = stream.shutdown(Shutdown::Both);
    let _ = written.join();
    reply
}

/// What a slow client saw.
#[derive(Debug)]
pub struct Trickled {
    pub reply: Reply,
    /// Bytes written before the server answered or closed.
    pub written: usize,
    /// Bytes the client had to send.
    pub total: usize,
    /// From the first byte to the reply.
    pub elapsed: Duration,
}

/// Sends `prefix` at once, then `rest` one byte every `interval` until the server answers
/// or closes; returns what came back and how far the client got.
pub fn trickle(addr: &str, prefix: &[u8], rest: Vec<u8>, interval: Duration) -> Trickled {
    let mut stream = connect(addr);
    let started = Instant::now();
    stream.write_all(prefix).expect("prefix written");
    let total = prefix.len() + rest.len();
    let mut writer = stream.try_clone().expect("clone stream");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(prefix.len()));
    let thread = {
        let (stop, written) = (stop.clone(), written.clone());
        std::thread::spawn(move || {
            for byte in rest {
                // The interval is the point of the test: one byte, then a pause.
                std::thread::sleep(interval);
                if stop.load(Ordering::SeqCst) || writer.write_all(&[byte]).is_err() {
                    return;
                }
                written.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let reply = read_reply(&mut stream, ANSWER_WAIT);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let _ = stream.shutdown(Shutdown::Both);
    let _ = thread.join();
    Trickled {
        reply,
        written: written.load(Ordering::SeqCst),
        total,
        elapsed,
    }
}

/// Whether the server has closed `stream` (EOF or reset), without blocking.
pub fn is_closed_by_peer(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}
