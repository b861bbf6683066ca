//! Forwarding a verified request upstream (`decisions.md` 10): the method, the normalised
//! path, the decoded payload as the body, the client's headers minus hop-by-hop and every
//! `X-TXC-*` / `X-Auth-*` header, plus the gateway's own identity headers. The response is
//! read in full (at most `max_response_bytes`, within the route's timeout) before it is passed
//! back, so an upstream that fails mid-response still yields a clean 502 or 504.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use whitebit_auth::ApiError;

use crate::pipeline::Verified;

/// A pooled HTTP/1.1 client for upstreams.
pub type UpstreamClient = Client<HttpConnector, Full<bytes::Bytes>>;

/// Builds the upstream client.
#[must_use]
pub fn upstream_client() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

fn is_hop_by_hop(name: &HeaderName, connection_listed: &[String]) -> bool {
    let n = name.as_str();
    HOP_BY_HOP.contains(&n) || connection_listed.iter().any(|c| c == n)
}

fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The headers sent upstream: the client's minus hop-by-hop, `Host`, `Content-Length` and
/// every `X-TXC-*` / `X-Auth-*` header (and `Authorization` when `strip_authorization`), plus
/// the gateway's `identity` headers and the new `Content-Length`.
#[must_use]
pub fn upstream_headers(
    client: &HeaderMap,
    identity: &[(HeaderName, &str)],
    body_len: usize,
    strip_authorization: bool,
) -> HeaderMap {
    let listed = connection_listed(client);
    let mut out = HeaderMap::with_capacity(client.len() + 3);
    for (name, value) in client {
        let n = name.as_str();
        if is_hop_by_hop(name, &listed)
            || n.starts_with("x-txc-")
            || n.starts_with("x-auth-")
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || (strip_authorization && name == header::AUTHORIZATION)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    for (name, value) in identity {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name.clone(), v);
        }
    }
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    out
}

/// A request on its way upstream.
#[derive(Debug)]
pub struct Outbound<'a> {
    /// Upstream base URL.
    pub base: &'a str,
    /// Upstream timeout.
    pub timeout: Duration,
    /// Largest response body passed back.
    pub max_response_bytes: usize,
    /// The normalised path.
    pub path: &'a str,
    /// The body to send.
    pub body: bytes::Bytes,
    /// The headers to send.
    pub headers: HeaderMap,
}

/// Sends a request upstream and passes its answer back once it is complete: 502 when the
/// upstream cannot be reached, breaks the connection before its answer is complete, or answers
/// more than `max_response_bytes`; 504 when the whole answer does not arrive in time.
pub async fn send_upstream(
    client: &UpstreamClient,
    out: Outbound<'_>,
) -> Result<Response<Body>, ApiError> {
    let base = out.base;
    let uri = format!("{base}{}", out.path);
    let mut request = Request::post(uri)
        .body(Full::new(out.body))
        .map_err(|_| ApiError::BadGateway)?;
    *request.headers_mut() = out.headers;
    let max = out.max_response_bytes;
    // The head and the body under one timeout: an answer cut or stalled half way must not
    // reach the client as a 200 with a broken body.
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("upstream unreachable: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, max)
            .collect()
            .await
            .map_err(|e| format!("upstream answer broken or too large: {e}"))?
            .to_bytes();
        Ok::<_, String>((parts, body))
    };
    let (mut parts, body) = match tokio::time::timeout(out.timeout, exchange).await {
        Err(_) => {
            tracing::warn!(target: "wbauth::upstream", upstream = base, "upstream timed out");
            return Err(ApiError::GatewayTimeout);
        }
        Ok(Err(error)) => {
            tracing::warn!(target: "wbauth::upstream", upstream = base, error = %error, "upstream failed");
            return Err(ApiError::BadGateway);
        }
        Ok(Ok(answer)) => answer,
    };
    let listed = connection_listed(&parts.headers);
    let names: Vec<HeaderName> = parts.headers.keys().cloned().collect();
    for name in names {
        if is_hop_by_hop(&name, &listed) {
            parts.headers.remove(&name);
        }
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Forwards a verified private request: its decoded payload as the body, `X-Auth-Key` and
/// `X-Auth-Account` as the identity.
pub async fn forward(
    client: &UpstreamClient,
    base: &str,
    timeout: Duration,
    max_response_bytes: usize,
    client_headers: &HeaderMap,
    verified: Verified,
) -> Result<Response<Body>, ApiError> {
    let identity = [
        (
            HeaderName::from_static("x-auth-key"),
            verified.key.public_key.as_str(),
        ),
        (
            HeaderName::from_static("x-auth-account"),
            verified.key.account_name.as_str(),
        ),
    ];
    let headers = upstream_headers(client_headers, &identity, verified.payload.len(), false);
    send_upstream(
        client,
        Outbound {
            base,
            timeout,
            max_response_bytes,
            path: &verified.path,
            body: verified.payload.clone(),
            headers,
        },
    )
    .await
}
