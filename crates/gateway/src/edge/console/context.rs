//! What every console handler uses: the request context (address, session, form nonce),
//! cookies, the security headers, HTML and redirect responses, signed-in pages and errors.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use maud::Markup;

use super::pages::{self, Chrome};
use super::session::{self, Session, csrf_matches};
use super::{COOKIE, Console, FORM_COOKIE};
use crate::edge::form::Form;
use crate::edge::server::Peer;
use crate::service::{Caller, ManageError};

/// Who is asking: the client address (through trusted proxies, as on the public listener),
/// the session, when the cookie names a live one whose password still stands, and the form
/// nonce of a visitor who is not signed in.
pub(super) struct Ctx {
    ip: Option<IpAddr>,
    pub(super) session: Option<(String, Session)>,
    nonce: Option<String>,
}

impl axum::extract::FromRequestParts<Console> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Console,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<Peer>().map(|Peer(addr)| {
            crate::ip::canonical(state.gateway.live().client_ip(addr.ip(), &parts.headers))
        });
        let now = state.service.now_ms();
        let mut session = cookie(&parts.headers, COOKIE)
            .and_then(|id| state.sessions.get(&id, now).map(|s| (id, s)));
        if let Some((id, s)) = &session {
            match state
                .service
                .console_session_valid(&s.account, &s.stamp)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    // The password was set again (or the account is gone): the session ends.
                    state.sessions.remove(id);
                    session = None;
                }
                Err(e) => {
                    tracing::warn!(target: "wbauth::console", "cannot check a session: {e}");
                    session = None;
                }
            }
        }
        let nonce = cookie(&parts.headers, FORM_COOKIE);
        Ok(Ctx { ip, session, nonce })
    }
}

impl Ctx {
    pub(super) fn caller(&self, account: &str) -> Caller {
        let actor = match self.ip {
            Some(ip) => format!("console:{account}@{ip}"),
            None => format!("console:{account}"),
        };
        Caller::console(actor, self.ip)
    }
}

/// The value of cookie `name`, when it is 64 hex digits.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn secure_headers(response: &mut Response) {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

pub(super) fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response();
    secure_headers(&mut response);
    response
}

pub(super) fn redirect(to: &str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    secure_headers(&mut response);
    response
}

impl Console {
    pub(super) fn set_cookie(&self, response: &mut Response, name: &str, value: &str) {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}"
        )) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    pub(super) fn clear_cookie(&self, response: &mut Response, name: &str) {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
        )) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    /// The form nonce of a visitor who is not signed in (a new one when there is none: the
    /// response must then set its cookie) and the token their forms carry.
    pub(super) fn visitor_form(&self, ctx: &Ctx) -> Option<(String, bool, String)> {
        let key = self.form_key.as_ref()?;
        let (nonce, fresh) = match &ctx.nonce {
            Some(nonce) => (nonce.clone(), false),
            None => (session::random_token()?, true),
        };
        let token = key.token(&nonce);
        Some((nonce, fresh, token))
    }

    /// Whether a form of a visitor who is not signed in carries the token of their cookie.
    pub(super) fn visitor_form_ok(&self, ctx: &Ctx, form: &Form) -> bool {
        match (&self.form_key, &ctx.nonce) {
            (Some(key), Some(nonce)) => key.matches(nonce, form.get("csrf")),
            _ => false,
        }
    }

    pub(super) fn idle_days(&self) -> u64 {
        self.gateway.config().keys.idle_days
    }

    pub(super) fn kinds(&self) -> Vec<String> {
        self.gateway
            .config()
            .kinds
            .iter()
            .map(|k| k.name.clone())
            .collect()
    }

    pub(super) fn patterns(&self, kind: &str) -> Vec<String> {
        self.gateway
            .config()
            .kinds
            .iter()
            .find(|k| k.name == kind)
            .map(|k| k.paths.clone())
            .unwrap_or_default()
    }
}

/// A signed-in page, or the error shown in the layout.
pub(super) fn page(
    status: StatusCode,
    title: &str,
    account: &str,
    session: &Session,
    flash: Option<&str>,
    error: Option<&str>,
    body: &Markup,
) -> Response {
    html(
        status,
        pages::layout(
            title,
            &Chrome {
                account: Some(account),
                csrf: &session.csrf,
                flash,
                error,
            },
            body,
        ),
    )
}

pub(super) fn status_of(e: &ManageError) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error page for a signed-in user (the message of the admin API, never a secret).
pub(super) fn error_page(
    account: &str,
    session: &Session,
    e: &ManageError,
    back: &str,
) -> Response {
    let body = maud::html! { p { a href=(back) { "Back" } } };
    let mut response = page(
        status_of(e),
        "Not done",
        account,
        session,
        None,
        Some(&e.public_message()),
        &body,
    );
    if let Some(seconds) = e.retry_after_s()
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

pub(super) fn csrf_refused() -> Response {
    let body = maud::html! { p { a href="/signin" { "Start again" } } };
    html(
        StatusCode::FORBIDDEN,
        pages::layout(
            "Refused",
            &Chrome {
                account: None,
                csrf: "",
                flash: None,
                error: Some(
                    "The form's security token is missing or wrong (CSRF). Reload the page and try again.",
                ),
            },
            &body,
        ),
    )
}

/// The signed-in session of a request, checking the CSRF token of a form.
pub(super) fn signed_in(
    ctx: &Ctx,
    form: Option<&Form>,
) -> Result<(String, String, Session), Box<Response>> {
    let Some((id, session)) = &ctx.session else {
        return Err(Box::new(if form.is_some() {
            csrf_refused()
        } else {
            redirect("/signin")
        }));
    };
    if let Some(form) = form
        && !csrf_matches(session, form.get("csrf"))
    {
        return Err(Box::new(csrf_refused()));
    }
    Ok((id.clone(), session.account.clone(), session.clone()))
}
