//! The client against a real HTTP server on 127.0.0.1 that verifies every request with the
//! protocol crate (headers, exact body, signature, nonce rules) and answers with each error
//! shape of the specification and of the wild.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use whitebit_auth::mac::{HmacSha512Key, PayloadMac};
use whitebit_auth::nonce::NonceBook;
use whitebit_auth::verify::{BodyMatch, HeaderValue, Rejection, RequestParts, check_request};
use whitebit_client::{Client, Error, ErrorKind, NonceSource, RetryPolicy};

const KEY: &str = "test-public-key";
const SECRET: &str = "test-secret-0123456789";

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
    nonce: u64,
    window: Option<bool>,
}

#[derive(Default)]
struct Server {
    seen: Vec<Seen>,
    books: NonceBook,
    hits: BTreeMap<String, usize>,
}

type Shared = Arc<Mutex<Server>>;

fn json_response(status: u16, body: String, extra: &[(&'static str, &'static str)]) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body,
    )
        .into_response();
    for (name, value) in extra {
        response
            .headers_mut()
            .insert(*name, axum::http::HeaderValue::from_static(value));
    }
    response
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if method == Method::GET && path == "/api/v4/public/time" {
        // A server clock 100 s ahead of ours.
        let secs = whitebit_client::unix_ms() / 1000 + 100;
        return json_response(200, format!(r#"{{"time":{secs}}}"#), &[]);
    }
    let header =
        |name: &str| HeaderValue::from_values(headers.get_all(name).iter().map(|v| v.as_bytes()));
    let parts = RequestParts {
        api_key: header("x-txc-apikey"),
        payload: header("x-txc-payload"),
        signature: header("x-txc-signature"),
        body: &body,
        path: uri.path_and_query().map_or("/", |p| p.as_str()),
    };
    let checked = match check_request(&parts, BodyMatch::Exact) {
        Ok(c) => c,
        Err(Rejection::Api(e)) => return json_response(e.status(), e.body().to_owned(), &[]),
        Err(other) => return json_response(400, format!("{other:?}"), &[]),
    };
    let mac = HmacSha512Key::new(SECRET.as_bytes());
    let key = (checked.api_key() == Some(KEY)).then_some(&mac as &dyn PayloadMac);
    if let Err(e) = checked.verify_signature(key) {
        return json_response(e.status(), e.body().to_owned(), &[]);
    }
    let mut server = state.lock().expect("lock");
    if let Err(e) = server.books.consume(
        checked.nonce(),
        checked.nonce_mode(),
        whitebit_client::unix_ms(),
    ) {
        return json_response(e.status(), e.body().to_owned(), &[]);
    }
    server.seen.push(Seen {
        path: path.clone(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
        nonce: checked.nonce(),
        window: checked.nonce_window(),
    });
    let hits = {
        let h = server.hits.entry(path.clone()).or_default();
        *h += 1;
        *h
    };
    drop(server);
    match path.as_str() {
        "/api/v4/trade-account/balance" => json_response(200, r#"{"BTC":{"available":"0.5","freeze":"0"}}"#.into(), &[]),
        "/api/v4/jwt" => json_response(200, r#"{"data":{"token":"aaa.bbb.ccc","expires_at":1700000060}}"#.into(), &[]),
        "/shape/validation" => json_response(
            400,
            r#"{"code":0,"message":"Validation failed","errors":{"amount":["The amount field is required."]}}"#.into(),
            &[],
        ),
        "/shape/success-false" => json_response(
            422,
            r#"{"success":false,"message":"Inner validation failed","params":{"ticker":["Unknown ticker"]}}"#.into(),
            &[],
        ),
        "/shape/legacy" => json_response(400, r#"{"message":[["Not enough balance"]],"result":[],"success":false}"#.into(), &[]),
        "/shape/ok-but-failed" => json_response(200, r#"{"success":false,"message":"Market is closed","params":[]}"#.into(), &[]),
        "/shape/disabled" => json_response(
            401,
            r#"{"code":2,"message":"This action is unauthorized. Enable your key in API settings"}"#.into(),
            &[],
        ),
        "/shape/forbidden" => json_response(403, r#"{"code":0,"message":"You don't have permission to use this endpoint."}"#.into(), &[]),
        "/shape/server" => json_response(500, "<html>oops</html>".into(), &[]),
        "/flaky-nonce" if hits <= 2 => json_response(429, r#"{"code":0,"errors":{},"message":"Too many requests."}"#.into(), &[]),
        "/rate-limited" if hits <= 1 => json_response(429, r#"{"code":0,"message":"Rate limit exceeded."}"#.into(), &[("retry-after", "1")]),
        "/bad-gateway" => json_response(502, r#"{"code":0,"message":"Bad gateway."}"#.into(), &[]),
        _ => json_response(200, r#"{"ok":true}"#.into(), &[]),
    }
}

async fn start() -> (String, Shared) {
    let state: Shared = Arc::default();
    let app = Router::new().fallback(handle).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}"), state)
}

fn client(base: &str) -> Client {
    Client::builder()
        .credentials(KEY, SECRET)
        .base_url(base)
        .build()
        .expect("client")
}

#[tokio::test]
async fn signed_request_is_verified_and_the_exact_bytes_arrive() {
    let (base, state) = start().await;
    let c = client(&base);
    let answer = c
        .post(
            "/api/v4/trade-account/balance",
            json!({"ticker": "BTC", "nested": {"é": [1, 2.5]}}),
        )
        .await
        .expect("accepted");
    assert_eq!(answer["BTC"]["available"], "0.5");
    let seen = state.lock().expect("lock").seen.clone();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.path, "/api/v4/trade-account/balance");
    assert_eq!(s.content_type.as_deref(), Some("application/json"));
    assert_eq!(s.window, Some(true), "window mode by default");
    let expected = format!(
        r#"{{"request":"/api/v4/trade-account/balance","nonce":{},"nonceWindow":true,"ticker":"BTC","nested":{{"é":[1,2.5]}}}}"#,
        s.nonce
    );
    assert_eq!(String::from_utf8(s.body.clone()).expect("utf8"), expected);
}

#[tokio::test]
async fn strict_mode_and_many_concurrent_calls() {
    let (base, state) = start().await;
    let c = Client::builder()
        .credentials(KEY, SECRET)
        .base_url(base.as_str())
        .strict_nonces()
        .build()
        .expect("client");
    c.post("/anything", ()).await.expect("accepted");
    assert_eq!(state.lock().expect("lock").seen[0].window, Some(false));

    // Window mode: 64 concurrent calls from clones sharing one nonce source all pass.
    let shared = NonceSource::new();
    let a = Client::builder()
        .credentials(KEY, SECRET)
        .base_url(base.as_str())
        .nonce_source(shared.clone())
        .build()
        .expect("a");
    let b = Client::builder()
        .credentials(KEY, SECRET)
        .base_url(base.as_str())
        .nonce_source(shared)
        .build()
        .expect("b");
    let mut tasks = Vec::new();
    for i in 0..64 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            c.post("/parallel", json!({"i": i})).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("accepted");
    }
    let nonces: std::collections::BTreeSet<u64> = state
        .lock()
        .expect("lock")
        .seen
        .iter()
        .filter(|s| s.path == "/parallel")
        .map(|s| s.nonce)
        .collect();
    assert_eq!(nonces.len(), 64);
}

#[tokio::test]
async fn every_error_shape_is_typed() {
    let (base, _state) = start().await;
    let c = client(&base);
    let cases: &[(&str, ErrorKind, &str)] = &[
        (
            "/shape/validation",
            ErrorKind::Validation,
            "Validation failed",
        ),
        (
            "/shape/success-false",
            ErrorKind::Validation,
            "Inner validation failed",
        ),
        ("/shape/legacy", ErrorKind::Validation, "Not enough balance"),
        ("/shape/ok-but-failed", ErrorKind::Other, "Market is closed"),
        (
            "/shape/disabled",
            ErrorKind::KeyDisabled,
            "This action is unauthorized. Enable your key in API settings",
        ),
        (
            "/shape/forbidden",
            ErrorKind::EndpointForbidden,
            "You don't have permission to use this endpoint.",
        ),
        (
            "/shape/server",
            ErrorKind::Server,
            "HTTP 500: <html>oops</html>",
        ),
    ];
    for (path, kind, message) in cases {
        let err = c.post(path, ()).await.expect_err(path);
        let failure = err
            .api()
            .unwrap_or_else(|| panic!("{path}: not an API error: {err}"));
        assert_eq!(
            (failure.kind, failure.message.as_str()),
            (*kind, *message),
            "{path}"
        );
    }
    let err = c
        .post("/shape/validation", ())
        .await
        .expect_err("validation");
    assert_eq!(
        err.api().expect("api").errors["amount"],
        ["The amount field is required."]
    );
    let err = c
        .post("/shape/success-false", ())
        .await
        .expect_err("validation");
    assert_eq!(err.api().expect("api").errors["ticker"], ["Unknown ticker"]);

    // The server's own verification errors come back typed too.
    let wrong = Client::builder()
        .credentials(KEY, "wrong-secret")
        .base_url(base.as_str())
        .build()
        .expect("client");
    let err = wrong
        .post("/api/v4/trade-account/balance", ())
        .await
        .expect_err("bad signature");
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized));
    assert_eq!(err.to_string(), "Unauthorized request.");
    let err = c
        .post("/x", json!({"nonce": 1}))
        .await
        .expect_err("reserved");
    assert!(matches!(err, Error::Build(_)), "{err}");
    let err = c.post("/x", json!([1])).await.expect_err("not an object");
    assert!(matches!(err, Error::InvalidParams(_)), "{err}");
}

#[tokio::test]
async fn nonce_rejections_are_retried_with_fresh_nonces() {
    let (base, state) = start().await;
    let c = Client::builder()
        .credentials(KEY, SECRET)
        .base_url(base.as_str())
        .retry(RetryPolicy::new(3).base_delay(Duration::from_millis(1)))
        .build()
        .expect("client");
    let answer = c
        .post("/flaky-nonce", ())
        .await
        .expect("third attempt succeeds");
    assert_eq!(answer["ok"], true);
    let nonces: Vec<u64> = state
        .lock()
        .expect("lock")
        .seen
        .iter()
        .map(|s| s.nonce)
        .collect();
    assert_eq!(nonces.len(), 3);
    assert!(
        nonces.windows(2).all(|w| w[0] < w[1]),
        "fresh, increasing nonces: {nonces:?}"
    );
    // Without a retry policy the first rejection is returned.
    let plain = client(&base);
    state.lock().expect("lock").hits.clear();
    let err = plain.post("/flaky-nonce", ()).await.expect_err("rejected");
    assert_eq!(err.kind(), Some(ErrorKind::NonceRejected));
}

#[tokio::test]
async fn non_idempotent_calls_are_not_retried_after_reaching_the_server() {
    let (base, state) = start().await;
    let c = Client::builder()
        .credentials(KEY, SECRET)
        .base_url(base.as_str())
        .retry(RetryPolicy::new(2).base_delay(Duration::from_millis(1)))
        .build()
        .expect("client");
    let err = c.post("/bad-gateway", ()).await.expect_err("502");
    assert_eq!(err.kind(), Some(ErrorKind::Server));
    assert_eq!(state.lock().expect("lock").hits["/bad-gateway"], 1);
    let err = c
        .request("/bad-gateway")
        .idempotent(true)
        .send()
        .await
        .expect_err("502");
    assert_eq!(err.api().map(|f| f.status), Some(502));
    assert_eq!(
        state.lock().expect("lock").hits["/bad-gateway"],
        4,
        "1 + 1 + 2 retries"
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (base, _state) = start().await;
    let c = Client::builder()
        .credentials(KEY, SECRET)
        .base_url(base.as_str())
        .retry(RetryPolicy::new(1).base_delay(Duration::from_millis(1)))
        .build()
        .expect("client");
    let started = Instant::now();
    c.post("/rate-limited", ())
        .await
        .expect("second attempt succeeds");
    // A lower bound only: the client slept at least the server's Retry-After.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn clock_offset_and_jwt() {
    let (base, state) = start().await;
    let c = client(&base);
    let offset = c.sync_clock().await.expect("time");
    // The server runs 100 s ahead; its clock has whole seconds, so ±1 s.
    assert!((99_000..=101_500).contains(&offset), "offset {offset}");
    let nonce = c.next_nonce();
    let local = whitebit_client::unix_ms();
    assert!(
        nonce >= local + 99_000 && nonce <= local + 101_600,
        "window nonces follow the server clock"
    );
    let token = c.issue_jwt().await;
    // The server's nonce book has not seen such future nonces; its window check refuses them.
    assert_eq!(
        token.expect_err("outside the window").kind(),
        Some(ErrorKind::NonceRejected)
    );
    let fresh = client(&base);
    let token = fresh.issue_jwt().await.expect("token");
    assert_eq!(token.expires_at, 1_700_000_060);
    assert!(!format!("{token:?}").contains("aaa.bbb"));
    assert!(
        state
            .lock()
            .expect("lock")
            .seen
            .iter()
            .any(|s| s.path == "/api/v4/jwt")
    );
}

#[tokio::test]
async fn transport_errors_do_not_carry_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let c = client(&format!("http://127.0.0.1:{port}"));
    let err = c
        .post("/api/v4/trade-account/balance", ())
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, Error::Transport(_)));
    let text = format!("{err} {err:?}");
    // The URL (and with it any path or query) is dropped; the socket address of a refused
    // connection may remain in the source error.
    assert!(!text.contains("http://"), "{text}");
    assert!(!text.contains("/api/v4/trade-account/balance"), "{text}");
    assert!(!text.contains(SECRET));
}
