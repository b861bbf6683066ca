//! One function per row of the check table (`docs/errors.md`), in the table's order. Each
//! returns the next row's input or the refusal its row answers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use whitebit_auth::headers;
use whitebit_auth::verify::{CheckedRequest, HeaderValue, Rejection, RequestParts, check_request};
use whitebit_auth::{ApiError, BodyMatch, NonceMode, PayloadMac};

use super::outcome::{Incoming, Refusal};
use crate::config::Config;
use crate::state::keys::{ActiveKey, KeyCache};
use crate::verify::rate::RateLimiter;
use crate::verify::routing::Target;
use wbauth_store::NonceStore;

/// Row 1: the method is POST.
pub(super) fn method(method: &Method) -> Result<(), ApiError> {
    if method == Method::POST {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// Row 2: the body is within `verify.max_body_bytes`, by its declared length first, then by the
/// bytes actually sent (read within `listen.body_timeout_ms`; too slow answers 408, a broken
/// body 400, as the HTTP layer would).
pub(super) async fn size(
    headers: &HeaderMap,
    body: Body,
    config: &Config,
) -> Result<Bytes, Refusal> {
    let limit = config.verify.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let timeout = Duration::from_millis(config.listen.body_timeout_ms);
    if let Some(len) = declared.filter(|len| *len > limit as u64) {
        // A body of moderate size that is on its way is read and dropped first, so that the
        // client, still sending, reads the 413 instead of a reset connection. Not for a client
        // waiting for `100 Continue` (it sends nothing until told to).
        let waits_for_continue = headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if len <= DRAINED_AT_MOST && !waits_for_continue {
            let _ = tokio::time::timeout(timeout, drain(body)).await;
        }
        return Err(ApiError::PayloadTooLarge.into());
    }
    match tokio::time::timeout(timeout, http_body_util::Limited::new(body, limit).collect()).await {
        Err(_) => Err(Refusal::Transport(StatusCode::REQUEST_TIMEOUT)),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::PayloadTooLarge.into())
        }
        Ok(Err(_)) => Err(Refusal::Transport(StatusCode::BAD_REQUEST)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// The largest too-large body read (and dropped) before the 413 is sent; a larger one is
/// answered at once and its connection closed.
const DRAINED_AT_MOST: u64 = 1 << 20;

/// A pause in a too-large body after which it is no longer waited for.
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// Reads `body` while it keeps coming (to its end, or to a pause of [`DRAIN_IDLE`]), keeping
/// nothing; bounded by its declared length.
async fn drain(mut body: Body) {
    use http_body_util::BodyExt as _;
    while let Ok(Some(Ok(_))) = tokio::time::timeout(DRAIN_IDLE, body.frame()).await {}
}

/// The 415 row (right after row 2): no Content-Type, or `application/json` with any
/// parameters.
pub(super) fn content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    for value in headers.get_all(header::CONTENT_TYPE) {
        if !headers::is_json_content_type(value.as_bytes()) {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    Ok(())
}

/// A Fiat Gateway route's path, normalised (the route was found by it).
pub(super) fn fiat_path(uri: &Uri) -> Result<String, ApiError> {
    whitebit_auth::path::normalize_path(uri.path())
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| ApiError::RequestPathMismatch)
}

/// The request's `X-TXC-*` headers, as names built once (looking a header up by `&str`
/// parses the name on every request).
static API_KEY_HEADER: HeaderName = HeaderName::from_static(headers::API_KEY_LOWERCASE);
static PAYLOAD_HEADER: HeaderName = HeaderName::from_static(headers::PAYLOAD_LOWERCASE);
static SIGNATURE_HEADER: HeaderName = HeaderName::from_static(headers::SIGNATURE_LOWERCASE);

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> HeaderValue<'a> {
    HeaderValue::from_values(
        headers
            .get_all(name)
            .iter()
            .map(axum::http::HeaderValue::as_bytes),
    )
}

/// Rows 3–11, the request's own fields (pure, in the protocol crate): the three headers
/// present (3–5), the payload decoding to one JSON object matching the body (6), `request`
/// present (7) and equal to the URL path under the path rule (8), `nonce` present (9) and an
/// integer (10), `nonceWindow` a boolean (11).
pub(super) fn fields<'a>(
    req: &'a Incoming<'a>,
    body_match: BodyMatch,
) -> Result<CheckedRequest<'a>, Refusal> {
    let parts = RequestParts {
        api_key: header(req.headers, &API_KEY_HEADER),
        payload: header(req.headers, &PAYLOAD_HEADER),
        signature: header(req.headers, &SIGNATURE_HEADER),
        body: req.body,
        path: req.path_and_query,
    };
    check_request(&parts, body_match).map_err(|r| match r {
        Rejection::Api(e) => Refusal::Api(e),
        Rejection::MissingFields { request, nonce } => Refusal::MissingFields { request, nonce },
    })
}

/// Row 12: the key exists and signed the payload (constant time). The lookup touches memory
/// only, and an unknown key gets a stand-in keyed with a dummy secret, checked the same way,
/// then refused: it costs the same work as a wrong signature.
pub(super) fn signature(
    keys: &KeyCache,
    fields: &CheckedRequest<'_>,
) -> Result<Arc<ActiveKey>, ApiError> {
    let (key, known) = keys.lookup(fields.api_key().unwrap_or_default());
    fields.verify_signature(Some(&key.mac as &dyn PayloadMac))?;
    if !known || fields.api_key().is_none() {
        return Err(ApiError::Unauthorized);
    }
    Ok(key)
}

/// Row 13: the key is enabled, not idle-deactivated, and the client address is on its
/// trusted-IP list (when it has one).
pub(super) fn key_state(
    key: &ActiveKey,
    now_ms: u64,
    idle_days: u64,
    client_ip: IpAddr,
) -> Result<(), ApiError> {
    if !key.enabled || key.is_idle(now_ms, idle_days) || !key.allows_ip(client_ip) {
        return Err(ApiError::KeyDisabled);
    }
    Ok(())
}

/// 404 (after row 13): a route serves the path.
pub(super) fn route(target: Option<&Target>) -> Result<Target, ApiError> {
    target.cloned().ok_or(ApiError::EndpointNotFound)
}

/// Row 14: the key's kind and its endpoint allow-list open the path.
pub(super) fn scope(
    kinds: &HashMap<String, Vec<String>>,
    key: &ActiveKey,
    path: &str,
) -> Result<(), ApiError> {
    let kind_opens = kinds.get(&key.kind).is_some_and(|patterns| {
        patterns
            .iter()
            .any(|p| whitebit_auth::path::pattern_matches(p, path))
    });
    if kind_opens && key.allows_endpoint(path) {
        Ok(())
    } else {
        Err(ApiError::EndpointForbidden)
    }
}

/// Row 15: the key's rate limit (off unless configured). Only requests whose nonce would be
/// accepted count (a read-only check first), so replaying a captured request cannot lock a
/// key out.
pub(super) async fn rate_limit(
    nonces: &dyn NonceStore,
    rate: &RateLimiter,
    key: &ActiveKey,
    nonce: u64,
    mode: NonceMode,
    now_ms: u64,
) -> Result<(), Refusal> {
    if !rate.is_enabled() {
        return Ok(());
    }
    nonces
        .check(key.id, nonce, mode, now_ms)
        .await
        .map_err(|_| ApiError::ServiceUnavailable)??;
    rate.admit(key.id, &key.kind, now_ms)
        .map_err(Refusal::RateLimited)
}

/// Row 16: the nonce is fresh (within the window and unused, or above the last accepted one),
/// recorded durably before anything else happens; a store that cannot be reached refuses
/// (503), never lets the request through.
pub(super) async fn nonce(
    nonces: &dyn NonceStore,
    key: &ActiveKey,
    nonce: u64,
    mode: NonceMode,
    now_ms: u64,
) -> Result<(), Refusal> {
    nonces
        .consume(key.id, nonce, mode, now_ms)
        .await
        .map_err(|_| ApiError::ServiceUnavailable)??;
    Ok(())
}
