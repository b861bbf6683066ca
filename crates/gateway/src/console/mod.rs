//! The account holders' web console (issue 8): API settings served by the gateway on its own
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
mod pages;
mod session;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use maud::Markup;

use crate::form::{Form, query_param};
use crate::pipeline::Gateway;
use crate::server::Peer;
use crate::service::{Caller, CreateKey, KeyService, KeyView, ManageError, TwoFactor};
use anonymous::FormKey;
use pages::Chrome;
use session::{NotCreated, Session, Sessions, csrf_matches};

/// The signed-in session's cookie.
pub const COOKIE: &str = "wbauth_console";
/// The cookie of a visitor who is not signed in: the nonce their forms' token is signed over.
pub const FORM_COOKIE: &str = "wbauth_console_form";

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
/// [`crate::server::serve`], which records each connection's peer address).
pub fn console_router(gateway: Arc<Gateway>, service: Arc<KeyService>) -> Router {
    let config = &gateway.config.console;
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

// ---------------------------------------------------------------------------------------------
// Request context, forms, responses
// ---------------------------------------------------------------------------------------------

/// Who is asking: the client address (through trusted proxies, as on the public listener),
/// the session, when the cookie names a live one whose password still stands, and the form
/// nonce of a visitor who is not signed in.
struct Ctx {
    ip: Option<IpAddr>,
    session: Option<(String, Session)>,
    nonce: Option<String>,
}

impl axum::extract::FromRequestParts<Console> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Console,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<Peer>().map(|Peer(addr)| {
            crate::ip::canonical(state.gateway.client_ip(addr.ip(), &parts.headers))
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
    fn caller(&self, account: &str) -> Caller {
        let actor = match self.ip {
            Some(ip) => format!("console:{account}@{ip}"),
            None => format!("console:{account}"),
        };
        Caller::console(actor, self.ip)
    }
}

/// The value of cookie `name`, when it is 64 hex digits.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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

fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response();
    secure_headers(&mut response);
    response
}

fn redirect(to: &str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    secure_headers(&mut response);
    response
}

impl Console {
    fn set_cookie(&self, response: &mut Response, name: &str, value: &str) {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}"
        )) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    fn clear_cookie(&self, response: &mut Response, name: &str) {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
        )) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    /// The form nonce of a visitor who is not signed in (a new one when there is none: the
    /// response must then set its cookie) and the token their forms carry.
    fn visitor_form(&self, ctx: &Ctx) -> Option<(String, bool, String)> {
        let key = self.form_key.as_ref()?;
        let (nonce, fresh) = match &ctx.nonce {
            Some(nonce) => (nonce.clone(), false),
            None => (session::random_token()?, true),
        };
        let token = key.token(&nonce);
        Some((nonce, fresh, token))
    }

    /// Whether a form of a visitor who is not signed in carries the token of their cookie.
    fn visitor_form_ok(&self, ctx: &Ctx, form: &Form) -> bool {
        match (&self.form_key, &ctx.nonce) {
            (Some(key), Some(nonce)) => key.matches(nonce, form.get("csrf")),
            _ => false,
        }
    }

    fn idle_days(&self) -> u64 {
        self.gateway.config.keys.idle_days
    }

    fn kinds(&self) -> Vec<String> {
        self.gateway
            .config
            .kinds
            .iter()
            .map(|k| k.name.clone())
            .collect()
    }

    fn patterns(&self, kind: &str) -> Vec<String> {
        self.gateway
            .config
            .kinds
            .iter()
            .find(|k| k.name == kind)
            .map(|k| k.paths.clone())
            .unwrap_or_default()
    }
}

/// A signed-in page, or the error shown in the layout.
fn page(
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

fn status_of(e: &ManageError) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error page for a signed-in user (the message of the admin API, never a secret).
fn error_page(account: &str, session: &Session, e: &ManageError, back: &str) -> Response {
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

fn csrf_refused() -> Response {
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
fn signed_in(ctx: &Ctx, form: Option<&Form>) -> Result<(String, String, Session), Box<Response>> {
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

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

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

async fn home(ctx: Ctx) -> Response {
    match ctx.session {
        Some(_) => redirect("/keys"),
        None => redirect("/signin"),
    }
}

/// The page of a visitor who is not signed in, with their forms' token (and the cookie, for
/// a new visitor).
fn visitor_page(
    state: &Console,
    ctx: &Ctx,
    status: StatusCode,
    (title, flash, error): (&str, Option<&str>, Option<&str>),
    body: impl FnOnce(&str) -> Markup,
) -> Response {
    let Some((nonce, fresh, token)) = state.visitor_form(ctx) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let chrome = Chrome {
        account: None,
        csrf: "",
        flash,
        error,
    };
    let mut response = html(status, pages::layout(title, &chrome, &body(&token)));
    if fresh {
        state.set_cookie(&mut response, FORM_COOKIE, &nonce);
    }
    response
}

fn sign_in_page(
    state: &Console,
    ctx: &Ctx,
    status: StatusCode,
    name: &str,
    (flash, error): (Option<&str>, Option<&str>),
) -> Response {
    visitor_page(state, ctx, status, ("Sign in", flash, error), |token| {
        pages::sign_in(token, name)
    })
}

async fn sign_in_form(
    State(state): State<Console>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Response {
    if ctx.session.is_some() {
        return redirect("/keys");
    }
    let flash = (query_param(query.as_deref(), "password").as_deref() == Some("set"))
        .then_some("Password set. Sign in with it.");
    sign_in_page(&state, &ctx, StatusCode::OK, "", (flash, None))
}

async fn sign_in(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !state.visitor_form_ok(&ctx, &form) {
        return csrf_refused();
    }
    let name = form.text("name").trim().to_owned();
    let caller = ctx.caller(&name);
    let code = form.get("code").filter(|c| !c.trim().is_empty());
    let signed_in = match state
        .service
        .sign_in(&name, form.text("password"), code, &caller)
        .await
    {
        Ok(signed_in) => signed_in,
        Err(e) => {
            let message = e.public_message();
            let mut response =
                sign_in_page(&state, &ctx, status_of(&e), &name, (None, Some(&message)));
            if let Some(seconds) = e.retry_after_s()
                && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    };
    // A new id at sign-in (no session fixation); an earlier session of this browser ends.
    if let Some((old_id, _)) = &ctx.session {
        state.sessions.remove(old_id);
    }
    match state
        .sessions
        .create(&name, signed_in.stamp, state.service.now_ms())
    {
        Ok((id, _)) => {
            let mut response = redirect("/keys");
            state.set_cookie(&mut response, COOKIE, &id);
            state.clear_cookie(&mut response, FORM_COOKIE);
            response
        }
        Err(NotCreated::Full) => sign_in_page(
            &state,
            &ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            &name,
            (
                None,
                Some(
                    "The console has too many open sessions right now; try again in a few minutes.",
                ),
            ),
        ),
        Err(NotCreated::NoRandomness) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The one-time link's page: the form to choose `account`'s console password (with `error`
/// above it), or, without an account, only the error (the link is not valid).
fn welcome_page(
    state: &Console,
    ctx: &Ctx,
    status: StatusCode,
    (token, account): (&str, Option<&str>),
    error: Option<&str>,
) -> Response {
    visitor_page(
        state,
        ctx,
        status,
        ("Set your password", None, error),
        |csrf| match account {
            Some(account) => pages::welcome(csrf, token, account),
            None => maud::html! { p { a href="/signin" { "Sign in" } } },
        },
    )
}

async fn welcome_form(
    State(state): State<Console>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> Response {
    match state.service.console_link_account(&token).await {
        Ok(account) => welcome_page(&state, &ctx, StatusCode::OK, (&token, Some(&account)), None),
        Err(e) => welcome_page(
            &state,
            &ctx,
            status_of(&e),
            (&token, None),
            Some(&e.public_message()),
        ),
    }
}

async fn welcome(
    State(state): State<Console>,
    ctx: Ctx,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !state.visitor_form_ok(&ctx, &form) {
        return csrf_refused();
    }
    let account = match state.service.console_link_account(&token).await {
        Ok(account) => account,
        Err(e) => {
            let message = e.public_message();
            return welcome_page(&state, &ctx, status_of(&e), (&token, None), Some(&message));
        }
    };
    let password = zeroize::Zeroizing::new(form.text("password").to_owned());
    if password.as_str() != form.text("repeat") {
        let error = Some("The two passwords differ.");
        return welcome_page(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            (&token, Some(&account)),
            error,
        );
    }
    match state
        .service
        .redeem_console_link(&token, &password, &ctx.caller(&account))
        .await
    {
        Ok(_) => redirect("/signin?password=set"),
        Err(e) => {
            let message = e.public_message();
            // A password that breaks the rules keeps the form; anything else ends the link.
            let shown = matches!(e, ManageError::Invalid(_)).then_some(account.as_str());
            welcome_page(&state, &ctx, status_of(&e), (&token, shown), Some(&message))
        }
    }
}

async fn sign_out(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (id, account, _) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    state.sessions.remove(&id);
    state
        .service
        .audit_change(
            &ctx.caller(&account),
            "console.sign_out",
            serde_json::json!({"account": account}),
        )
        .await;
    let mut response = redirect("/signin");
    state.clear_cookie(&mut response, COOKIE);
    response
}

async fn two_factor_page(State(state): State<Console>, ctx: Ctx) -> Response {
    let (id, account, session) = match signed_in(&ctx, None) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let flash = state.sessions.take_flash(&id);
    match state.service.show_account(&account).await {
        Ok(view) => page(
            StatusCode::OK,
            "Two-factor authentication",
            &account,
            &session,
            flash.as_deref(),
            None,
            &pages::two_factor(
                &session.csrf,
                view.two_factor == TwoFactor::On,
                view.two_factor == TwoFactor::Pending,
            ),
        ),
        Err(e) => error_page(&account, &session, &e, "/keys"),
    }
}

async fn enrol(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (_, account, session) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let code = form.get("code").filter(|c| !c.trim().is_empty());
    match state
        .service
        .enrol_2fa(&account, code, false, &ctx.caller(&account))
        .await
    {
        Ok(enrolment) => {
            let svg = qrcode::QrCode::new(enrolment.expose_uri().as_bytes())
                .map(|qr| {
                    qr.render::<qrcode::render::svg::Color<'_>>()
                        .min_dimensions(220, 220)
                        .build()
                })
                .unwrap_or_default();
            page(
                StatusCode::OK,
                "Enrol an authenticator app",
                &account,
                &session,
                None,
                None,
                &pages::enrolment(&session.csrf, &svg, enrolment.expose_secret_base32()),
            )
        }
        Err(e) => error_page(&account, &session, &e, "/2fa"),
    }
}

async fn confirm(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (id, account, session) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    match state
        .service
        .confirm_2fa(&account, form.text("code"), &ctx.caller(&account))
        .await
    {
        Ok(_) => {
            state.sessions.set_flash(
                &id,
                "Two-factor authentication is on. You can now generate API keys.".to_owned(),
            );
            redirect("/2fa")
        }
        Err(e) => error_page(&account, &session, &e, "/2fa"),
    }
}

async fn keys_page(State(state): State<Console>, ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let (id, account, session) = match signed_in(&ctx, None) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let kinds = state.kinds();
    let kind = query_param(query.as_deref(), "kind")
        .filter(|k| kinds.contains(k))
        .or_else(|| kinds.first().cloned())
        .unwrap_or_default();
    let flash = state.sessions.take_flash(&id);
    let result = async {
        let view = state.service.show_account(&account).await?;
        let keys: Vec<KeyView> = state
            .service
            .list_keys(Some(&account))
            .await?
            .into_iter()
            .filter(|k| k.kind == kind)
            .collect();
        Ok::<_, ManageError>((view, keys))
    }
    .await;
    match result {
        Ok((view, keys)) => page(
            StatusCode::OK,
            "API keys",
            &account,
            &session,
            flash.as_deref(),
            None,
            &pages::keys(&pages::KeysPage {
                csrf: &session.csrf,
                kinds: &kinds,
                kind: &kind,
                patterns: &state.patterns(&kind),
                keys: &keys,
                idle_days: state.idle_days(),
                two_factor_on: view.two_factor == TwoFactor::On,
                max_ips: state.gateway.config.keys.max_ips,
            }),
        ),
        Err(e) => error_page(&account, &session, &e, "/keys"),
    }
}

/// Trusted IPs typed one per line (or separated by commas or spaces).
fn ip_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn create_key(State(state): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (_, account, session) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let kind = form.text("kind").to_owned();
    let request = CreateKey {
        account: account.clone(),
        kind: kind.clone(),
        code: form.get("code").map(str::to_owned),
        ips: ip_list(form.text("ips")),
        endpoints: form.all("endpoint"),
    };
    let back = format!("/keys?kind={kind}");
    match state
        .service
        .create_key(&request, &ctx.caller(&account))
        .await
    {
        Ok(created) => page(
            StatusCode::CREATED,
            "Your new API key",
            &account,
            &session,
            None,
            None,
            &pages::secret_shown(&created.key, created.expose_secret(), false),
        ),
        Err(e) => error_page(&account, &session, &e, &back),
    }
}

/// The key, when it belongs to `account` (another account's key is "not found").
async fn owned_key(
    state: &Console,
    account: &str,
    public_key: &str,
) -> Result<KeyView, ManageError> {
    let key = state.service.show_key(public_key).await?;
    if key.account == account {
        Ok(key)
    } else {
        let shown: String = public_key.chars().take(80).collect();
        Err(ManageError::NotFound(format!("No API key {shown:?}.")))
    }
}

async fn key_page(
    State(state): State<Console>,
    ctx: Ctx,
    Path(public_key): Path<String>,
) -> Response {
    let (id, account, session) = match signed_in(&ctx, None) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let flash = state.sessions.take_flash(&id);
    match owned_key(&state, &account, &public_key).await {
        Ok(key) => page(
            StatusCode::OK,
            "API key settings",
            &account,
            &session,
            flash.as_deref(),
            None,
            &pages::key_page(
                &session.csrf,
                &key,
                &state.patterns(&key.kind),
                state.idle_days(),
                state.gateway.config.keys.max_ips,
            ),
        ),
        Err(e) => error_page(&account, &session, &e, "/keys"),
    }
}

async fn delete_page(
    State(state): State<Console>,
    ctx: Ctx,
    Path((public_key, action)): Path<(String, String)>,
) -> Response {
    if action != "delete" {
        return not_found().await;
    }
    let (_, account, session) = match signed_in(&ctx, None) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    match owned_key(&state, &account, &public_key).await {
        Ok(key) => page(
            StatusCode::OK,
            "Delete API key",
            &account,
            &session,
            None,
            None,
            &pages::delete_confirm(&session.csrf, &key),
        ),
        Err(e) => error_page(&account, &session, &e, "/keys"),
    }
}

/// What a key's setting form did.
enum Done {
    /// Saved: the message to flash and the page to go to.
    Saved(&'static str, String),
    /// A new secret, shown once.
    Rotated(zeroize::Zeroizing<String>),
}

async fn key_action(
    State(state): State<Console>,
    ctx: Ctx,
    Path((public_key, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let (id, account, session) = match signed_in(&ctx, Some(&form)) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let caller = ctx.caller(&account);
    let back = format!("/keys/{public_key}");
    let service = &state.service;
    let code = form.text("code");
    let result: Result<Done, ManageError> = async {
        let key = owned_key(&state, &account, &public_key).await?;
        match action.as_str() {
            "rotate" => {
                let rotated = service
                    .rotate_secret(&key.public_key, Some(code), &caller)
                    .await?;
                Ok(Done::Rotated(zeroize::Zeroizing::new(
                    rotated.expose_secret().to_owned(),
                )))
            }
            "enable" => {
                service
                    .require_code(&account, code, &caller, "key.enable")
                    .await?;
                service.enable_key(&key.public_key, &caller).await?;
                Ok(Done::Saved("Key enabled.", back.clone()))
            }
            "disable" => {
                service
                    .require_code(&account, code, &caller, "key.disable")
                    .await?;
                service.disable_key(&key.public_key, &caller).await?;
                Ok(Done::Saved(
                    "Key disabled: requests signed with it are refused.",
                    back.clone(),
                ))
            }
            "delete" => {
                service
                    .require_code(&account, code, &caller, "key.delete")
                    .await?;
                service.delete_key(&key.public_key, &caller).await?;
                Ok(Done::Saved(
                    "Key deleted.",
                    format!("/keys?kind={}", key.kind),
                ))
            }
            "ips" => {
                let ips = service.check_ips(&ip_list(form.text("ips")))?;
                service
                    .require_code(&account, code, &caller, "key.set_ips")
                    .await?;
                service.set_ips(&key.public_key, &ips, &caller).await?;
                Ok(Done::Saved("Trusted IPs saved.", back.clone()))
            }
            "endpoints" => {
                let endpoints = service.check_endpoints(&key.kind, &form.all("endpoint"))?;
                service
                    .require_code(&account, code, &caller, "key.set_endpoints")
                    .await?;
                service
                    .set_endpoints(&key.public_key, &endpoints, &caller)
                    .await?;
                Ok(Done::Saved("Endpoints saved.", back.clone()))
            }
            _ => Err(ManageError::NotFound("No such action.".to_owned())),
        }
    }
    .await;
    match result {
        Ok(Done::Rotated(secret)) => {
            let key = owned_key(&state, &account, &public_key).await;
            match key {
                Ok(key) => page(
                    StatusCode::OK,
                    "New API secret",
                    &account,
                    &session,
                    None,
                    None,
                    &pages::secret_shown(&key, &secret, true),
                ),
                Err(e) => error_page(&account, &session, &e, &back),
            }
        }
        Ok(Done::Saved(message, to)) => {
            state.sessions.set_flash(&id, message.to_owned());
            redirect(&to)
        }
        Err(e) => error_page(&account, &session, &e, &back),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_repeated_fields() {
        let form = Form::parse(b"csrf=ab&endpoint=%2Fapi%2Fv4%2Forder%2F*&endpoint=%2Fx&ips=1.2.3.4%0D%0A10.0.0.0%2F8&name=a+b");
        assert_eq!(form.get("csrf"), Some("ab"));
        assert_eq!(form.all("endpoint"), vec!["/api/v4/order/*", "/x"]);
        assert_eq!(ip_list(form.text("ips")), vec!["1.2.3.4", "10.0.0.0/8"]);
        assert_eq!(form.text("name"), "a b");
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn cookies_are_found_and_checked() {
        let mut headers = HeaderMap::new();
        let id = "ab".repeat(32);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={id}")).expect("header"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some(id));
        assert_eq!(cookie(&headers, FORM_COOKIE), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("wbauth_console=short"),
        );
        assert_eq!(cookie(&headers, COOKIE), None);
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(pages::date(0), "1970-01-01 00:00 UTC");
        assert_eq!(pages::date(1_780_000_000_000), "2026-05-28 20:26 UTC");
    }
}
