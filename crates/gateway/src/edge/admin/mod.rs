//! The admin API: JSON over HTTP on its own listener (loopback by default, `[admin] addr`),
//! every `/admin/…` route behind `Authorization: Bearer <admin token>` (compared in constant
//! time). It is a thin layer over [`KeyService`]: the CLI's `accounts` and `keys` commands
//! talk to it, so every change goes through the one code path that keeps the gateway's
//! in-memory keys right (`docs/design-decisions.md` 27).
//!
//! Every route, authenticated or not, first checks the request's `Host` ([`AdminHosts`]): only
//! loopback names and addresses, the listener's own address and (with `[admin] allow_remote`)
//! the names of `[admin] hosts` are answered; anything else gets 421, so a web page of another
//! site whose name resolves to 127.0.0.1 (DNS rebinding) reads nothing and changes nothing.
//!
//! Unauthenticated: `GET /healthz` (`{"status":"ok"}`) and `GET /readyz` (200 when the stores
//! answer, else 503). Extra routes (the lead's `/metrics`) are merged in through
//! [`AdminOptions::extra`]. Builds with the `test-clock` feature also serve
//! `POST /test/clock` (authenticated; `docs/design-decisions.md` 29); release builds have no such route.
//!
//! Routes (answers are JSON; errors are `{"code":0,"message":"…"}`):
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `POST /admin/accounts` | `{"name","password"?}` | 201 `{"account":{…},"console_link"?}` |
//! | `PUT /admin/accounts/{name}/password` | `{"password"}` | `{"account","password":"set"}` |
//! | `POST /admin/accounts/{name}/console-link` | | 201 `{"account","console_link":{"url","expires_ms"}}` |
//! | `GET /admin/accounts` | | `{"accounts":[…]}` |
//! | `GET /admin/accounts/{name}` | | `{"account":{…}}` |
//! | `POST /admin/accounts/{name}/2fa/enrol` | `{"code"?,"force"?}` | `{"account","otpauth_uri","secret"}` |
//! | `POST /admin/accounts/{name}/2fa/confirm` | `{"code"}` | `{"account":{…}}` |
//! | `POST /admin/keys` | `{"account","kind","code","ips"?,"endpoints"?}` | 201 `{"key":{…},"secret"}` |
//! | `GET /admin/keys?account=NAME` | | `{"keys":[…]}` |
//! | `GET /admin/keys/{public_key}` | | `{"key":{…}}` |
//! | `DELETE /admin/keys/{public_key}` | | `{"deleted":"…"}` |
//! | `POST /admin/keys/{public_key}/enable` | | `{"key":{…}}` |
//! | `POST /admin/keys/{public_key}/disable` | | `{"key":{…}}` |
//! | `POST /admin/keys/{public_key}/rotate-secret` | `{"code"}` | `{"key":{…},"secret"}` |
//! | `PUT /admin/keys/{public_key}/ips` | `{"ips":[…]}` | `{"key":{…}}` |
//! | `PUT /admin/keys/{public_key}/endpoints` | `{"endpoints":[…]}` | `{"key":{…}}` |
//! | `POST /admin/partners` | `{"name"}` | 201 `{"partner":{…},"enc_key"}` |
//! | `GET /admin/partners` | | `{"partners":[…]}` |
//! | `GET /admin/partners/{auth_key}` | | `{"partner":{…}}` |
//! | `DELETE /admin/partners/{auth_key}` | | `{"deleted":"…"}` |
//! | `POST /admin/partners/{auth_key}/enable` | | `{"partner":{…}}` |
//! | `POST /admin/partners/{auth_key}/disable` | | `{"partner":{…}}` |
//! | `GET /admin/audit?limit=N` | | `{"entries":[…]}` |
//! | `POST /admin/reload` | | `{"reloaded":true,"file","changed":[…]}`; refused: 400 (invalid file, unusable setting) or 409 (a setting that needs a restart) with `file`, `line`, `key` |
//!
//! Answers that carry a secret (a key's secret, a partner's Enc Key, a one-time console link)
//! have `Cache-Control: no-store`. An account created without a password gets a one-time
//! console link when a console is configured (`[console] listen` or `public_url`).

mod accounts;
mod hosts;
mod keys;
mod ops;
mod partners;
mod respond;
mod token;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post, put};

use crate::edge::server::Peer;
use crate::service::reload::Reloader;
use crate::service::{Caller, KeyService};
pub(crate) use hosts::{AdminHosts, with_host_check};
use respond::message;
pub(crate) use token::AdminToken;
use wbauth_store::NonceStore;

/// The environment variable that holds the admin token (server and CLI).
pub const ADMIN_TOKEN_ENV: &str = "WBAUTH_ADMIN_TOKEN";
/// The admin token's file name inside the data directory (generated when the variable is
/// not set).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Shortest accepted admin token.
pub(crate) const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// The request header a client may use to name the operator in the audit log.
pub const ACTOR_HEADER: &str = "x-wbauth-actor";
/// Default number of audit entries listed.
pub(crate) const DEFAULT_AUDIT_LIMIT: u32 = 100;

/// What the admin router serves besides the management API.
#[derive(Default)]
pub(crate) struct AdminOptions {
    /// Unauthenticated routes merged at the root — the place to mount `/metrics`
    /// (`docs/design-decisions.md` 8: operational routes live on the admin listener only).
    pub(crate) extra: Router,
    /// Checked by `/readyz` next to the key store.
    pub(crate) nonces: Option<Arc<dyn NonceStore>>,
    /// What `POST /admin/reload` runs (without it the route answers 404).
    pub(crate) reloader: Option<Arc<Reloader>>,
    /// The listeners' certificates, whose state `/readyz` shows.
    pub(crate) certificates: crate::edge::tls::Certificates,
    /// The clock `POST /test/clock` moves (builds with the `test-clock` feature only).
    #[cfg(feature = "test-clock")]
    pub(crate) test_clock: Option<Arc<crate::clock::TestClock>>,
}

impl std::fmt::Debug for AdminOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOptions").finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct AdminState {
    service: Arc<KeyService>,
    token: Arc<AdminToken>,
    nonces: Option<Arc<dyn NonceStore>>,
    reloader: Option<Arc<Reloader>>,
    certificates: crate::edge::tls::Certificates,
    #[cfg(feature = "test-clock")]
    test_clock: Option<Arc<crate::clock::TestClock>>,
}

/// The admin router: `/admin/…` (bearer token), `/healthz`, `/readyz`, the `extra` routes,
/// and with the `test-clock` feature `/test/clock`.
pub(crate) fn admin_router(
    service: Arc<KeyService>,
    token: AdminToken,
    options: AdminOptions,
) -> Router {
    let state = AdminState {
        service,
        token: Arc::new(token),
        nonces: options.nonces,
        reloader: options.reloader,
        certificates: options.certificates,
        #[cfg(feature = "test-clock")]
        test_clock: options.test_clock,
    };
    let protected = Router::new()
        .route(
            "/admin/accounts",
            post(accounts::create).get(accounts::list),
        )
        .route("/admin/accounts/{name}", get(accounts::show))
        .route(
            "/admin/accounts/{name}/password",
            put(accounts::set_password),
        )
        .route(
            "/admin/accounts/{name}/console-link",
            post(accounts::console_link),
        )
        .route(
            "/admin/accounts/{name}/2fa/enrol",
            post(accounts::enrol_2fa),
        )
        .route(
            "/admin/accounts/{name}/2fa/confirm",
            post(accounts::confirm_2fa),
        )
        .route("/admin/keys", post(keys::create).get(keys::list))
        .route("/admin/keys/batch", post(keys::create_batch))
        .route(
            "/admin/keys/{public_key}",
            get(keys::show).delete(keys::delete),
        )
        .route("/admin/keys/{public_key}/enable", post(keys::enable))
        .route("/admin/keys/{public_key}/disable", post(keys::disable))
        .route(
            "/admin/keys/{public_key}/rotate-secret",
            post(keys::rotate_secret),
        )
        .route("/admin/keys/{public_key}/ips", put(keys::set_ips))
        .route(
            "/admin/keys/{public_key}/endpoints",
            put(keys::set_endpoints),
        )
        .route(
            "/admin/partners",
            post(partners::create).get(partners::list),
        )
        .route(
            "/admin/partners/{auth_key}",
            get(partners::show).delete(partners::delete),
        )
        .route("/admin/partners/{auth_key}/enable", post(partners::enable))
        .route(
            "/admin/partners/{auth_key}/disable",
            post(partners::disable),
        )
        .route("/admin/audit", get(ops::audit_log))
        .route("/admin/reload", post(ops::reload));
    #[cfg(feature = "test-clock")]
    let protected = protected.route(
        "/test/clock",
        post(ops::set_test_clock).get(ops::get_test_clock),
    );
    let protected = protected.route_layer(from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .merge(protected)
        .with_state(state)
        .merge(options.extra)
        .fallback(not_found)
}

/// Who is calling: `admin@IP`, or `NAME@IP` when the client names the operator in
/// `X-Wbauth-Actor` (letters, digits and `.`, `_`, `-`, `:`, up to 64).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(caller(
            parts.extensions.get::<Peer>().copied(),
            &parts.headers,
        ))
    }
}

fn caller(peer: Option<Peer>, headers: &HeaderMap) -> Caller {
    let ip: Option<IpAddr> = peer.map(|Peer(addr)| crate::ip::canonical(addr.ip()));
    let name = headers
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
        })
        .unwrap_or("admin");
    let actor = match ip {
        Some(ip) => format!("{name}@{ip}"),
        None => name.to_owned(),
    };
    Caller::new(actor, ip)
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let presented = match (values.next(), values.next()) {
        (Some(value), None) => {
            let bytes = value.as_bytes();
            match bytes.get(..7) {
                Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => bytes.get(7..),
                _ => None,
            }
        }
        _ => None,
    };
    match presented {
        Some(token) if state.token.matches(token) => next.run(request).await,
        _ => {
            let mut response = message(
                StatusCode::UNAUTHORIZED,
                "Admin token missing or wrong (Authorization: Bearer <token>).",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found.")
}
