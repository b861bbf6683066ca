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
//!
//! Answers that carry a secret (a key's secret, a partner's Enc Key, a one-time console link)
//! have `Cache-Control: no-store`. An account created without a password gets a one-time
//! console link when a console is configured (`[console] listen` or `public_url`).

use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::app::GatewayError;
use crate::manage::{Caller, CreateKey, KeyService, KeyWithSecret, ManageError};
use crate::server::Peer;
use crate::store::NonceStore;

/// The environment variable that holds the admin token (server and CLI).
pub const ADMIN_TOKEN_ENV: &str = "WBAUTH_ADMIN_TOKEN";
/// The admin token's file name inside the data directory (generated when the variable is
/// not set).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Shortest accepted admin token.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// The request header a client may use to name the operator in the audit log.
pub const ACTOR_HEADER: &str = "x-wbauth-actor";
/// Default number of audit entries listed.
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;

/// The bearer token of the admin API. Wiped from memory when dropped; `Debug` hides it.
pub struct AdminToken {
    token: Zeroizing<String>,
    origin: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("token", &"<redacted>")
            .field("origin", &self.origin)
            .finish()
    }
}

fn invalid(message: String) -> GatewayError {
    GatewayError::Invalid(message)
}

fn io_error(context: String, source: std::io::Error) -> GatewayError {
    GatewayError::Io { context, source }
}

/// Checks a token's form: visible ASCII, at least [`MIN_ADMIN_TOKEN_LEN`] characters.
fn check_token(token: &str, source: &str) -> Result<(), GatewayError> {
    if token.len() < MIN_ADMIN_TOKEN_LEN || token.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(invalid(format!(
            "{source}: the admin token must be at least {MIN_ADMIN_TOKEN_LEN} visible ASCII \
             characters without spaces"
        )));
    }
    Ok(())
}

impl AdminToken {
    /// A token from a value (`origin` says where it came from, for the start-up log).
    pub fn new(value: &str, origin: impl Into<String>) -> Result<Self, GatewayError> {
        let origin = origin.into();
        let value = value.trim();
        check_token(value, &origin)?;
        Ok(Self {
            token: Zeroizing::new(value.to_owned()),
            origin,
        })
    }

    /// `env_value` (the value of `WBAUTH_ADMIN_TOKEN`) wins; otherwise `data_dir/admin.token`
    /// is read, or generated on first start (32 random bytes as hex, mode 0600). A token file
    /// that group or others can read is refused.
    pub fn load_or_create(
        data_dir: &FsPath,
        env_value: Option<&str>,
    ) -> Result<Self, GatewayError> {
        if let Some(value) = env_value.filter(|v| !v.is_empty()) {
            return Self::new(value, ADMIN_TOKEN_ENV);
        }
        let path = Self::file_path(data_dir);
        match read_token_file(&path)? {
            Some(token) => Ok(token),
            None => create_token_file(&path),
        }
    }

    /// Where the token file of a data directory is.
    #[must_use]
    pub fn file_path(data_dir: &FsPath) -> PathBuf {
        data_dir.join(ADMIN_TOKEN_FILE)
    }

    /// Where the token came from (never the token).
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether `presented` is the token (constant time in the token's content).
    #[must_use]
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.token.as_bytes().ct_eq(presented).into()
    }
}

fn read_token_file(path: &FsPath) -> Result<Option<AdminToken>, GatewayError> {
    let shown = path.display().to_string();
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(format!("reading the admin token file {shown}"), e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = file
            .metadata()
            .map_err(|e| io_error(format!("inspecting the admin token file {shown}"), e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(invalid(format!(
                "the admin token file {shown} is accessible by group or others (chmod 600 {shown})"
            )));
        }
    }
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text)
        .map_err(|e| io_error(format!("reading the admin token file {shown}"), e))?;
    AdminToken::new(&text, format!("file {shown}")).map(Some)
}

fn create_token_file(path: &FsPath) -> Result<AdminToken, GatewayError> {
    let shown = path.display().to_string();
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut bytes[..]).map_err(|e| invalid(format!("no randomness: {e}")))?;
    let token = Zeroizing::new(whitebit_auth::encoding::hex_encode(&bytes[..]));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        // Another process created it meanwhile: use its token.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return read_token_file(path)?
                .ok_or_else(|| invalid(format!("the admin token file {shown} vanished")));
        }
        Err(e) => {
            return Err(io_error(
                format!("creating the admin token file {shown}"),
                e,
            ));
        }
    };
    file.write_all(token.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(format!("writing the admin token file {shown}"), e))?;
    AdminToken::new(&token, format!("generated into {shown}"))
}

/// What the admin router serves besides the management API.
#[derive(Default)]
pub struct AdminOptions {
    /// Unauthenticated routes merged at the root — the place to mount `/metrics`
    /// (`docs/design-decisions.md` 8: operational routes live on the admin listener only).
    pub extra: Router,
    /// Checked by `/readyz` next to the key store.
    pub nonces: Option<Arc<dyn NonceStore>>,
    /// The clock `POST /test/clock` moves (builds with the `test-clock` feature only).
    #[cfg(feature = "test-clock")]
    pub test_clock: Option<Arc<crate::clock::TestClock>>,
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
    #[cfg(feature = "test-clock")]
    test_clock: Option<Arc<crate::clock::TestClock>>,
}

/// The admin router: `/admin/…` (bearer token), `/healthz`, `/readyz`, the `extra` routes,
/// and with the `test-clock` feature `/test/clock`.
pub fn admin_router(service: Arc<KeyService>, token: AdminToken, options: AdminOptions) -> Router {
    let state = AdminState {
        service,
        token: Arc::new(token),
        nonces: options.nonces,
        #[cfg(feature = "test-clock")]
        test_clock: options.test_clock,
    };
    let protected = Router::new()
        .route("/admin/accounts", post(create_account).get(list_accounts))
        .route("/admin/accounts/{name}", get(show_account))
        .route("/admin/accounts/{name}/password", put(set_password))
        .route("/admin/accounts/{name}/console-link", post(console_link))
        .route("/admin/accounts/{name}/2fa/enrol", post(enrol_2fa))
        .route("/admin/accounts/{name}/2fa/confirm", post(confirm_2fa))
        .route("/admin/keys", post(create_key).get(list_keys))
        .route("/admin/keys/batch", post(create_keys))
        .route("/admin/keys/{public_key}", get(show_key).delete(delete_key))
        .route("/admin/keys/{public_key}/enable", post(enable_key))
        .route("/admin/keys/{public_key}/disable", post(disable_key))
        .route(
            "/admin/keys/{public_key}/rotate-secret",
            post(rotate_secret),
        )
        .route("/admin/keys/{public_key}/ips", put(set_ips))
        .route("/admin/keys/{public_key}/endpoints", put(set_endpoints))
        .route("/admin/partners", post(create_partner).get(list_partners))
        .route(
            "/admin/partners/{auth_key}",
            get(show_partner).delete(delete_partner),
        )
        .route("/admin/partners/{auth_key}/enable", post(enable_partner))
        .route("/admin/partners/{auth_key}/disable", post(disable_partner))
        .route("/admin/audit", get(audit_log));
    #[cfg(feature = "test-clock")]
    let protected = protected.route("/test/clock", post(set_test_clock).get(get_test_clock));
    let protected = protected.route_layer(from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(protected)
        .with_state(state)
        .merge(options.extra)
        .fallback(not_found)
}

// ---------------------------------------------------------------------------------------------
// The Host check
// ---------------------------------------------------------------------------------------------

/// The `Host` values the admin listener answers: `localhost` and loopback addresses (any
/// port), the listener's own address, and with `[admin] allow_remote` the names of
/// `[admin] hosts` (any port, or the one given). Compared without regard to case.
#[derive(Debug, Clone)]
pub struct AdminHosts {
    bound: std::net::SocketAddr,
    names: Vec<(String, Option<u16>)>,
}

impl AdminHosts {
    /// The hosts of a listener bound to `bound` with this `[admin]` section.
    #[must_use]
    pub fn new(bound: std::net::SocketAddr, config: &crate::config::AdminConfig) -> Self {
        let names = if config.allow_remote {
            config
                .hosts
                .iter()
                .filter_map(|host| {
                    let host = host.to_ascii_lowercase();
                    split_host(&host).map(|(name, port)| (name.to_owned(), port))
                })
                .collect()
        } else {
            Vec::new()
        };
        Self { bound, names }
    }

    /// Whether a request with this `Host` value is answered.
    #[must_use]
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let Some((name, port)) = split_host(&host) else {
            return false;
        };
        let ip = name.parse::<IpAddr>().ok().map(crate::ip::canonical);
        if name == "localhost" || name == "localhost." || ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        let bound = crate::ip::canonical(self.bound.ip());
        if ip == Some(bound) && !bound.is_unspecified() && port == Some(self.bound.port()) {
            return true;
        }
        self.names.iter().any(|(known, known_port)| {
            let same_name = *known == name
                || (ip.is_some() && known.parse::<IpAddr>().ok().map(crate::ip::canonical) == ip);
            same_name && known_port.is_none_or(|p| port == Some(p))
        })
    }
}

/// `name[:port]` or `[v6][:port]` → (name without brackets, port); `None` when it is neither.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, rest) = match host.strip_prefix('[') {
        Some(inner) => {
            let end = inner.find(']')?;
            (&inner[..end], &inner[end + 1..])
        }
        None => host.split_at(host.find(':').unwrap_or(host.len())),
    };
    let port = match rest {
        "" => None,
        _ => {
            let digits = rest.strip_prefix(':')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    valid.then_some((name, port))
}

/// `router` answering only requests whose `Host` (and absolute-form target, if any) `hosts`
/// allows; the others get 421 with a JSON error and reach no route.
pub fn with_host_check(router: Router, hosts: AdminHosts) -> Router {
    router.layer(from_fn_with_state(Arc::new(hosts), check_host))
}

async fn check_host(
    State(hosts): State<Arc<AdminHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let mut values = request.headers().get_all(header::HOST).iter();
    let host = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    };
    let target_ok = request
        .uri()
        .authority()
        .is_none_or(|authority| hosts.allows(authority.as_str()));
    if host.is_some_and(|host| hosts.allows(host)) && target_ok {
        return next.run(request).await;
    }
    tracing::debug!(target: "wbauth::admin", "refused a request for another host");
    message(
        StatusCode::MISDIRECTED_REQUEST,
        "This admin listener answers only requests addressed to a loopback name or address \
         (localhost, 127.0.0.1, [::1]) or to its own address. To reach it under another name, \
         set [admin] allow_remote = true and list that name in [admin] hosts.",
    )
}

// ---------------------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------------------

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    json_text(status, value.to_string().into_bytes())
}

fn json_text(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn message(status: StatusCode, text: &str) -> Response {
    json_response(status, &json!({"code": 0, "message": text}))
}

fn error_response(e: &ManageError) -> Response {
    if e.status() >= 500 {
        eprintln!("wbauth admin API: {e}");
    }
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &json!({"code": 0, "message": e.public_message()}));
    if let Some(seconds) = e.retry_after_s() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn answer(result: Result<serde_json::Value, ManageError>, status: StatusCode) -> Response {
    match result {
        Ok(value) => json_response(status, &value),
        Err(e) => error_response(&e),
    }
}

/// An answer that carries a secret: never cached.
fn secret_answer(result: Result<KeyWithSecret, ManageError>, status: StatusCode) -> Response {
    match result {
        Ok(created) => {
            let value = Zeroizing::new(
                json!({"key": created.key, "secret": created.expose_secret()}).to_string(),
            );
            let mut response = json_text(status, value.as_bytes().to_vec());
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => error_response(&e),
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ManageError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|e| ManageError::Invalid(format!("invalid JSON body: {e}")))
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, ManageError> {
    serde_json::to_value(value).map_err(|e| ManageError::Internal(format!("cannot encode: {e}")))
}

/// The caller: `admin@IP`, or `NAME@IP` when the client names the operator in
/// `X-Wbauth-Actor` (letters, digits and `.`, `_`, `-`, `:`, up to 64).
/// Who is calling: the optional actor header and the peer address.
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

/// One query parameter, percent-decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let verdict = match &state.nonces {
        Some(nonces) => {
            let now = state.service.now_ms();
            let health =
                crate::health::check(state.service.store().as_ref(), nonces.as_ref(), now).await;
            health.ready()
        }
        None => state
            .service
            .ready()
            .await
            .map_err(|_| crate::health::NotReady::KeyStore),
    };
    match verdict {
        Ok(()) => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Err(reason) => {
            tracing::warn!(target: "wbauth::admin", "not ready: {reason}");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unavailable", "reason": reason.to_string()}),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    name: String,
    /// The web console password (stored as an argon2id hash).
    #[serde(default)]
    password: Option<String>,
}

async fn create_account(State(state): State<AdminState>, who: Caller, body: Bytes) -> Response {
    let result = async {
        let request: NewAccount = parse(&body)?;
        let password = request.password.map(Zeroizing::new);
        if let Some(password) = &password {
            crate::manage::check_password(password)?;
        }
        let account = state.service.create_account(&request.name, &who).await?;
        if let Some(password) = &password {
            state
                .service
                .set_password(&request.name, password, &who)
                .await?;
            return Ok(json!({"account": to_value(&account)?}));
        }
        // No password: a one-time link to set it in the console, when there is a console.
        let link = if state.service.console_url().is_some() {
            Some(
                state
                    .service
                    .issue_console_link(&request.name, &who)
                    .await?,
            )
        } else {
            None
        };
        let mut value = json!({"account": to_value(&account)?});
        if let Some(link) = link {
            value["console_link"] =
                json!({"url": link.url.as_str(), "expires_ms": link.expires_ms});
        }
        Ok(value)
    }
    .await;
    no_store(answer(result, StatusCode::CREATED))
}

/// `POST /admin/accounts/{name}/console-link`: a new one-time link (replacing the old one).
async fn console_link(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    who: Caller,
) -> Response {
    let result = state
        .service
        .issue_console_link(&name, &who)
        .await
        .map(|link| {
            json!({
                "account": name,
                "console_link": {"url": link.url.as_str(), "expires_ms": link.expires_ms},
            })
        });
    no_store(answer(result, StatusCode::CREATED))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

async fn set_password(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    who: Caller,
    body: Bytes,
) -> Response {
    let result = async {
        let password = Zeroizing::new(parse::<NewPassword>(&body)?.password);
        state.service.set_password(&name, &password, &who).await?;
        Ok(json!({"account": name, "password": "set"}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn list_accounts(State(state): State<AdminState>) -> Response {
    let result = async {
        let accounts = state.service.list_accounts().await?;
        Ok(json!({"accounts": to_value(&accounts)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn show_account(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    let result = async {
        let account = state.service.show_account(&name).await?;
        Ok(json!({"account": to_value(&account)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnrolRequest {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    force: bool,
}

async fn enrol_2fa(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    who: Caller,
    body: Bytes,
) -> Response {
    let result = async {
        let request: EnrolRequest = parse(&body)?;
        state
            .service
            .enrol_2fa(&name, request.code.as_deref(), request.force, &who)
            .await
    }
    .await;
    match result {
        Ok(enrolment) => {
            let text = Zeroizing::new(
                json!({
                    "account": enrolment.account,
                    "otpauth_uri": enrolment.expose_uri(),
                    "secret": enrolment.expose_secret_base32(),
                })
                .to_string(),
            );
            let mut response = json_text(StatusCode::OK, text.as_bytes().to_vec());
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    #[serde(default)]
    code: Option<String>,
}

async fn confirm_2fa(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    who: Caller,
    body: Bytes,
) -> Response {
    let result = async {
        let request: CodeRequest = parse(&body)?;
        let account = state
            .service
            .confirm_2fa(&name, request.code.as_deref().unwrap_or(""), &who)
            .await?;
        Ok(json!({"account": to_value(&account)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

async fn create_key(State(state): State<AdminState>, who: Caller, body: Bytes) -> Response {
    let result = async {
        let request: CreateKey = parse(&body)?;
        state.service.create_key(&request, &who).await
    }
    .await;
    secret_answer(result, StatusCode::CREATED)
}

/// `POST /admin/keys/batch`: `{account, kind, code, ips, endpoints, count}` → `{"keys":
/// [{"key": …, "secret": …}, …]}` (secrets shown once; `Cache-Control: no-store`).
async fn create_keys(State(state): State<AdminState>, who: Caller, body: Bytes) -> Response {
    let result = async {
        let mut key: serde_json::Map<String, serde_json::Value> = parse(&body)?;
        let count = key
            .remove("count")
            .and_then(|c| c.as_u64())
            .and_then(|c| usize::try_from(c).ok())
            .ok_or_else(|| ManageError::Invalid("count: a positive integer is required".into()))?;
        let request: CreateKey = serde_json::from_value(serde_json::Value::Object(key))
            .map_err(|e| ManageError::Invalid(format!("invalid JSON body: {e}")))?;
        state.service.create_keys(&request, count, &who).await
    }
    .await;
    match result {
        Ok(created) => {
            let keys: Vec<serde_json::Value> = created
                .iter()
                .map(|k| json!({"key": k.key, "secret": k.expose_secret()}))
                .collect();
            let value = Zeroizing::new(json!({ "keys": keys }).to_string());
            let mut response = json_text(StatusCode::CREATED, value.as_bytes().to_vec());
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => error_response(&e),
    }
}

async fn list_keys(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Response {
    let result = async {
        let account = query_param(query.as_deref(), "account").filter(|a| !a.is_empty());
        let keys = state.service.list_keys(account.as_deref()).await?;
        Ok(json!({"keys": to_value(&keys)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn show_key(State(state): State<AdminState>, Path(public_key): Path<String>) -> Response {
    let result = async {
        let key = state.service.show_key(&public_key).await?;
        Ok(json!({"key": to_value(&key)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn delete_key(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
) -> Response {
    let result = async {
        state.service.delete_key(&public_key, &who).await?;
        Ok(json!({"deleted": public_key}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn enable_key(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
) -> Response {
    let result = async {
        let key = state.service.enable_key(&public_key, &who).await?;
        Ok(json!({"key": to_value(&key)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn disable_key(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
) -> Response {
    let result = async {
        let key = state.service.disable_key(&public_key, &who).await?;
        Ok(json!({"key": to_value(&key)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn rotate_secret(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
    body: Bytes,
) -> Response {
    let result = async {
        let request: CodeRequest = parse(&body)?;
        state
            .service
            .rotate_secret(&public_key, request.code.as_deref(), &who)
            .await
    }
    .await;
    secret_answer(result, StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IpsRequest {
    ips: Vec<String>,
}

async fn set_ips(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
    body: Bytes,
) -> Response {
    let result = async {
        let request: IpsRequest = parse(&body)?;
        let key = state
            .service
            .set_ips(&public_key, &request.ips, &who)
            .await?;
        Ok(json!({"key": to_value(&key)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointsRequest {
    endpoints: Vec<String>,
}

async fn set_endpoints(
    State(state): State<AdminState>,
    Path(public_key): Path<String>,
    who: Caller,
    body: Bytes,
) -> Response {
    let result = async {
        let request: EndpointsRequest = parse(&body)?;
        let key = state
            .service
            .set_endpoints(&public_key, &request.endpoints, &who)
            .await?;
        Ok(json!({"key": to_value(&key)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------
// Fiat Gateway partners
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPartnerRequest {
    name: String,
    /// Import: an existing Auth Key (with `enc_key`).
    #[serde(default)]
    auth_key: Option<String>,
    /// Import: an existing Enc Key (with `auth_key`).
    #[serde(default)]
    enc_key: Option<String>,
}

async fn create_partner(State(state): State<AdminState>, who: Caller, body: Bytes) -> Response {
    let result = async {
        let request: NewPartnerRequest = parse(&body)?;
        match (request.auth_key, request.enc_key) {
            (None, None) => state.service.create_partner(&request.name, &who).await,
            (Some(auth_key), Some(enc_key)) => {
                let enc_key = Zeroizing::new(enc_key);
                state
                    .service
                    .import_partner(&request.name, &auth_key, enc_key, &who)
                    .await
            }
            _ => Err(ManageError::Invalid(
                "give both auth_key and enc_key to import a partner, or neither".to_owned(),
            )),
        }
    }
    .await;
    match result {
        Ok(created) => {
            let value = Zeroizing::new(
                json!({"partner": created.partner, "enc_key": created.expose_enc_key()})
                    .to_string(),
            );
            no_store(json_text(StatusCode::CREATED, value.as_bytes().to_vec()))
        }
        Err(e) => error_response(&e),
    }
}

/// Marks an answer that carries a secret as never to be cached.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn list_partners(State(state): State<AdminState>) -> Response {
    let result = async {
        let partners = state.service.list_partners().await?;
        Ok(json!({"partners": to_value(&partners)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn show_partner(State(state): State<AdminState>, Path(auth_key): Path<String>) -> Response {
    let result = async {
        let partner = state.service.show_partner(&auth_key).await?;
        Ok(json!({"partner": to_value(&partner)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn delete_partner(
    State(state): State<AdminState>,
    Path(auth_key): Path<String>,
    who: Caller,
) -> Response {
    let result = async {
        state.service.delete_partner(&auth_key, &who).await?;
        Ok(json!({"deleted": auth_key}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn enable_partner(
    State(state): State<AdminState>,
    Path(auth_key): Path<String>,
    who: Caller,
) -> Response {
    let result = async {
        let partner = state.service.enable_partner(&auth_key, &who).await?;
        Ok(json!({"partner": to_value(&partner)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn disable_partner(
    State(state): State<AdminState>,
    Path(auth_key): Path<String>,
    who: Caller,
) -> Response {
    let result = async {
        let partner = state.service.disable_partner(&auth_key, &who).await?;
        Ok(json!({"partner": to_value(&partner)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

async fn audit_log(State(state): State<AdminState>, RawQuery(query): RawQuery) -> Response {
    let result = async {
        let limit = match query_param(query.as_deref(), "limit") {
            None => DEFAULT_AUDIT_LIMIT,
            Some(text) => text.parse::<u32>().map_err(|_| {
                ManageError::Invalid(format!("limit {text:?} is not a positive number"))
            })?,
        };
        let entries = state.service.audit_log(limit).await?;
        Ok(json!({"entries": to_value(&entries)?}))
    }
    .await;
    answer(result, StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------
// Test clock (builds with the `test-clock` feature only)
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "test-clock")]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    #[serde(default)]
    set_ms: Option<u64>,
    #[serde(default)]
    advance_ms: Option<u64>,
    #[serde(default)]
    release: bool,
}

#[cfg(feature = "test-clock")]
async fn set_test_clock(State(state): State<AdminState>, body: Bytes) -> Response {
    let Some(clock) = &state.test_clock else {
        return message(
            StatusCode::NOT_FOUND,
            "This gateway runs on the system clock.",
        );
    };
    let request: ClockRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let given = usize::from(request.set_ms.is_some())
        + usize::from(request.advance_ms.is_some())
        + usize::from(request.release);
    if given != 1 {
        return message(
            StatusCode::BAD_REQUEST,
            "Give exactly one of set_ms, advance_ms, release.",
        );
    }
    if let Some(ms) = request.set_ms {
        clock.set(ms);
    } else if let Some(ms) = request.advance_ms {
        clock.advance(ms);
    } else {
        clock.release();
    }
    get_test_clock(State(state)).await
}

#[cfg(feature = "test-clock")]
async fn get_test_clock(State(state): State<AdminState>) -> Response {
    json_response(StatusCode::OK, &json!({"now_ms": state.service.now_ms()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_hosts() {
        use crate::config::AdminConfig;
        let local = AdminHosts::new(
            "127.0.0.1:8081".parse().expect("addr"),
            &AdminConfig::default(),
        );
        for host in [
            "127.0.0.1:8081",
            "127.0.0.1",
            "127.9.9.9:1",
            "localhost",
            "LOCALHOST:8081",
            "[::1]:8081",
            "[::1]",
            "[::ffff:127.0.0.1]:8081",
        ] {
            assert!(local.allows(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:8081",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "127.0.0.1:80@evil.example",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "::1",
            "[::1",
            "10.0.0.5:8081",
        ] {
            assert!(!local.allows(host), "{host}");
        }
        let config = AdminConfig {
            addr: "10.0.0.5:8081".parse().expect("addr"),
            allow_remote: true,
            hosts: vec![
                "Admin.Internal".into(),
                "ops.internal:9000".into(),
                "[FD00::1]".into(),
            ],
        };
        let remote = AdminHosts::new(config.addr, &config);
        for host in [
            "10.0.0.5:8081",
            "admin.internal",
            "admin.internal:8081",
            "ops.internal:9000",
            "[fd00:0::1]:8081",
            "localhost:8081",
        ] {
            assert!(remote.allows(host), "{host}");
        }
        for host in [
            "10.0.0.5",
            "10.0.0.5:80",
            "ops.internal",
            "ops.internal:8081",
            "x.internal",
        ] {
            assert!(!remote.allows(host), "{host}");
        }
        // Names are ignored without allow_remote; an unspecified bind is no Host.
        let config = AdminConfig {
            allow_remote: false,
            ..config
        };
        assert!(!AdminHosts::new(config.addr, &config).allows("admin.internal"));
        let any = AdminHosts::new(
            "0.0.0.0:8081".parse().expect("addr"),
            &AdminConfig::default(),
        );
        assert!(!any.allows("0.0.0.0:8081"));
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            query_param(Some("account=al%69ce&limit=5"), "account").as_deref(),
            Some("alice")
        );
        assert_eq!(query_param(Some("limit=5"), "account"), None);
        assert_eq!(query_param(None, "account"), None);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz"), "a%zz");
        assert_eq!(percent_decode("a+b%20c"), "a b c");
    }

    #[test]
    fn tokens_are_checked_and_redacted() {
        let token = AdminToken::new("0123456789abcdef", "test").expect("token");
        assert!(token.matches(b"0123456789abcdef"));
        assert!(!token.matches(b"0123456789abcdeF"));
        assert!(!token.matches(b"0123456789abcde"));
        assert!(!format!("{token:?}").contains("0123456789abcdef"));
        assert!(AdminToken::new("short", "test").is_err());
        assert!(AdminToken::new("with space 0123456789", "test").is_err());
    }

    #[test]
    fn token_file_is_generated_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = AdminToken::load_or_create(dir.path(), None).expect("created");
        assert!(first.origin().starts_with("generated into "));
        let path = AdminToken::file_path(dir.path());
        let text = std::fs::read_to_string(&path).expect("file");
        assert_eq!(text.len(), 64);
        assert!(first.matches(text.as_bytes()));
        let again = AdminToken::load_or_create(dir.path(), None).expect("read");
        assert!(again.matches(text.as_bytes()));
        let from_env =
            AdminToken::load_or_create(dir.path(), Some("env-token-0123456789")).expect("env");
        assert_eq!(from_env.origin(), ADMIN_TOKEN_ENV);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = AdminToken::load_or_create(dir.path(), None).expect_err("readable");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
    }
}
