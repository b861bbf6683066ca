//! The account holders' web console: API settings served by the gateway on its own
//! listener (`[console] listen`, off by default). Server-rendered HTML (maud), one small
//! stylesheet, no JavaScript needed (a tiny script only adds copy buttons).
//!
//! Sign-in: name, password (argon2id) and, once 2FA is on, a TOTP code. Every failure gets the
//! same answer, and growing delays per (name, source) and per source slow guessing down
//! without letting a stranger lock anyone out (see [`crate::service`], `service/console.rs`).
//!
//! Before sign-in nothing is stored: the sign-in and one-time-link forms carry a token signed
//! with a per-process key over a random nonce in a cookie (double submit, see `anonymous.rs`).
//! Signed-in sessions: random 256-bit ids in a server-side map with idle and absolute expiry on
//! the gateway's clock, in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` unless `[console]
//! secure_cookie = false`); a session ends when its account's password is set again. Every
//! form carries its CSRF token; every POST without it is refused (403).
//!
//! Every operation goes through [`KeyService`], the code path of the admin API and the CLI,
//! so the same rules, stores, caches and audit log apply; every change asks for a current
//! TOTP code.

mod anonymous;
mod context;
mod keys;
mod pages;
mod session;
mod sign_in;
#[cfg(test)]
mod tests;
mod two_factor;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};

use crate::service::KeyService;
use crate::verify::gateway::Gateway;
use anonymous::FormKey;
use context::html;
use keys::{create_key, delete_page, key_action, key_page, keys_page};
use pages::Chrome;
use session::Sessions;
use sign_in::{home, sign_in, sign_in_form, sign_out, welcome, welcome_form};
use two_factor::{confirm, enrol, two_factor_page};

/// The signed-in session's cookie.
const COOKIE: &str = "wbauth_console";
/// The cookie of a visitor who is not signed in: the nonce their forms' token is signed over.
const FORM_COOKIE: &str = "wbauth_console_form";

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// The console's shared state.
#[derive(Clone)]
struct Console {
    gateway: Arc<Gateway>,
    service: Arc<KeyService>,
    sessions: Arc<Sessions>,
    /// Signs the forms of visitors who are not signed in (none without randomness).
    form_key: Option<Arc<FormKey>>,
    secure_cookie: bool,
}

/// The console router over the gateway's [`KeyService`] (serve it on its own listener with
/// [`crate::edge::server::serve`], which records each connection's peer address).
pub(crate) fn console_router(gateway: Arc<Gateway>, service: Arc<KeyService>) -> Router {
    let config = &gateway.config().console;
    let state = Console {
        sessions: Arc::new(Sessions::new(config.session_idle_ms, config.session_max_ms)),
        form_key: FormKey::random().map(Arc::new),
        secure_cookie: config.secure_cookie,
        gateway: gateway.clone(),
        service,
    };
    Router::new()
        .route("/", get(home))
        .route("/console.css", get(css))
        .route("/console.js", get(js))
        .route("/signin", get(sign_in_form).post(sign_in))
        .route("/signout", post(sign_out))
        .route("/welcome/{token}", get(welcome_form).post(welcome))
        .route("/2fa", get(two_factor_page))
        .route("/2fa/enrol", post(enrol))
        .route("/2fa/confirm", post(confirm))
        .route("/keys", get(keys_page).post(create_key))
        .route("/keys/{public_key}", get(key_page))
        .route(
            "/keys/{public_key}/{action}",
            get(delete_page).post(key_action),
        )
        .fallback(not_found)
        .with_state(state)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        JS,
    )
        .into_response()
}

async fn not_found() -> Response {
    let body = maud::html! { p { a href="/" { "Home" } } };
    html(
        StatusCode::NOT_FOUND,
        pages::layout(
            "Not found",
            &Chrome {
                account: None,
                csrf: "",
                flash: None,
                error: None,
            },
            &body,
        ),
    )
}
