//! The check table of `docs/errors.md`, run in order: one function per row (in `verify/rows.rs`), and
//! [`Gateway::check`] calling them as the table lists them. Where a request goes is decided
//! once, before any check ([`routing`]); a Fiat Gateway route swaps rows 3–16 for the token
//! checks ([`fiat`]). Nothing downstream re-reads the raw request: a private request comes out
//! as a [`Verified`] whose body is the decoded payload.

pub mod fiat;
pub mod routing;
mod rows;

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
use whitebit_auth::{ApiError, TokenRejection};

use crate::keys::ActiveKey;
use crate::pipeline::Gateway;
pub use fiat::FiatIdentity;
pub use routing::{Destination, Routes, Target};

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

/// A request to a Fiat Gateway route whose token passed every check.
#[derive(Debug)]
pub struct FiatAdmitted {
    /// Who the token speaks for.
    pub identity: FiatIdentity,
    /// The normalised path.
    pub path: String,
    /// The body as received (Fiat requests carry no payload header).
    pub body: Bytes,
    /// The client address (`X-Forwarded-For` and `X-Real-IP` upstream).
    pub client_ip: IpAddr,
}

/// What passed the checks.
#[derive(Debug)]
pub enum Admitted {
    /// A signed private request.
    Private(Verified),
    /// A Fiat Gateway request with a valid token.
    Fiat(FiatAdmitted),
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
    /// A Fiat Gateway token failed a check (401 with the reason).
    Token(TokenRejection),
    /// The HTTP layer's own failure while the body was read: 408 (too slow) or 400 (broken).
    Transport(StatusCode),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

/// What the checks read from an HTTP request. `Debug` shows header names and the body's
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

impl Gateway {
    /// Where a request goes (decided once, before any check).
    #[must_use]
    pub fn destination(&self, method: &Method, uri: &axum::http::Uri) -> Destination<'_> {
        self.routes.destination(method, uri)
    }

    /// The check table of `docs/errors.md`, in order, for a request going to `destination`
    /// (not a public GET route). Reads the body (row 2).
    pub async fn check(
        &self,
        destination: Destination<'_>,
        head: &Parts,
        body: Body,
        peer: IpAddr,
    ) -> Result<Admitted, Refusal> {
        rows::method(&head.method)?; // row 1
        let body = rows::size(&head.headers, body, &self.config).await?; // row 2
        rows::content_type(&head.headers)?; // 415
        let target = match destination {
            Destination::Fiat(_) => {
                let path = rows::fiat_path(&head.uri)?;
                let client_ip = self.client_ip(peer, &head.headers);
                let identity = fiat::authorize(self, &head.headers, &path, &body).await?;
                return Ok(Admitted::Fiat(FiatAdmitted {
                    identity,
                    path,
                    body,
                    client_ip,
                }));
            }
            Destination::Private(target) => target,
            // Answered before any check.
            Destination::Jwks | Destination::Time => None,
        };
        let incoming = Incoming {
            method: &head.method,
            path_and_query: head.uri.path_and_query().map_or("/", |p| p.as_str()),
            headers: &head.headers,
            body: &body,
            peer,
        };
        self.verify_for(&incoming, target)
            .await
            .map(Admitted::Private)
    }

    /// Rows 3–16 for a request that passed rows 1, 2 and the 415 check.
    pub async fn verify(&self, req: &Incoming<'_>) -> Result<Verified, Refusal> {
        let path = req.path_and_query.split('?').next().unwrap_or_default();
        let target = whitebit_auth::path::normalize_path(path)
            .ok()
            .and_then(|path| self.routes.private_target(&path));
        self.verify_for(req, target).await
    }

    /// Rows 3–16, the route already known.
    async fn verify_for(
        &self,
        req: &Incoming<'_>,
        target: Option<&Target>,
    ) -> Result<Verified, Refusal> {
        let fields = rows::fields(req, self.body_match)?; // rows 3–11
        let key = rows::signature(&self.keys, &fields)?; // row 12
        let now = self.clock.now_ms();
        let client_ip = self.client_ip(req.peer, req.headers);
        rows::key_state(&key, now, self.config.keys.idle_days, client_ip)?; // row 13
        let target = rows::route(target)?; // 404
        rows::scope(&self.kinds, &key, fields.path())?; // row 14
        let (nonce, mode) = (fields.nonce(), fields.nonce_mode());
        rows::rate_limit(&*self.nonces, &self.rate, &key, nonce, mode, now).await?; // row 15
        rows::nonce(&*self.nonces, &key, nonce, mode, now).await?; // row 16

        key.mark_used(now);
        self.touch.record(key.id, now);
        Ok(Verified {
            path: fields.path().to_owned(),
            payload: Bytes::from(fields.into_decoded_payload()),
            key,
            nonce,
            client_ip,
            target,
        })
    }
}
