//! What the checks hand on: a [`Verified`] request, a Fiat request's [`FiatAdmitted`], or the
//! [`Refusal`] that answers; and the [`Incoming`] request they read.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use bytes::Bytes;
use whitebit_auth::{ApiError, TokenRejection};

use crate::state::keys::ActiveKey;
use crate::verify::routing::Target;

/// A request that passed every check and whose nonce is recorded (opaque outside this crate:
/// the gateway forwards it). `Debug` shows the payload's length only.
pub struct Verified {
    /// The key that signed it.
    pub(crate) key: Arc<ActiveKey>,
    /// The normalised path.
    pub(crate) path: String,
    /// The decoded payload: exactly the signed bytes, the only body forwarded.
    pub(crate) payload: Bytes,
    /// The nonce.
    pub(crate) nonce: u64,
    /// The client address that was checked against the key's trusted IPs (`X-Forwarded-For`
    /// and `X-Real-IP` upstream).
    pub(crate) client_ip: IpAddr,
    /// Where it goes.
    pub(crate) target: Target,
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
pub(crate) struct FiatAdmitted {
    /// Who the token speaks for.
    pub(crate) identity: FiatIdentity,
    /// The normalised path.
    pub(crate) path: String,
    /// The body as received (Fiat requests carry no payload header).
    pub(crate) body: Bytes,
    /// The client address (`X-Forwarded-For` and `X-Real-IP` upstream).
    pub(crate) client_ip: IpAddr,
}

/// What passed the checks.
#[derive(Debug)]
pub(crate) enum Admitted {
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

/// Who a token speaks for (sent upstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FiatIdentity {
    /// A partner (`X-Auth-Partner`: its Auth Key).
    Partner(String),
    /// An account holding a token issued by this gateway (`X-Auth-Account`).
    Account(String),
}

impl FiatIdentity {
    /// The identity header for the upstream.
    #[must_use]
    pub(crate) fn header(&self) -> (HeaderName, &str) {
        match self {
            FiatIdentity::Partner(auth_key) => {
                (HeaderName::from_static("x-auth-partner"), auth_key)
            }
            FiatIdentity::Account(account) => (HeaderName::from_static("x-auth-account"), account),
        }
    }
}
