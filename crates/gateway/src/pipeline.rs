//! The request's way through the gateway: one straight line of named stages, each returning
//! the next stage's input or a row of `docs/errors.md`. Nothing downstream re-reads the raw
//! request: the result is a [`Verified`] request whose body is the decoded payload.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, Method};
use bytes::Bytes;
use whitebit_auth::headers;
use whitebit_auth::verify::{HeaderValue, Rejection, RequestParts, check_request};
use whitebit_auth::{ApiError, BodyMatch, PayloadMac};

use crate::clock::SharedClock;
use crate::config::{Config, pattern_matches};
use crate::ip::{IpRule, client_ip};
use crate::keys::{ActiveKey, KeyCache};
use crate::rate::RateLimiter;
use crate::store::{KeyStore, NonceStore};
use crate::touch::TouchQueue;

/// Where a verified request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Forward to `http://host:port`.
    Upstream {
        /// Base URL.
        base: String,
        /// Timeout in ms.
        timeout_ms: u64,
        /// The client headers forwarded (the route's `forward_headers` or the default list).
        forward_headers: Arc<[HeaderName]>,
    },
    /// Answer inside the gateway (the sandbox's built-in responses).
    Builtin,
    /// `POST /api/v4/jwt`: issue a token to the key's account.
    IssueToken,
}

/// A request that passed every check and whose nonce is recorded. `Debug` shows the
/// payload's length only.
pub struct Verified {
    /// The key that signed it.
    pub key: Arc<ActiveKey>,
    /// The normalised path.
    pub path: String,
    /// The decoded payload: exactly the signed bytes, the only body forwarded.
    pub payload: Bytes,
    /// The nonce.
    pub nonce: u64,
    /// The client address that was checked against the key's trusted IPs (`X-Forwarded-For`
    /// and `X-Real-IP` upstream).
    pub client_ip: IpAddr,
    /// Where it goes.
    pub target: Target,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("key", &self.key.public_key)
            .field("path", &self.path)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("nonce", &self.nonce)
            .field("client_ip", &self.client_ip)
            .field("target", &self.target)
            .finish()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A row of the catalogue.
    Api(ApiError),
    /// Rate limited; wait this many seconds.
    RateLimited(u64),
    /// Token endpoint: missing fields (`docs/design-decisions.md` 20).
    MissingFields {
        /// `request` missing.
        request: bool,
        /// `nonce` missing.
        nonce: bool,
    },
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

/// Everything the pipeline consults. Shared by every connection.
pub struct Gateway {
    /// The configuration.
    pub config: Arc<Config>,
    /// Every key, in memory.
    pub keys: Arc<KeyCache>,
    /// The durable key store.
    pub key_store: Arc<dyn KeyStore>,
    /// The nonce store.
    pub nonces: Arc<dyn NonceStore>,
    /// The clock.
    pub clock: SharedClock,
    /// Body-match policy.
    pub body_match: BodyMatch,
    /// Kind → path patterns.
    pub kinds: HashMap<String, Vec<String>>,
    /// Trusted proxies.
    pub trusted_proxies: Vec<IpRule>,
    /// Route table, longest prefix first.
    pub routes: Vec<(String, Target)>,
    /// Rate limits.
    pub rate: RateLimiter,
    /// Batched last-used updates.
    pub touch: TouchQueue,
    /// Request counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Issues and verifies the gateway's own tokens.
    pub tokens: Arc<crate::tokens::TokenIssuer>,
    /// Single use of partner tokens.
    pub replay: Arc<dyn crate::store::ReplayGuard>,
    /// Fiat Gateway routes, longest prefix first.
    pub fiat_routes: Vec<(String, Target)>,
    /// Fiat Gateway partners in memory (kept current by the admin API's `KeyService`).
    pub partners: Arc<crate::partners::PartnerCache>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// What the pipeline reads from an HTTP request. `Debug` shows header names and the body's
/// length only: no payload, signature or token.
pub struct Incoming<'a> {
    /// The method.
    pub method: &'a Method,
    /// Path and query as received.
    pub path_and_query: &'a str,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body (already limited to the size limit).
    pub body: &'a Bytes,
    /// The TCP peer.
    pub peer: IpAddr,
}

impl std::fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("method", self.method)
            .field("path_and_query", &self.path_and_query)
            .field(
                "headers",
                &self.headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            )
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("peer", &self.peer)
            .finish()
    }
}

/// Row 1.
pub fn check_method(method: &Method) -> Result<(), ApiError> {
    if method == Method::POST {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// The 415 check: no Content-Type, or `application/json` with any parameters.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    for value in headers.get_all(axum::http::header::CONTENT_TYPE) {
        let media = value
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        if !media.eq_ignore_ascii_case(headers::JSON_MEDIA_TYPE) {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    Ok(())
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

impl Gateway {
    /// The `/metrics` text: request counters plus key-cache and nonce-store figures.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        let mut gauges = vec![(
            "wbauth_keys",
            "API keys held in memory.",
            u64::try_from(self.keys.len()).unwrap_or(u64::MAX),
        )];
        gauges.extend(self.nonces.metrics());
        gauges.extend(self.replay.metrics());
        gauges.extend(self.metrics.store_gauges());
        self.metrics.render(&gauges)
    }

    /// The Fiat Gateway route serving `path` (normalised), if any.
    #[must_use]
    pub fn fiat_route(&self, path: &str) -> Option<&Target> {
        self.fiat_routes
            .iter()
            .find(|(prefix, _)| whitebit_auth::path::path_has_prefix(path, prefix))
            .map(|(_, target)| target)
    }

    /// Builds the route table from the configuration.
    #[must_use]
    pub fn routes_from(config: &Config) -> Vec<(String, Target)> {
        Self::table(&config.routes)
    }

    /// Builds the Fiat Gateway route table from the configuration.
    #[must_use]
    pub fn fiat_routes_from(config: &Config) -> Vec<(String, Target)> {
        Self::table(&config.fiat.routes)
    }

    fn table(routes: &[crate::config::RouteConfig]) -> Vec<(String, Target)> {
        let mut routes: Vec<(String, Target)> = routes
            .iter()
            .map(|r| {
                (
                    r.prefix.clone(),
                    Target::Upstream {
                        base: r.upstream.trim_end_matches('/').to_owned(),
                        timeout_ms: r.timeout_ms,
                        forward_headers: r.forward_headers.as_ref().map_or_else(
                            crate::forward::default_forward_headers,
                            |names| {
                                names
                                    .iter()
                                    .filter_map(|n| crate::forward::check_forward_header(n).ok())
                                    .collect()
                            },
                        ),
                    },
                )
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        routes
    }

    fn route(&self, path: &str) -> Option<&Target> {
        // The token endpoint is served by the gateway itself.
        if path == whitebit_auth::verify::JWT_ENDPOINT_PATH {
            return Some(&Target::IssueToken);
        }
        self.routes
            .iter()
            .find(|(prefix, _)| whitebit_auth::path::path_has_prefix(path, prefix))
            .map(|(_, target)| target)
    }

    /// The client address (`docs/design-decisions.md` 11).
    #[must_use]
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.trusted_proxies.is_empty() {
            return crate::ip::canonical(peer);
        }
        let name = match self.config.proxy.client_ip_header {
            crate::config::ClientIpHeader::XForwardedFor => "x-forwarded-for",
            crate::config::ClientIpHeader::Forwarded => "forwarded",
        };
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        client_ip(peer, &self.trusted_proxies, &values)
    }

    /// Rows 3–16 for a request that passed rows 1, 2 and the 415 check.
    pub async fn verify(&self, req: &Incoming<'_>) -> Result<Verified, Refusal> {
        // Rows 3–11 (pure).
        let parts = RequestParts {
            api_key: header(req.headers, &API_KEY_HEADER),
            payload: header(req.headers, &PAYLOAD_HEADER),
            signature: header(req.headers, &SIGNATURE_HEADER),
            body: req.body,
            path: req.path_and_query,
        };
        let checked = check_request(&parts, self.body_match).map_err(|r| match r {
            Rejection::Api(e) => Refusal::Api(e),
            Rejection::MissingFields { request, nonce } => {
                Refusal::MissingFields { request, nonce }
            }
        })?;

        // Row 12: key lookup (memory only) and signature, the same work for unknown keys: they
        // get a stand-in keyed with a dummy secret, checked the same way, then refused.
        let (key, known) = self.keys.lookup(checked.api_key().unwrap_or_default());
        checked.verify_signature(Some(&key.mac as &dyn PayloadMac))?;
        if !known || checked.api_key().is_none() {
            return Err(ApiError::Unauthorized.into());
        }

        // Row 13: enabled, not idle, address allowed.
        let now = self.clock.now_ms();
        if !key.enabled || key.is_idle(now, self.config.keys.idle_days) {
            return Err(ApiError::KeyDisabled.into());
        }
        let client_ip = self.client_ip(req.peer, req.headers);
        if !key.allows_ip(client_ip) {
            return Err(ApiError::KeyDisabled.into());
        }

        // 404 after rows 1–13.
        let path = checked.path().to_owned();
        let target = self
            .route(&path)
            .cloned()
            .ok_or(ApiError::EndpointNotFound)?;

        // Row 14: the kind and the key's endpoint allow-list.
        let kind_opens = self
            .kinds
            .get(&key.kind)
            .is_some_and(|patterns| patterns.iter().any(|p| pattern_matches(p, &path)));
        if !kind_opens || !key.allows_endpoint(&path) {
            return Err(ApiError::EndpointForbidden.into());
        }

        let (nonce, mode) = (checked.nonce(), checked.nonce_mode());
        let store_down = |_| Refusal::Api(ApiError::ServiceUnavailable);

        // Row 15: count only requests whose nonce would be accepted.
        if self.rate.is_enabled() {
            self.nonces
                .check(key.id, nonce, mode, now)
                .await
                .map_err(store_down)??;
            self.rate
                .admit(key.id, &key.kind, now)
                .map_err(Refusal::RateLimited)?;
        }

        // Row 16: consume durably.
        self.nonces
            .consume(key.id, nonce, mode, now)
            .await
            .map_err(store_down)??;

        key.mark_used(now);
        self.touch.record(key.id, now);
        Ok(Verified {
            key,
            path,
            payload: Bytes::from(checked.into_decoded_payload()),
            nonce,
            client_ip,
            target,
        })
    }
}
