//! A signed request is never sent on to another address: a real server on 127.0.0.1 answers
//! every request with a redirect to a second real server, which must receive nothing, while
//! the client reports the redirect as its own error (status and target, without the target's
//! query or credentials).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use whitebit_client::{Client, Error};

const KEY: &str = "redirect-test-key";
const SECRET: &str = "redirect-test-secret-0123456789";

/// Starts a server answering every request with `handler`; its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A server that records every request it receives (path and headers).
async fn recording() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: axum::http::HeaderMap| {
        let record = record.clone();
        async move {
            let names: Vec<&str> = headers.keys().map(|n| n.as_str()).collect();
            record
                .lock()
                .expect("lock")
                .push(format!("{uri} {names:?}"));
            (StatusCode::OK, r#"{"ok":true}"#)
        }
    });
    (serve(app).await, seen)
}

/// A server answering every request with `status` and `Location: location`.
async fn redirecting(status: u16, location: String) -> String {
    let app = Router::new().fallback(move || {
        let location = location.clone();
        async move {
            let mut response = Response::new(axum::body::Body::empty());
            *response.status_mut() = StatusCode::from_u16(status).expect("status");
            response.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&location).expect("location"),
            );
            response.into_response()
        }
    });
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_never_follow_redirects() {
    let (elsewhere, seen) = recording().await;
    for status in [301_u16, 302, 303, 307, 308] {
        let location = format!(
            "http://user:hunter2@{}/steal?token=abc#frag",
            &elsewhere[7..]
        );
        let base = redirecting(status, location).await;
        let client = Client::builder()
            .credentials(KEY, SECRET)
            .base_url(base.as_str())
            .build()
            .expect("client");
        let error = client
            .post(
                "/api/v4/trade-account/balance",
                serde_json::json!({"ticker": "BTC"}),
            )
            .await
            .expect_err("a redirect is an error");
        match &error {
            Error::Redirect {
                status: got,
                location,
            } => {
                assert_eq!(*got, status);
                assert_eq!(
                    location.as_deref(),
                    Some(format!("{elsewhere}/steal").as_str()),
                    "the target without credentials, query or fragment"
                );
            }
            other => panic!("{status}: expected Error::Redirect, got {other:?}"),
        }
        let text = error.to_string();
        assert!(text.contains(&status.to_string()), "{text}");
        assert!(
            text.contains("not followed") && text.contains("base URL"),
            "{text}"
        );
        for secret in ["hunter2", "token=abc", "frag", SECRET] {
            assert!(!text.contains(secret), "{text}");
            assert!(!format!("{error:?}").contains(secret), "{error:?}");
        }
        // The token endpoint too.
        let error = client
            .issue_jwt()
            .await
            .expect_err("a redirect is an error");
        assert!(matches!(error, Error::Redirect { .. }), "{error:?}");
    }
    assert!(
        seen.lock().expect("lock").is_empty(),
        "the second server received: {:?}",
        seen.lock().expect("lock")
    );
}
