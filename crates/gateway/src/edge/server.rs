//! The public listener: HTTP/1.1 with header and body timeouts, header limits derived from
//! the body limit, graceful shutdown. The server takes an already-bound listener and a
//! shutdown future, so tests bind port 0 and stop cleanly.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use whitebit_auth::{ApiError, JwtEndpointError};

use crate::edge::forward::{Delivery, UpstreamClient, forward};
use crate::ops::metrics::Outcome;
use crate::verify::gateway::Gateway;
use crate::verify::routing::Upstream;
use crate::verify::{Admitted, Destination, FiatAdmitted, Live, Refusal, Target, Verified};

/// The TCP peer of a request (inserted per connection).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// Shared state of the public router.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The gateway.
    pub(crate) gateway: Arc<Gateway>,
    /// The upstream client.
    pub(crate) upstream: UpstreamClient,
}

impl AppState {
    /// The state over `gateway`, with new upstream connections (`[runtime]
    /// upstream_connections` per upstream at most).
    pub(crate) fn new(gateway: Arc<Gateway>) -> Self {
        let per_upstream = gateway.config().runtime.upstream_connections;
        Self {
            gateway,
            upstream: UpstreamClient::new(per_upstream),
        }
    }
}

/// Marks a response that is not to be sent: its connection is closed instead (the sandbox's
/// `reset` fault).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CloseConnection;

/// The public API as an axum router (one fallback handler: every path is a private
/// endpoint unless it is one of the few public GET routes).
pub fn public_router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(AppState::new(gateway))
}

fn json(status: u16, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The response for a catalogue error, with `Allow` / `Retry-After` where the row says so.
#[must_use]
pub(crate) fn error_response(error: ApiError) -> Response {
    let mut response = json(error.status(), error.body());
    if error == ApiError::MethodNotAllowed {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    if error.has_retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn refusal_response(refusal: Refusal, jwt_endpoint: bool) -> Response {
    match refusal {
        // Row 15 keeps its own answer on every endpoint.
        Refusal::RateLimited(seconds) => {
            let mut response = error_response(ApiError::RateLimited);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        // Produced only on the token endpoint (`docs/design-decisions.md` 20).
        Refusal::MissingFields { request, nonce } => {
            let e = JwtEndpointError::ValidationFailed {
                request_missing: request,
                nonce_missing: nonce,
            };
            json(e.status(), e.body())
        }
        Refusal::Api(e) if jwt_endpoint => match e.for_jwt_endpoint() {
            JwtEndpointError::Api(e) => error_response(e),
            other => json(other.status(), other.body()),
        },
        Refusal::Api(e) => error_response(e),
        Refusal::Token(reason) => json(reason.status(), reason.body()),
        Refusal::Transport(status) => status.into_response(),
    }
}

async fn handle(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    request: Request,
) -> Response {
    answered(&state, peer, request).await.0
}

/// The gateway's answer to one request, counted in the metrics and logged.
pub(crate) async fn answered(
    state: &AppState,
    peer: Option<Extension<Peer>>,
    request: Request,
) -> (Response, Outcome) {
    let started = std::time::Instant::now();
    // The request line is kept only when it is logged (no copy of the path otherwise).
    let logged = tracing::enabled!(target: "wbauth::request", tracing::Level::DEBUG)
        .then(|| (request.method().clone(), request.uri().path().to_owned()));
    let (response, outcome) = handle_inner(state, peer, request).await;
    let elapsed = started.elapsed();
    state.gateway.metrics().record(outcome, elapsed);
    // Never the payload, the signature or a secret: only what routing and outcome need.
    if let Some((method, path)) = logged {
        tracing::debug!(
            target: "wbauth::request",
            %method,
            path = %path,
            status = response.status().as_u16(),
            outcome = ?outcome,
            micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        );
    }
    (response, outcome)
}

fn refused(refusal: Refusal, jwt_endpoint: bool) -> (Response, Outcome) {
    let outcome = match refusal {
        Refusal::Api(e) => Outcome::Refused(e),
        Refusal::RateLimited(_) => Outcome::Refused(ApiError::RateLimited),
        Refusal::MissingFields { .. } => Outcome::MissingFields,
        Refusal::Token(_) => Outcome::TokenRefused,
        Refusal::Transport(_) => Outcome::Transport,
    };
    (refusal_response(refusal, jwt_endpoint), outcome)
}

fn failed(e: ApiError) -> (Response, Outcome) {
    (error_response(e), Outcome::Refused(e))
}

/// One request: where it goes (decided once), the check table, then the answer.
async fn handle_inner(
    state: &AppState,
    peer: Option<Extension<Peer>>,
    request: Request,
) -> (Response, Outcome) {
    let gw = &state.gateway;
    // The settings in force now, for the whole of this request (a reload meanwhile applies
    // from the next one).
    let live = gw.live();
    let (parts, body) = request.into_parts();
    let destination = live.destination(&parts.method, &parts.uri);
    match destination {
        Destination::Jwks => return (json(200, live.tokens().jwks()), Outcome::Public),
        Destination::Time => {
            let time = format!("{{\"time\":{}}}", gw.clock().now_ms() / 1000);
            return (json(200, time), Outcome::Public);
        }
        Destination::Fiat(_) | Destination::Private(_) => {}
    }
    let peer_ip: IpAddr = peer.map_or(IpAddr::from([127, 0, 0, 1]), |Extension(Peer(addr))| {
        addr.ip()
    });
    let admitted = match gw.check(&live, destination, &parts, body, peer_ip).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal, destination.is_token_endpoint()),
    };
    match admitted {
        Admitted::Fiat(fiat) => match destination {
            Destination::Fiat(upstream) => {
                forward_fiat(state, &live, &parts.headers, fiat, upstream).await
            }
            // `check` admits a Fiat request only for a Fiat destination.
            _ => failed(ApiError::EndpointNotFound),
        },
        Admitted::Private(verified) => answer_private(state, &live, &parts.headers, verified).await,
    }
}

/// The answer to an accepted private request: built in, a token, or the upstream's.
async fn answer_private(
    state: &AppState,
    live: &Live,
    headers: &axum::http::HeaderMap,
    verified: Verified,
) -> (Response, Outcome) {
    let gw = &state.gateway;
    let max = live.config().verify.max_response_bytes;
    match &verified.target {
        Target::Builtin => (
            json(200, crate::edge::builtin::answer(&verified)),
            Outcome::Accepted,
        ),
        Target::IssueToken => match live.tokens().issue_for_key(
            &verified.key.account_name,
            crate::tokens::TokenKey {
                public_key: &verified.key.public_key,
                id: verified.key.id,
            },
            gw.clock().now_ms(),
        ) {
            Ok(issued) => {
                let mut response = json(200, issued.response_body());
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                (response, Outcome::Accepted)
            }
            Err(e) => {
                tracing::error!(target: "wbauth::tokens", error = %e, "cannot issue a token");
                let answer = JwtEndpointError::ServerConfiguration;
                (json(answer.status(), answer.body()), Outcome::Accepted)
            }
        },
        Target::Upstream(upstream) => {
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
            let delivery = Delivery {
                path: &verified.path,
                body: verified.payload.clone(),
                identity: &identity,
                client_ip: verified.client_ip,
            };
            // The nonce is consumed (the request was accepted) even when the upstream fails.
            upstream_answer(forward(&state.upstream, upstream, max, headers, delivery).await)
        }
    }
}

fn upstream_answer(answer: Result<Response, ApiError>) -> (Response, Outcome) {
    match answer {
        Ok(response) => (response, Outcome::Accepted),
        Err(e) => failed(e),
    }
}

/// Forwards a Fiat Gateway request whose token passed.
async fn forward_fiat(
    state: &AppState,
    live: &Live,
    headers: &axum::http::HeaderMap,
    fiat: FiatAdmitted,
    upstream: &Upstream,
) -> (Response, Outcome) {
    let delivery = Delivery {
        path: &fiat.path,
        body: fiat.body,
        identity: &[fiat.identity.header()],
        client_ip: fiat.client_ip,
    };
    let max = live.config().verify.max_response_bytes;
    upstream_answer(forward(&state.upstream, upstream, max, headers, delivery).await)
}
