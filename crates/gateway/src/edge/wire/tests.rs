use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use super::*;

/// An upstream's bytes, handed out `step` at a time, then the end of the stream.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let end = self
            .at
            .saturating_add(self.step)
            .min(self.bytes.len())
            .min(self.at + buf.remaining());
        let chunk = self.bytes.get(self.at..end).unwrap_or_default().to_vec();
        buf.put_slice(&chunk);
        self.at = end;
        Poll::Ready(Ok(()))
    }
}

/// Reads `bytes` as one answer, whole and one byte at a time: both must agree.
async fn read(bytes: &[u8], max_body: usize) -> Result<Answer, WireError> {
    let mut at_once = Trickle {
        bytes: bytes.to_vec(),
        at: 0,
        step: usize::MAX,
    };
    let whole = read_answer(&mut at_once, &mut BytesMut::new(), max_body).await;
    let mut slowly = Trickle {
        bytes: bytes.to_vec(),
        at: 0,
        step: 1,
    };
    let trickled = read_answer(&mut slowly, &mut BytesMut::new(), max_body).await;
    match (&whole, &trickled) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.parts.status, b.parts.status);
            assert_eq!(a.parts.headers, b.parts.headers);
            assert_eq!(a.body, b.body);
            assert_eq!(a.reusable, b.reusable);
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("read whole: {whole:?}, read byte by byte: {trickled:?}"),
    }
    whole
}

#[tokio::test]
async fn a_sized_answer_keeps_its_headers_but_the_hop_by_hop_ones() {
    let answer = read(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive, X-Secret\r\n\
          Keep-Alive: timeout=5\r\nX-Secret: s\r\nX-Request-Id: r-1\r\nSet-Cookie: a=1\r\n\
          Set-Cookie: b=2\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
        1024,
    )
    .await
    .expect("answer");
    assert_eq!(answer.parts.status, 200);
    assert_eq!(&answer.body[..], b"{\"ok\":true}");
    assert!(answer.reusable);
    let names: Vec<&str> = answer
        .parts
        .headers
        .keys()
        .map(HeaderName::as_str)
        .collect();
    assert_eq!(names, ["content-type", "x-request-id", "set-cookie"]);
    assert_eq!(answer.parts.headers.get_all("set-cookie").iter().count(), 2);
    assert_eq!(answer.parts.headers["content-type"], "application/json");
}

#[tokio::test]
async fn a_chunked_answer_is_dechunked_and_its_trailers_dropped() {
    let answer = read(
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
        1024,
    )
    .await
    .expect("answer");
    assert_eq!(answer.parts.status, 201);
    assert_eq!(&answer.body[..], b"hello 0123456789");
    assert!(answer.reusable);
    assert!(answer.parts.headers.get("transfer-encoding").is_none());
}

#[tokio::test]
async fn an_answer_without_length_ends_with_the_connection() {
    let answer = read(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it",
        1024,
    )
    .await
    .expect("answer");
    assert_eq!(&answer.body[..], b"all of it");
    assert!(!answer.reusable);
}

#[tokio::test]
async fn what_ends_reuse() {
    let cases: [(&[u8], bool); 5] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
            true,
        ),
        // Both framings: read by the coding, then close.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            false,
        ),
    ];
    for (bytes, reusable) in cases {
        let answer = read(bytes, 1024).await.expect("answer");
        assert_eq!(
            answer.reusable,
            reusable,
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[tokio::test]
async fn bytes_nobody_asked_for_after_the_answer_end_reuse() {
    let mut upstream = Trickle {
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n".to_vec(),
        at: 0,
        step: usize::MAX,
    };
    let answer = read_answer(&mut upstream, &mut BytesMut::new(), 1024)
        .await
        .expect("answer");
    assert_eq!(&answer.body[..], b"ok");
    assert!(!answer.reusable);
}

#[tokio::test]
async fn interim_answers_are_skipped_and_bodiless_statuses_have_no_body() {
    let answer = read(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
          HTTP/1.1 204 No Content\r\n\r\n",
        1024,
    )
    .await
    .expect("answer");
    assert_eq!(answer.parts.status, 204);
    assert!(answer.body.is_empty());
    assert!(answer.reusable);
    assert!(answer.parts.headers.get("link").is_none());
}

#[tokio::test]
async fn a_custom_reason_phrase_is_kept() {
    let answer = read(
        b"HTTP/1.1 200 Fine Thanks\r\nContent-Length: 0\r\n\r\n",
        1024,
    )
    .await
    .expect("answer");
    let reason = answer
        .parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .expect("reason kept");
    assert_eq!(reason.as_bytes(), b"Fine Thanks");
    let canonical = read(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1024)
        .await
        .expect("answer");
    assert!(
        canonical
            .parts
            .extensions
            .get::<hyper::ext::ReasonPhrase>()
            .is_none()
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_however_framed() {
    for bytes in [
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}".as_slice(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n0123456789ab",
    ] {
        let refused = read(bytes, 10).await.expect_err("too large");
        assert!(matches!(refused, WireError::TooLarge), "{refused}");
    }
    // Exactly the limit passes.
    let answer = read(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
        10,
    )
    .await
    .expect("at the limit");
    assert_eq!(answer.body.len(), 10);
}

#[tokio::test]
async fn broken_answers_are_errors() {
    let cases: [(&[u8], &str); 9] = [
        (b"", "connection closed before an answer"),
        (
            b"HTTP/1.1 200 OK\r\nContent-",
            "connection closed inside the answer's head",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
            "connection closed inside the answer's body",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
            "conflicting Content-Length in the answer",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nabcdef",
            "answer Content-Length invalid",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "answer Content-Length invalid",
        ),
        (b"SMTP ready\r\n\r\n", "the answer is not HTTP/1.1"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "answer chunk size invalid",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc",
            "connection closed inside a chunked answer",
        ),
    ];
    for (bytes, expected) in cases {
        let error = read(bytes, 1024).await.expect_err("broken");
        assert_eq!(
            error.to_string(),
            expected,
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    let same = read(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", 1024)
        .await
        .expect("a repeated, equal length is one length");
    assert_eq!(&same.body[..], b"abc");
}

#[test]
fn the_request_is_one_buffer() {
    let mut out = Vec::new();
    start_request(&mut out, "/api/v4/trade-account/balance", "127.0.0.1:9000").expect("path");
    push_header(&mut out, &HeaderName::from_static("x-auth-key"), b"k-1");
    finish_request(&mut out, b"{\"a\":1}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "POST /api/v4/trade-account/balance HTTP/1.1\r\nhost: 127.0.0.1:9000\r\n\
         x-auth-key: k-1\r\ncontent-length: 7\r\n\r\n{\"a\":1}"
    );
    // A path that would break the request line is never written.
    for path in ["/a b", "/a\r\nx: y", "relative", ""] {
        assert!(start_request(&mut out, path, "h").is_err(), "{path:?}");
    }
}

#[test]
fn decimal_lengths() {
    for n in [0usize, 7, 10, 119, 1_234_567, usize::MAX] {
        let mut out = Vec::new();
        push_decimal(&mut out, n);
        assert_eq!(out, n.to_string().as_bytes());
    }
}

#[test]
fn header_values_without_control_characters() {
    assert!(is_header_value(b"alice\tbob"));
    assert!(!is_header_value(b"a\r\nx-evil: 1"));
    assert!(!is_header_value(b"a\x7f"));
}

#[tokio::test]
async fn the_answer_speaks_the_gateway_s_version() {
    let answer = read(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 1024)
        .await
        .expect("answer");
    assert_eq!(answer.parts.version, axum::http::Version::HTTP_11);
    assert!(!answer.reusable);
}
