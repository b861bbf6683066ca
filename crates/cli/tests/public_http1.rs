//! The listeners' HTTP/1.1 fast path (`crates/gateway/src/edge/fast_h1.rs`) and its
//! hand-over to hyper, on raw keep-alive connections to a real `wbauth serve`: the usual
//! requests, pipelined ones, and, on the same connection, requests only hyper takes (chunked,
//! `Expect: 100-continue`, HTTP/1.0) — every one answered, in order, exactly once.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};

use common::catalogue::ORDER;
use common::gateway::{Gateway, UPSTREAM_ANSWER, Upstream};
use common::raw::{ANSWER_WAIT, RawResponse, Reply, connect, read_reply};

/// How the body of a raw request is framed.
#[derive(Clone, Copy)]
enum Framing {
    Length,
    Chunked,
    /// `Content-Length`, and the body sent only after `100 Continue`.
    ExpectContinue,
}

/// A signed request for [`ORDER`] with a fresh strict nonce, as raw bytes.
fn signed(key: &str, secret: &str, framing: Framing, version: &str) -> Vec<u8> {
    let (body, signed) = Gateway::signed_request(secret, ORDER);
    let mut head = format!(
        "POST {ORDER} {version}\r\nHost: gateway\r\nContent-Type: application/json\r\n\
         X-TXC-APIKEY: {key}\r\nX-TXC-PAYLOAD: {}\r\nX-TXC-SIGNATURE: {}\r\n",
        signed.payload, signed.signature
    );
    let mut out = Vec::new();
    match framing {
        Framing::Length => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(body.as_bytes());
        }
        Framing::Chunked => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            out.extend_from_slice(head.as_bytes());
            for chunk in body.as_bytes().chunks(16) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
        Framing::ExpectContinue => {
            head.push_str(&format!(
                "Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
                body.len()
            ));
            out.extend_from_slice(head.as_bytes());
            // The body goes after the interim answer: the caller splits at the head's end.
            out.extend_from_slice(body.as_bytes());
        }
    }
    out
}

/// A raw client connection that keeps what it read past an answer (pipelined answers, an
/// interim answer followed by the final one).
struct Client {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Client {
    fn connect(addr: &str) -> Self {
        Self {
            stream: connect(addr),
            read: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// The next answer: its status, headers and body (by `Content-Length`; none for 1xx).
    #[track_caller]
    fn answer(&mut self) -> RawResponse {
        let deadline = std::time::Instant::now() + ANSWER_WAIT;
        loop {
            if let Some((response, used)) = parse(&self.read) {
                self.read.drain(..used);
                return response;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "no answer within {ANSWER_WAIT:?}");
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!(
                    "closed without an answer; read {:?}",
                    String::from_utf8_lossy(&self.read)
                ),
                Ok(n) => self.read.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

/// One answer from the start of `bytes`, and how many bytes it took.
fn parse(bytes: &[u8]) -> Option<(RawResponse, usize)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = if status < 200 {
        0
    } else {
        headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .expect("every answer here has a Content-Length")
    };
    let body = bytes.get(end..end + length)?.to_vec();
    Some((
        RawResponse {
            status,
            headers,
            body,
        },
        end + length,
    ))
}

/// `wbauth_http1_handovers_total` from the admin listener's `/metrics`.
async fn handovers(gw: &Gateway) -> u64 {
    let text = gw.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix("wbauth_http1_handovers_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("wbauth_http1_handovers_total in /metrics")
}

/// A gateway in front of a test upstream, a `trade` key of `account`, and the public
/// listener's `HOST:PORT`.
async fn started(account: &str) -> (Upstream, Gateway, (String, String), String) {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&upstream).await;
    let key = gw.provision_key(account, "trade", &[]).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    (upstream, gw, key, addr)
}

fn assert_forwarded(response: &RawResponse) {
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body_text(), UPSTREAM_ANSWER);
    assert_eq!(
        response.header("content-length"),
        Some(UPSTREAM_ANSWER.len().to_string().as_str())
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    let date = response.header("date").expect("a Date header");
    assert!(date.ends_with(" GMT"), "{date}");
    assert!(response.header("transfer-encoding").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_goes_from_the_fast_path_to_hyper_and_every_request_is_answered_once() {
    let (upstream, gw, (key, secret), addr) = started("fast").await;
    let mut client = Client::connect(&addr);

    // The usual request, twice on the same connection.
    for _ in 0..2 {
        client.send(&signed(&key, &secret, Framing::Length, "HTTP/1.1"));
        assert_forwarded(&client.answer());
    }
    // Three pipelined in one write: three answers, in order.
    let mut three = Vec::new();
    for _ in 0..3 {
        three.extend(signed(&key, &secret, Framing::Length, "HTTP/1.1"));
    }
    client.send(&three);
    for _ in 0..3 {
        assert_forwarded(&client.answer());
    }
    // A refusal on the fast path keeps the connection (a wrong signature: 401 of the table).
    let mut forged = signed(&key, &secret, Framing::Length, "HTTP/1.1");
    let at = forged
        .windows(17)
        .position(|w| w == b"X-TXC-SIGNATURE: ")
        .expect("signature header")
        + 17;
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    client.send(&forged);
    let refused = client.answer();
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(upstream.count(), 5);
    // All of that on the fast path.
    assert_eq!(handovers(&gw).await, 0);

    // A chunked body: hyper takes the connection over, with the bytes already read.
    client.send(&signed(&key, &secret, Framing::Chunked, "HTTP/1.1"));
    assert_forwarded(&client.answer());
    assert_eq!(handovers(&gw).await, 1);
    // … and keeps serving it: the usual request again, then one after `100 Continue`.
    client.send(&signed(&key, &secret, Framing::Length, "HTTP/1.1"));
    assert_forwarded(&client.answer());
    let continued = signed(&key, &secret, Framing::ExpectContinue, "HTTP/1.1");
    let head_end = continued
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head end")
        + 4;
    client.send(&continued[..head_end]);
    let interim = client.answer();
    assert_eq!(interim.status, 100, "{interim:?}");
    client.send(&continued[head_end..]);
    assert_forwarded(&client.answer());
    assert_eq!(upstream.count(), 8);
    let _ = client.stream.shutdown(Shutdown::Both);

    // HTTP/1.0 on a new connection: hyper's from the first request.
    let mut old = Client::connect(&addr);
    old.send(&signed(&key, &secret, Framing::Length, "HTTP/1.0"));
    let response = old.answer();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body_text(), UPSTREAM_ANSWER);
    assert_eq!(upstream.count(), 9);
    assert_eq!(handovers(&gw).await, 2);
}

/// A body sent after its head, in a second write: answered whether it arrives with the head
/// (fast path) or after it (hyper reads it), never twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_written_after_its_head_is_answered_once() {
    let (upstream, gw, (key, secret), addr) = started("split").await;
    let mut client = Client::connect(&addr);
    for round in 1..=3 {
        let request = signed(&key, &secret, Framing::Length, "HTTP/1.1");
        let head_end = request
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head end")
            + 4;
        client.send(&request[..head_end]);
        client.stream.flush().expect("flush");
        client.send(&request[head_end..]);
        assert_forwarded(&client.answer());
        assert_eq!(upstream.count(), round);
    }
    // The body came with its head (fast path) or after it (hyper, once per connection).
    assert!(handovers(&gw).await <= 1);
}

/// Shutdown closes connections idle on the fast path at once: the gateway exits well within
/// its drain time, and the client sees the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_fast_path_connections() {
    let (upstream, gw, (key, secret), addr) = started("idle").await;
    let mut idle = Client::connect(&addr);
    idle.send(&signed(&key, &secret, Framing::Length, "HTTP/1.1"));
    assert_forwarded(&idle.answer());
    assert_eq!(upstream.count(), 1);
    // `terminate` fails the test unless the process exits within 10 s (the drain allows 30).
    let status = gw.terminate();
    assert!(status.success(), "{status:?}");
    match read_reply(&mut idle.stream, ANSWER_WAIT) {
        Reply::Closed { partial } => assert!(partial.is_empty(), "{partial:?}"),
        Reply::Response(r) => panic!("an answer nobody asked for: {r:?}"),
    }
}
