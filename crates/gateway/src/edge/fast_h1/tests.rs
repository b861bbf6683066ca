use super::*;

const MAX_HEAD: usize = 16 * 1024;

fn taken(bytes: &[u8]) -> Option<(usize, usize, usize)> {
    match parse(bytes, MAX_HEAD, 1024) {
        Parsed::Take { end, head } => Some((end, head.len, head.body_len)),
        Parsed::Partial | Parsed::Decline => None,
    }
}

fn declined(bytes: &[u8]) -> bool {
    matches!(parse(bytes, MAX_HEAD, 1024), Parsed::Decline)
}

#[test]
fn the_usual_request_is_taken_with_its_body() {
    let request = b"POST /api/v4/trade-account/balance HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let (end, head, body) = taken(request).expect("taken");
    assert_eq!((end, body), (request.len(), 2));
    assert_eq!(head, request.len() - 2);
    // The head whole, the body not yet: taken, and the caller sees the body is missing.
    let (end, ..) = taken(&request[..request.len() - 1]).expect("head parsed");
    assert!(end > request.len() - 1);
    // No length: no body.
    let get = b"GET /api/v4/public/time HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(taken(get), Some((get.len(), get.len(), 0)));
}

#[test]
fn an_unfinished_head_waits() {
    assert!(matches!(
        parse(b"POST /api/v4/x HTTP/1.1\r\nHost:", MAX_HEAD, 1024),
        Parsed::Partial
    ));
}

#[test]
fn everything_unusual_is_hyper_s() {
    for request in [
        // Framing, continuation and connection management.
        "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        "POST /a HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n{}",
        "POST /a HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
        "POST /a HTTP/1.1\r\nContent-Length: \r\n\r\n",
        "POST /a HTTP/1.1\r\nContent-Length: 2000\r\n\r\n",
        "POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        "POST /a HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        "POST /a HTTP/1.1\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
        "GET /a HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        "POST /a HTTP/1.1\r\nTE: trailers\r\nContent-Length: 0\r\n\r\n",
        // Other versions, methods and request targets.
        "POST /a HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
        "PUT /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "HEAD /a HTTP/1.1\r\n\r\n",
        "POST http://x/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        // Broken heads.
        "POST /a HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "POST /a b HTTP/1.1\r\n\r\n",
        "POST /a HTTP/1.1\r\nX: \x01\r\n\r\n",
    ] {
        assert!(declined(request.as_bytes()), "{request:?}");
    }
}

#[test]
fn a_head_over_the_limit_is_hyper_s() {
    let mut request = b"POST /a HTTP/1.1\r\nX-Long: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', MAX_HEAD));
    request.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    assert!(declined(&request));
}

#[test]
fn too_many_headers_are_hyper_s() {
    let mut request = b"POST /a HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        request.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert!(declined(&request));
}

#[test]
fn the_request_shares_the_buffer() {
    let bytes = Bytes::from_static(
        b"POST /api/v4/x HTTP/1.1\r\nX-TXC-APIKEY: k\r\nContent-Length: 2\r\n\r\n{}",
    );
    let Parsed::Take { head, .. } = parse(&bytes, MAX_HEAD, 1024) else {
        panic!("taken");
    };
    let request = build(&bytes, head).expect("built");
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri().path(), "/api/v4/x");
    assert_eq!(request.headers()["x-txc-apikey"], "k");
    assert_eq!(request.headers()["content-length"], "2");
}

#[test]
fn the_date_is_an_http_date() {
    let date = DATE.with(CachedDate::now);
    let text = String::from_utf8_lossy(&date).into_owned();
    assert!(httpdate::parse_http_date(&text).is_ok(), "{text}");
    assert_eq!(DATE.with(CachedDate::now).len(), 29);
}

/// A body of `pieces`, one frame each, its length unknown.
struct Pieces(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|p| Ok(hyper::body::Frame::data(p))))
    }
}

/// What `write_response` writes for `response`, and whether it asks to close.
async fn written(response: Response<Body>) -> (String, bool) {
    let mut wire = Vec::new();
    let mut scratch = Vec::new();
    let close = write_response(&mut wire, &mut scratch, response)
        .await
        .expect("written");
    (String::from_utf8(wire).expect("text"), close)
}

#[tokio::test]
async fn a_whole_body_goes_with_its_head_and_its_length() {
    let mut response = Response::new(Body::from("{\"ok\":true}"));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // A stale length is the writer's to replace.
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
    let (text, close) = written(response).await;
    assert!(!close);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ndate: "));
    assert!(
        text.ends_with("\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"),
        "{text}"
    );
    assert_eq!(text.matches("content-length").count(), 1);
}

#[tokio::test]
async fn a_body_in_pieces_is_written_chunked() {
    let pieces = Pieces(["ab", "", "cde"].into_iter().map(Bytes::from).collect());
    let mut response = Response::new(Body::new(pieces));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    let (text, close) = written(response).await;
    assert!(close);
    assert!(
        text.ends_with("transfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn bodiless_statuses_have_no_length_and_no_body() {
    let mut response = Response::new(Body::from("ignored"));
    *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
    let (text, _) = written(response).await;
    assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n") && !text.contains("content-length"),
        "{text}"
    );
}
