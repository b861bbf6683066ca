//! Gateway configuration: one TOML file (`docs/design-decisions.md` 26), every setting with a default,
//! each overridable by `WBAUTH_GATEWAY__SECTION__KEY` environment variables, validated once at
//! start-up with errors that name the file, the key and the reason (and the line when the
//! TOML parser gives it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use whitebit_auth::BodyMatch;
use whitebit_auth::path::normalize_path;

use crate::ip::IpRule;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    /// The file (or environment variable) the problem is in.
    pub source_name: String,
    /// What is wrong, with the key path and line when known.
    pub message: String,
}

impl ConfigError {
    fn new(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The public API listener.
    pub listen: ListenConfig,
    /// The admin listener (admin API, metrics, health).
    pub admin: AdminConfig,
    /// Data directory and store backends.
    pub store: StoreConfig,
    /// Request verification.
    pub verify: VerifyConfig,
    /// Trusted proxies and client IP headers.
    pub proxy: ProxyConfig,
    /// Path prefix → upstream.
    #[serde(rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// Key kinds: endpoint groups a key of that kind may use.
    #[serde(rename = "kind")]
    pub kinds: Vec<KindConfig>,
    /// Per-kind rate limits (off unless configured).
    pub rate_limit: RateLimitConfig,
    /// Key lifecycle.
    pub keys: KeysConfig,
    /// Tokens issued by `POST /api/v4/jwt`.
    pub tokens: TokensConfig,
    /// Fiat Gateway routes (Bearer tokens instead of HMAC signatures).
    pub fiat: FiatConfig,
    /// The web console for account holders (off unless `listen` is set).
    pub console: ConsoleConfig,
}

/// `[console]`: the account holders' web console (API settings), on its own listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address of the console listener; none (the default): no console.
    pub listen: Option<SocketAddr>,
    /// Mark the session cookie `Secure`: on by default, for a console served through a TLS
    /// terminator; turn off only for plain HTTP on a trusted machine.
    pub secure_cookie: bool,
    /// A session ends after this long without a request (ms).
    pub session_idle_ms: u64,
    /// A session ends this long after sign-in, used or not (ms).
    pub session_max_ms: u64,
    /// The console's address as account holders reach it (`https://console.example.com`
    /// behind a TLS terminator), the base of one-time links; default `http://` + `listen`.
    pub public_url: Option<String>,
    /// How long a one-time link (`wbauth accounts link`) stays valid (ms).
    pub link_ttl_ms: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: None,
            secure_cookie: true,
            session_idle_ms: 30 * 60 * 1000,
            session_max_ms: 12 * 60 * 60 * 1000,
            public_url: None,
            link_ttl_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// `[fiat]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FiatConfig {
    /// `[[fiat.route]]`: path prefix → upstream, authenticated by tokens.
    #[serde(rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// How far in the future a partner token's `iat` may be.
    pub iat_leeway_ms: u64,
    /// Body field with the order currency.
    pub currency_field: String,
    /// Body field with the order amount.
    pub amount_field: String,
    /// Body field with the order id.
    pub order_id_field: String,
}

impl Default for FiatConfig {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            iat_leeway_ms: 1_000,
            currency_field: "currency".to_owned(),
            amount_field: "amount".to_owned(),
            order_id_field: "orderId".to_owned(),
        }
    }
}

/// One token-signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenKeyConfig {
    /// PKCS#8 PEM file with the private key.
    pub pem: PathBuf,
    /// Key id in the token header and the JWKS (default: the key's RFC 7638 thumbprint).
    #[serde(default)]
    pub kid: Option<String>,
}

/// `[tokens]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// Signing keys, oldest first: new tokens use the last one, all of them verify.
    pub keys: Vec<TokenKeyConfig>,
    /// The `iss` claim.
    pub issuer: String,
    /// The `aud` claim.
    pub audience: String,
    /// Token lifetime.
    pub lifetime_ms: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            issuer: "wbauth".to_owned(),
            audience: "fiat-gateway".to_owned(),
            lifetime_ms: 60_000,
        }
    }
}

/// Default of `[listen] max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// `[listen]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// Address of the public API.
    pub addr: SocketAddr,
    /// Time allowed to receive the request headers.
    pub header_timeout_ms: u64,
    /// Time allowed to receive the body.
    pub body_timeout_ms: u64,
    /// Open connections at most (idle ones included). Beyond it a new connection is closed
    /// as soon as it is accepted, so the ones being served are unaffected and the kernel's
    /// accept queue never fills up. Keep it below the process's open-file limit.
    pub max_connections: usize,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener: a loopback address unless `allow_remote`.
    pub addr: SocketAddr,
    /// Allow `addr` to be a non-loopback address (the admin API, `/metrics` and `/readyz`
    /// are then reachable from the network: keep it behind a firewall).
    pub allow_remote: bool,
    /// With `allow_remote`: the `Host` names (optionally `name:port`) the admin listener
    /// answers besides the loopback names and its own address.
    pub hosts: Vec<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            allow_remote: false,
            hosts: Vec::new(),
        }
    }
}

impl AdminConfig {
    fn validate(&self) -> Result<(), String> {
        if !crate::ip::canonical(self.addr.ip()).is_loopback() && !self.allow_remote {
            return Err(format!(
                "admin.addr: {} is not a loopback address. The admin listener serves the \
                 management API, /metrics and /readyz, so it listens on loopback only \
                 (127.0.0.1 or [::1]); to listen on {} anyway, set [admin] allow_remote = true, \
                 keep the port behind a firewall, and list the names clients use for it in \
                 [admin] hosts",
                self.addr, self.addr
            ));
        }
        if !self.hosts.is_empty() && !self.allow_remote {
            return Err(
                "admin.hosts: only used with [admin] allow_remote = true (loopback \
                 names and addresses are always accepted); remove it or set allow_remote"
                    .to_owned(),
            );
        }
        for (i, host) in self.hosts.iter().enumerate() {
            let ok = !host.is_empty()
                && host.len() <= 260
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                });
            if !ok {
                return Err(format!(
                    "admin.hosts[{i}]: {host:?} is not a host name or address (optionally \
                     with :port), e.g. \"admin.internal\" or \"10.0.0.5:8081\""
                ));
            }
        }
        Ok(())
    }
}

/// How durable "durable" is (`docs/design-decisions.md` 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DurabilityConfig {
    /// Survive a crash of the gateway process (`kill -9`).
    #[default]
    ProcessCrash,
    /// Also survive power loss (fdatasync per commit group).
    PowerLoss,
}

/// `[store]`. `Debug` shows the store URLs without their passwords.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Where the embedded stores and the generated master key live.
    pub data_dir: PathBuf,
    /// Key store: `"sqlite"` (embedded, default) or `"postgres://…"` (shared by instances).
    pub keys: String,
    /// Nonce store: `"embedded"` (default), `"redis://…"` or `"postgres://…"`.
    pub nonces: String,
    /// Durability of accepted nonces (embedded stores).
    pub durability: DurabilityConfig,
    /// Connections per networked store and instance.
    pub pool_size: u32,
    /// Giving up on (re)connecting to a networked store after this long.
    pub connect_timeout_ms: u64,
    /// Giving up on one store operation after this long: the request fails closed (503).
    pub op_timeout_ms: u64,
    /// Every instance reloads every key this often, as a safety net behind the change
    /// announcements of the PostgreSQL key store.
    pub refresh_interval_ms: u64,
    /// Accept a Redis nonce store without `appendonly yes` and `appendfsync always`
    /// (`docs/design-decisions.md` 19): a restarted Redis may then forget accepted nonces.
    pub redis_allow_non_durable: bool,
    /// With `keys` on PostgreSQL, allow `nonces = "embedded"`: accepted nonces then live in
    /// this instance's data directory only, which is safe for a single instance and lets a
    /// request accepted by one instance be accepted again by another.
    pub allow_per_instance_nonces: bool,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("data_dir", &self.data_dir)
            .field("keys", &crate::store::redact_url(&self.keys))
            .field("nonces", &crate::store::redact_url(&self.nonces))
            .field("durability", &self.durability)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("op_timeout_ms", &self.op_timeout_ms)
            .field("refresh_interval_ms", &self.refresh_interval_ms)
            .field("redis_allow_non_durable", &self.redis_allow_non_durable)
            .field("allow_per_instance_nonces", &self.allow_per_instance_nonces)
            .finish()
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("wbauth-data"),
            keys: "sqlite".to_owned(),
            nonces: "embedded".to_owned(),
            durability: DurabilityConfig::ProcessCrash,
            pool_size: 16,
            connect_timeout_ms: 2_000,
            op_timeout_ms: 1_000,
            refresh_interval_ms: 30_000,
            redis_allow_non_durable: false,
            allow_per_instance_nonces: false,
        }
    }
}

/// Which key store `[store] keys` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBackend {
    /// The embedded SQLite file in the data directory.
    Sqlite,
    /// PostgreSQL at this URL.
    Postgres(String),
}

/// Which nonce store `[store] nonces` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceBackend {
    /// The embedded journal in the data directory.
    Embedded,
    /// Redis at this URL.
    Redis(String),
    /// PostgreSQL at this URL.
    Postgres(String),
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl StoreConfig {
    /// The key store named by `keys`.
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn key_backend(&self) -> Result<KeyBackend, String> {
        match self.keys.as_str() {
            "sqlite" => Ok(KeyBackend::Sqlite),
            url if is_postgres_url(url) => Ok(KeyBackend::Postgres(url.to_owned())),
            other => Err(format!(
                "store.keys: unsupported key store {:?} (expected \"sqlite\" or a \
                 postgres://… URL)",
                crate::store::redact_url(other)
            )),
        }
    }

    /// The nonce store named by `nonces`.
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn nonce_backend(&self) -> Result<NonceBackend, String> {
        match self.nonces.as_str() {
            "embedded" => Ok(NonceBackend::Embedded),
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Ok(NonceBackend::Redis(url.to_owned()))
            }
            url if is_postgres_url(url) => Ok(NonceBackend::Postgres(url.to_owned())),
            other => Err(format!(
                "store.nonces: unsupported nonce store {:?} (expected \"embedded\", a \
                 redis://… or a postgres://… URL)",
                crate::store::redact_url(other)
            )),
        }
    }

    /// Pool size and timeouts of the networked stores.
    #[must_use]
    pub fn remote_options(&self) -> crate::store::RemoteOptions {
        crate::store::RemoteOptions {
            pool_size: self.pool_size,
            connect_timeout: std::time::Duration::from_millis(self.connect_timeout_ms),
            op_timeout: std::time::Duration::from_millis(self.op_timeout_ms),
            allow_non_durable: self.redis_allow_non_durable,
        }
    }
}

/// Body-match policy, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyMatchConfig {
    /// Byte for byte.
    #[default]
    Exact,
    /// The same JSON value.
    Json,
}

impl From<BodyMatchConfig> for BodyMatch {
    fn from(value: BodyMatchConfig) -> Self {
        match value {
            BodyMatchConfig::Exact => BodyMatch::Exact,
            BodyMatchConfig::Json => BodyMatch::Json,
        }
    }
}

/// `[verify]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// `"exact"` (default) or `"json"`.
    pub body_match: BodyMatchConfig,
    /// Largest accepted request body (row 2).
    pub max_body_bytes: usize,
    /// Largest upstream response passed back.
    pub max_response_bytes: usize,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            body_match: BodyMatchConfig::Exact,
            max_body_bytes: 64 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Which header carries the client address behind trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For` (default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

/// `[proxy]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Addresses or CIDR blocks of trusted reverse proxies.
    pub trusted: Vec<String>,
    /// The header to read the client address from when the peer is trusted.
    pub client_ip_header: ClientIpHeader,
}

/// `[[route]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Path prefix, matched by whole segments.
    pub prefix: String,
    /// Upstream base URL (`http://host:port`).
    pub upstream: String,
    /// Upstream timeout.
    #[serde(default = "default_upstream_timeout")]
    pub timeout_ms: u64,
    /// The client headers forwarded upstream, replacing the default list (`Accept`,
    /// `Accept-Language`, `User-Agent`, `Content-Type`, `X-Request-Id`). Never a name with
    /// `_`, credentials, or a header the gateway sets itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_headers: Option<Vec<String>>,
}

fn default_upstream_timeout() -> u64 {
    30_000
}

/// `[[kind]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindConfig {
    /// Name (`trade`, `main`, …).
    pub name: String,
    /// Exact paths and `/prefix/*` patterns this kind opens.
    pub paths: Vec<String>,
}

/// One kind's limit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length.
    pub window_ms: u64,
}

/// `[rate_limit]`: kind name → limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RateLimitConfig {
    /// Limits by kind.
    pub kinds: BTreeMap<String, RateLimit>,
}

/// `[keys]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Deactivate keys unused for this many days.
    pub idle_days: u64,
    /// Most trusted IP entries per key.
    pub max_ips: usize,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            idle_days: 14,
            max_ips: 50,
        }
    }
}

/// The environment variable prefix of overrides.
pub const ENV_PREFIX: &str = "WBAUTH_GATEWAY__";

impl Config {
    /// Reads a file, applies environment overrides, validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        match path {
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::new(&name, format!("cannot read: {e}")))?;
                Self::from_toml(&text, &name, &vars)
            }
            None => Self::from_toml("", "(defaults)", &vars),
        }
    }

    /// Parses TOML text named `source_name`, applies `overrides` (`WBAUTH_GATEWAY__…` pairs),
    /// validates.
    pub fn from_toml(
        text: &str,
        source_name: &str,
        overrides: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        // First from the text alone, so errors carry the file's line numbers.
        let parsed: Config = toml::from_str(text)
            .map_err(|e| ConfigError::new(source_name, toml_message(text, &e, false)))?;
        let config = if overrides.is_empty() {
            parsed
        } else {
            let mut table: toml::Table = toml::from_str(text)
                .map_err(|e| ConfigError::new(source_name, toml_message(text, &e, false)))?;
            for (var, value) in overrides {
                apply_override(&mut table, var, value)?;
            }
            let names: Vec<&str> = overrides.iter().map(|(k, _)| k.as_str()).collect();
            // A `[store]` variable's value is never repeated (it may be a URL with a password).
            let store_prefix = format!("{ENV_PREFIX}STORE__");
            let hide = names.iter().any(|n| n.starts_with(&store_prefix));
            Config::deserialize(toml::Value::Table(table))
                .map_err(|e| ConfigError::new(names.join(", "), toml_message("", &e, hide)))?
        };
        config
            .validate()
            .map_err(|message| ConfigError::new(source_name, message))?;
        Ok(config)
    }

    /// Semantic checks; the message names the key path.
    fn validate(&self) -> Result<(), String> {
        if self.verify.max_body_bytes == 0 {
            return Err("verify.max_body_bytes: must be at least 1".into());
        }
        self.admin.validate()?;
        if self.listen.max_connections == 0 {
            return Err("listen.max_connections: must be at least 1".into());
        }
        if self.console.session_idle_ms < 1_000 || self.console.session_max_ms < 1_000 {
            return Err(
                "console.session_idle_ms and console.session_max_ms: must be at least 1000".into(),
            );
        }
        if !(60_000..=30 * 86_400_000).contains(&self.console.link_ttl_ms) {
            return Err(
                "console.link_ttl_ms: must be between 60000 (1 min) and 2592000000 (30 days)"
                    .into(),
            );
        }
        if let Some(url) = &self.console.public_url {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            if rest
                .is_none_or(|r| r.trim_end_matches('/').is_empty() || r.contains(['?', '#', ' ']))
            {
                return Err(format!(
                    "console.public_url: {:?} is not an http:// or https:// address without query",
                    crate::store::redact_url(url)
                ));
            }
        }
        if self.keys.max_ips == 0 {
            return Err("keys.max_ips: must be at least 1".into());
        }
        if !(1_000..=86_400_000).contains(&self.tokens.lifetime_ms) {
            return Err(
                "tokens.lifetime_ms: must be between 1000 (1 s) and 86400000 (1 day)".into(),
            );
        }
        for (i, key) in self.tokens.keys.iter().enumerate() {
            if key
                .kid
                .as_deref()
                .is_some_and(|kid| kid.is_empty() || !kid.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(format!("tokens.keys[{i}].kid: must be visible ASCII"));
            }
        }
        for (i, trusted) in self.proxy.trusted.iter().enumerate() {
            IpRule::parse(trusted).map_err(|e| format!("proxy.trusted[{i}]: {e}"))?;
        }
        let keys = self.store.key_backend()?;
        let nonces = self.store.nonce_backend()?;
        if matches!(keys, KeyBackend::Postgres(_))
            && nonces == NonceBackend::Embedded
            && !self.store.allow_per_instance_nonces
        {
            return Err(
                "store.nonces: the keys are in PostgreSQL, which several instances \
                 share, but nonces = \"embedded\" keeps the accepted nonces in this \
                 instance's data directory only, so a request accepted by one instance would be \
                 accepted again by another. Set [store] nonces to the nonce store every \
                 instance shares (a redis://… or postgres://… URL) or, if this is the only \
                 instance using these keys, set [store] allow_per_instance_nonces = true."
                    .to_owned(),
            );
        }
        if self.store.pool_size == 0 || self.store.pool_size > 1_000 {
            return Err("store.pool_size: must be between 1 and 1000".to_owned());
        }
        for (name, value) in [
            ("connect_timeout_ms", self.store.connect_timeout_ms),
            ("op_timeout_ms", self.store.op_timeout_ms),
            ("refresh_interval_ms", self.store.refresh_interval_ms),
        ] {
            if value == 0 {
                return Err(format!("store.{name}: must be at least 1"));
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            check_prefix(&route.prefix).map_err(|e| format!("route[{i}].prefix: {e}"))?;
            check_upstream(&route.upstream).map_err(|e| format!("route[{i}].upstream: {e}"))?;
            if route.timeout_ms == 0 {
                return Err(format!("route[{i}].timeout_ms: must be at least 1"));
            }
            check_forward_headers(route).map_err(|e| format!("route[{i}].{e}"))?;
        }
        for (i, route) in self.fiat.routes.iter().enumerate() {
            check_prefix(&route.prefix).map_err(|e| format!("fiat.route[{i}].prefix: {e}"))?;
            check_upstream(&route.upstream)
                .map_err(|e| format!("fiat.route[{i}].upstream: {e}"))?;
            check_forward_headers(route).map_err(|e| format!("fiat.route[{i}].{e}"))?;
            if self.routes.iter().any(|r| r.prefix == route.prefix) {
                return Err(format!(
                    "fiat.route[{i}].prefix: {:?} is also a private route",
                    route.prefix
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, kind) in self.kinds.iter().enumerate() {
            if kind.name.is_empty()
                || !kind
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "kind[{i}].name: {:?} must be letters, digits, '-' or '_'",
                    kind.name
                ));
            }
            if !names.insert(kind.name.as_str()) {
                return Err(format!(
                    "kind[{i}].name: kind {:?} is defined twice",
                    kind.name
                ));
            }
            for (j, pattern) in kind.paths.iter().enumerate() {
                whitebit_auth::path::check_pattern(pattern)
                    .map_err(|e| format!("kind[{i}].paths[{j}]: {e}"))?;
            }
        }
        for (name, limit) in &self.rate_limit.kinds {
            if !names.contains(name.as_str()) {
                return Err(format!("rate_limit.{name}: no kind named {name:?}"));
            }
            if limit.requests == 0 || limit.window_ms == 0 {
                return Err(format!(
                    "rate_limit.{name}: requests and window_ms must be at least 1"
                ));
            }
        }
        Ok(())
    }
}

/// A TOML error as a message: where (line, column, key) and why. The offending line is quoted
/// (as the TOML parser shows it) unless it lies in `[store]` (whose values are URLs with
/// passwords) or holds a URL with credentials; then, and whenever `hide_values`, the values
/// the reason would repeat are left out too. URLs left in the message lose their passwords.
fn toml_message(text: &str, e: &toml::de::Error, hide_values: bool) -> String {
    let reason = e.message().trim_end();
    let Some(span) = e.span().filter(|span| span.start <= text.len()) else {
        let message = e.to_string();
        let message = if hide_values {
            hide_quoted_values(&message)
        } else {
            message
        };
        return crate::store::redact_urls_in(message.trim_end()).replace('\n', "\n  ");
    };
    let start = span.start;
    let end = span.end.clamp(start, text.len());
    let line = text[..start].matches('\n').count();
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..]
        .char_indices()
        .take_while(|(i, _)| line_start + i < start)
        .count()
        + 1;
    let last_line = line + text[start..end].matches('\n').count();
    let lines: Vec<&str> = text.split('\n').collect();
    let touched = lines.get(line..=last_line.min(lines.len().saturating_sub(1)));
    let key = key_path_at(&lines, line);
    let in_store = key == "store" || key.starts_with("store.");
    let credentials = touched.is_some_and(|touched| touched.iter().any(|l| has_credentials(l)));
    if !(hide_values || in_store || credentials) {
        let message = crate::store::redact_urls_in(e.to_string().trim_end());
        return message.replace('\n', "\n  ");
    }
    let place = if key.is_empty() {
        format!("line {}, column {column}", line + 1)
    } else {
        format!("line {}, column {column}, in {key}", line + 1)
    };
    format!(
        "{place}: {} (the line is not shown: it may hold a password)",
        crate::store::redact_urls_in(&hide_quoted_values(reason))
    )
}

/// Whether a line holds a URL with user information (`scheme://user:password@host`).
fn has_credentials(line: &str) -> bool {
    line.find("://")
        .is_some_and(|at| line[at + 3..].contains('@'))
}

/// The dotted key of line `index` of a TOML document: its table (the last `[table]` or
/// `[[array]]` header above it) and the key before its `=`; empty when unknown.
fn key_path_at(lines: &[&str], index: usize) -> String {
    let unquote = |part: &str| {
        part.split('.')
            .map(|p| p.trim().trim_matches(['"', '\'']))
            .collect::<Vec<_>>()
            .join(".")
    };
    let header = |line: &str| {
        let line = line.trim();
        line.starts_with('[').then(|| {
            let inner = line.trim_start_matches('[');
            let inner = inner.split(']').next().unwrap_or_default();
            unquote(inner)
        })
    };
    let current = lines.get(index).copied().unwrap_or_default();
    if let Some(table) = header(current) {
        return table;
    }
    let table = lines
        .get(..index)
        .unwrap_or_default()
        .iter()
        .rev()
        .find_map(|l| header(l))
        .unwrap_or_default();
    let key = current
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| {
            !k.is_empty()
                && k.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' ')
                })
        })
        .map(unquote)
        .unwrap_or_default();
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    }
}

/// A serde reason without the value it quotes: `invalid type: string "…", expected u32` →
/// `invalid type: a string, expected u32`; `unknown variant `…`, expected …` →
/// `unknown variant, expected …`.
fn hide_quoted_values(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    loop {
        let string = rest.find("string \"");
        let variant = rest.find("variant `");
        match (string, variant) {
            (Some(s), v) if v.is_none_or(|v| s < v) => {
                out.push_str(&rest[..s]);
                out.push_str("a string");
                // Skip the Debug-escaped string literal.
                let body = &rest[s + "string \"".len()..];
                let mut escaped = false;
                let close = body.char_indices().find(|&(_, c)| {
                    let end = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    end
                });
                rest = close.map_or("", |(i, _)| &body[i + 1..]);
            }
            (_, Some(v)) => {
                out.push_str(&rest[..v]);
                out.push_str("variant");
                let body = &rest[v + "variant `".len()..];
                rest = body.find('`').map_or("", |i| &body[i + 1..]);
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// Sets `a.b.c` from `WBAUTH_GATEWAY__A__B__C=value`; the value is read as TOML when it
/// parses as a TOML value (numbers, booleans, arrays), else as a string.
fn apply_override(table: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::new(
            var,
            "expected WBAUTH_GATEWAY__SECTION__KEY",
        ));
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, sections) = path
        .split_last()
        .ok_or_else(|| ConfigError::new(var, "empty key"))?;
    let mut current = table;
    for section in sections {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::new(var, format!("{section} is not a section")))?;
    }
    current.insert(last.clone(), parsed);
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    match normalize_path(prefix) {
        Ok(n) if n == prefix => Ok(()),
        Ok(n) => Err(format!("{prefix:?} is not normalised (write {n:?})")),
        Err(e) => Err(format!("{prefix:?}: {e}")),
    }
}

fn check_forward_headers(route: &RouteConfig) -> Result<(), String> {
    for (j, name) in route.forward_headers.iter().flatten().enumerate() {
        crate::forward::check_forward_header(name)
            .map_err(|e| format!("forward_headers[{j}]: {e}"))?;
    }
    Ok(())
}

fn check_upstream(url: &str) -> Result<(), String> {
    let shown = crate::store::redact_url(url);
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("{shown:?}: expected http://host:port (TLS to upstreams is terminated elsewhere)")
    })?;
    let authority = rest.trim_end_matches('/');
    if authority.contains('@') {
        return Err(format!(
            "{shown:?}: expected http://host:port without user name or password"
        ));
    }
    if authority.is_empty() || authority.contains(['/', '?', '#', ' ']) {
        return Err(format!("{shown:?}: expected http://host:port with no path"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, "gateway.toml", &[])
    }

    #[test]
    fn defaults_need_no_file() {
        let c = load("").expect("defaults");
        assert_eq!(c.listen.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.admin.addr.to_string(), "127.0.0.1:8081");
        assert_eq!(c.verify.max_body_bytes, 65_536);
        assert_eq!(c.listen.max_connections, 10_000);
        assert_eq!(c.keys.idle_days, 14);
        assert_eq!(c.keys.max_ips, 50);
        assert_eq!(c.verify.body_match, BodyMatchConfig::Exact);
    }

    #[test]
    fn full_file() {
        let c = load(
            r#"
[listen]
addr = "0.0.0.0:9000"
[verify]
body_match = "json"
[proxy]
trusted = ["10.0.0.0/8", "::1"]
[[route]]
prefix = "/api/v4"
upstream = "http://127.0.0.1:7000"
[[kind]]
name = "trade"
paths = ["/api/v4/trade-account/*", "/api/v4/order/new"]
[rate_limit]
trade = { requests = 10, window_ms = 1000 }
"#,
        )
        .expect("valid");
        assert_eq!(c.routes[0].timeout_ms, 30_000);
        assert_eq!(c.kinds[0].paths.len(), 2);
        assert_eq!(c.rate_limit.kinds["trade"].requests, 10);
    }

    #[test]
    fn errors_name_file_line_key_and_reason() {
        let e = load("[verify]\nbody_match = \"fuzzy\"\n").expect_err("bad enum");
        let text = e.to_string();
        assert!(text.starts_with("gateway.toml: "), "{text}");
        assert!(text.contains("line 2") && text.contains("fuzzy"), "{text}");
        let e = load("[verify]\nbodymatch = \"json\"\n").expect_err("unknown key");
        assert!(e.to_string().contains("bodymatch"), "{e}");
        let e = load("[[route]]\nprefix = \"/api//v4\"\nupstream = \"http://x:1\"\n")
            .expect_err("not normalised");
        assert!(e.to_string().contains("route[0].prefix"), "{e}");
        let e = load("[[route]]\nprefix = \"/api\"\nupstream = \"https://x\"\n").expect_err("tls");
        assert!(e.to_string().contains("route[0].upstream"), "{e}");
        let e = load("[proxy]\ntrusted = [\"10.0.0.0/33\"]\n").expect_err("cidr");
        assert!(e.to_string().contains("proxy.trusted[0]"), "{e}");
        let e = load("[[kind]]\nname = \"t\"\npaths = [\"/a/*/b\"]\n").expect_err("pattern");
        assert!(e.to_string().contains("kind[0].paths[0]"), "{e}");
        let e = load("[rate_limit]\nnope = { requests = 1, window_ms = 1 }\n")
            .expect_err("unknown kind");
        assert!(e.to_string().contains("rate_limit.nope"), "{e}");
        let e = load("[[kind]]\nname = \"t\"\npaths = [\"/api/%2e%2e/*\"]\n").expect_err("escape");
        assert!(e.to_string().contains("kind[0].paths[0]"), "{e}");
        assert!(e.to_string().contains("percent escape"), "{e}");
    }

    #[test]
    fn forwarded_headers_are_an_allow_list() {
        let route = |names: &str| {
            load(&format!(
                "[[route]]\nprefix = \"/api\"\nupstream = \"http://x:1\"\nforward_headers = [{names}]\n"
            ))
        };
        let c = route("\"X-Request-Id\", \"X-Tenant\"").expect("valid names");
        assert_eq!(
            c.routes[0].forward_headers.as_deref(),
            Some(&["X-Request-Id".to_owned(), "X-Tenant".to_owned()][..])
        );
        for (bad, why) in [
            ("x_auth_account", "'_'"),
            ("X-Auth-Account", "never forwarded"),
            ("Authorization", "never forwarded"),
            ("Cookie", "never forwarded"),
            ("X-Original-URL", "never forwarded"),
            ("X-HTTP-Method-Override", "never forwarded"),
            ("X-Forwarded-For", "never forwarded"),
            ("X-Real-IP", "never forwarded"),
            ("X-TXC-APIKEY", "never forwarded"),
            ("Connection", "never forwarded"),
            ("Host", "never forwarded"),
            ("bad name", "not a valid header name"),
        ] {
            let e = route(&format!("\"X-Request-Id\", \"{bad}\"")).expect_err(bad);
            let text = e.to_string();
            assert!(text.contains("route[0].forward_headers[1]"), "{text}");
            assert!(text.contains(why), "{bad}: {text}");
        }
    }

    #[test]
    fn store_values_and_credentials_are_never_quoted() {
        let cases = [
            // (file, password, what the message must still say)
            (
                "[store]\nkeys = \"postgres://wb:S3cretA@db/keys\n",
                "S3cretA",
                vec!["line 2, column", "in store.keys", "not shown"],
            ),
            (
                "[store]\npool_size = \"S3cretB\"\n",
                "S3cretB",
                vec![
                    "line 2",
                    "in store.pool_size",
                    "invalid type: a string, expected u32",
                ],
            ),
            (
                "[store]\ndurability = \"postgres://wb:S3cretC@db/x\"\n",
                "S3cretC",
                vec![
                    "in store.durability",
                    "unknown variant, expected `process-crash`",
                ],
            ),
            (
                "store.keys = \"postgres://wb:S3cretD@db/keys\" x\n",
                "S3cretD",
                vec!["line 1", "in store.keys"],
            ),
            (
                "store = { keys = \"postgres://wb:S3cretE@db/keys\", x }\n",
                "S3cretE",
                vec!["line 1", "in store"],
            ),
            (
                "[console]\npublic_url = \"https://ops:S3cretF@c.example\" oops\n",
                "S3cretF",
                vec!["line 2", "in console.public_url"],
            ),
            (
                "[[route]]\nprefix = \"/api\"\nupstream = \"http://ops:S3cretG@x:1\"\n",
                "S3cretG",
                vec!["route[0].upstream", "without user name or password"],
            ),
            (
                "[console]\npublic_url = \"ftp://ops:S3cretH@c.example\"\n",
                "S3cretH",
                vec!["console.public_url"],
            ),
            (
                "[store]\nnonces = \"memcached://:S3cretI/x@cache\"\n",
                "S3cretI",
                vec!["store.nonces", "unsupported nonce store"],
            ),
        ];
        for (text, password, said) in cases {
            let e = load(text).expect_err(text).to_string();
            assert!(!e.contains(password), "{text}: {e}");
            assert!(e.starts_with("gateway.toml: "), "{e}");
            for s in said {
                assert!(e.contains(s), "{text}: {s:?} missing in {e}");
            }
        }
        // Through the environment.
        for (var, value, password) in [
            (
                "WBAUTH_GATEWAY__STORE__DURABILITY",
                "postgres://wb:S3cretJ@db/x",
                "S3cretJ",
            ),
            ("WBAUTH_GATEWAY__STORE__POOL_SIZE", "S3cretK", "S3cretK"),
            (
                "WBAUTH_GATEWAY__STORE__KEYS",
                "mysql://root:S3cretL@db/k",
                "S3cretL",
            ),
        ] {
            let vars = vec![(var.to_owned(), value.to_owned())];
            let e = Config::from_toml("", "g.toml", &vars)
                .expect_err(var)
                .to_string();
            assert!(!e.contains(password), "{var}: {e}");
            assert!(e.contains("store."), "{var}: {e}");
        }
        // Elsewhere the line is still quoted.
        let e = load("[verify]\nbody_match = \"fuzzy\"\n").expect_err("bad enum");
        assert!(e.to_string().contains("body_match = \"fuzzy\""), "{e}");
        // Debug shows no password.
        let c = load(
            "[store]\nkeys = \"postgres://wb:S3cretM@db/k\"\nnonces = \"redis://:S3cretN@c/0\"\n",
        )
        .expect("valid");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("S3cretM") && !debug.contains("S3cretN"),
            "{debug}"
        );
        assert!(debug.contains("postgres://wb:***@db/k"), "{debug}");
    }

    #[test]
    fn the_admin_listener_stays_on_loopback_unless_allowed() {
        for (toml, said) in [
            (
                "[admin]\naddr = \"0.0.0.0:8081\"\n",
                "admin.addr: 0.0.0.0:8081",
            ),
            ("[admin]\naddr = \"[::]:8081\"\n", "admin.addr: [::]:8081"),
            (
                "[admin]\naddr = \"10.0.0.5:8081\"\n",
                "admin.addr: 10.0.0.5:8081",
            ),
            (
                "[admin]\nhosts = [\"admin.internal\"]\n",
                "admin.hosts: only used with [admin] allow_remote = true",
            ),
            (
                "[admin]\naddr = \"0.0.0.0:8081\"\nallow_remote = true\nhosts = [\"a b\"]\n",
                "admin.hosts[0]",
            ),
        ] {
            let e = load(toml).expect_err(toml).to_string();
            assert!(e.contains(said), "{toml}: {e}");
            assert!(
                e.contains("allow_remote") || e.contains("admin.hosts[0]"),
                "{e}"
            );
        }
        for toml in [
            "[admin]\naddr = \"127.0.0.1:8081\"\n",
            "[admin]\naddr = \"127.0.0.2:0\"\n",
            "[admin]\naddr = \"[::1]:8081\"\n",
            "[admin]\naddr = \"[::ffff:127.0.0.1]:8081\"\n",
            "[admin]\naddr = \"0.0.0.0:8081\"\nallow_remote = true\n",
            "[admin]\naddr = \"10.0.0.5:8081\"\nallow_remote = true\nhosts = [\"admin.internal\", \"10.0.0.5:8081\", \"[fd00::1]:8081\"]\n",
        ] {
            load(toml).expect(toml);
        }
        let vars = vec![(
            "WBAUTH_GATEWAY__ADMIN__ADDR".to_owned(),
            "0.0.0.0:8081".to_owned(),
        )];
        let e = Config::from_toml("", "g.toml", &vars).expect_err("refused");
        assert!(e.to_string().contains("allow_remote = true"), "{e}");
    }

    #[test]
    fn environment_overrides() {
        let vars = vec![
            (
                "WBAUTH_GATEWAY__VERIFY__BODY_MATCH".to_owned(),
                "json".to_owned(),
            ),
            (
                "WBAUTH_GATEWAY__VERIFY__MAX_BODY_BYTES".to_owned(),
                "1024".to_owned(),
            ),
            (
                "WBAUTH_GATEWAY__LISTEN__ADDR".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
        ];
        let c = Config::from_toml("[verify]\nbody_match = \"exact\"\n", "f.toml", &vars)
            .expect("valid");
        assert_eq!(c.verify.body_match, BodyMatchConfig::Json);
        assert_eq!(c.verify.max_body_bytes, 1024);
        assert_eq!(c.listen.addr.port(), 0);
        let bad = vec![(
            "WBAUTH_GATEWAY__VERIFY__MAX_BODY_BYTES".to_owned(),
            "lots".to_owned(),
        )];
        let e = Config::from_toml("", "f.toml", &bad).expect_err("bad value");
        assert!(
            e.to_string()
                .contains("WBAUTH_GATEWAY__VERIFY__MAX_BODY_BYTES"),
            "{e}"
        );
    }

    #[test]
    fn store_backends_are_chosen_by_url() {
        let config = |keys: &str, nonces: &str| {
            Config::from_toml(
                &format!("[store]\nkeys = {keys:?}\nnonces = {nonces:?}\n"),
                "g.toml",
                &[],
            )
        };
        let c = config("postgres://wb:pw@db/keys", "redis://cache:6379/2").expect("valid");
        assert_eq!(
            c.store.key_backend(),
            Ok(KeyBackend::Postgres("postgres://wb:pw@db/keys".into()))
        );
        assert_eq!(
            c.store.nonce_backend(),
            Ok(NonceBackend::Redis("redis://cache:6379/2".into()))
        );
        let c = config("sqlite", "postgresql://db/nonces").expect("valid");
        assert_eq!(c.store.key_backend(), Ok(KeyBackend::Sqlite));
        assert_eq!(
            c.store.nonce_backend(),
            Ok(NonceBackend::Postgres("postgresql://db/nonces".into()))
        );
        // Unknown stores are refused, and the message never shows a password.
        let e = config("mysql://root:hunter2@db/keys", "embedded")
            .expect_err("mysql refused")
            .to_string();
        assert!(
            e.contains("store.keys") && e.contains("mysql://root:***@db/keys"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = config("sqlite", "memcached://x")
            .expect_err("refused")
            .to_string();
        assert!(e.contains("store.nonces"), "{e}");
        let e = Config::from_toml("[listen]\nmax_connections = 0\n", "g.toml", &[])
            .expect_err("refused")
            .to_string();
        assert!(e.contains("listen.max_connections"), "{e}");
        let e = Config::from_toml("[store]\npool_size = 0\n", "g.toml", &[])
            .expect_err("refused")
            .to_string();
        assert!(e.contains("store.pool_size"), "{e}");
        let e = Config::from_toml("[store]\nop_timeout_ms = 0\n", "g.toml", &[])
            .expect_err("refused")
            .to_string();
        assert!(e.contains("store.op_timeout_ms"), "{e}");
    }

    #[test]
    fn postgres_keys_need_shared_nonces_or_an_explicit_single_instance() {
        let config = |store: &str| Config::from_toml(&format!("[store]\n{store}"), "g.toml", &[]);
        for store in [
            "keys = \"postgres://wb:pw@db/keys\"\n",
            "keys = \"postgresql://db/keys\"\nnonces = \"embedded\"\n",
            "keys = \"postgres://db/keys\"\nallow_per_instance_nonces = false\n",
        ] {
            let e = config(store).expect_err(store).to_string();
            assert!(e.starts_with("g.toml: store.nonces: "), "{e}");
            assert!(
                e.contains("accepted again by another")
                    && e.contains("redis://")
                    && e.contains("allow_per_instance_nonces = true"),
                "{e}"
            );
            assert!(!e.contains("decision") && !e.contains("pw@"), "{e}");
        }
        // The same through the environment.
        let vars = vec![(
            "WBAUTH_GATEWAY__STORE__KEYS".to_owned(),
            "postgres://db/keys".to_owned(),
        )];
        let e = Config::from_toml("", "g.toml", &vars).expect_err("refused");
        assert!(e.to_string().contains("allow_per_instance_nonces"), "{e}");
        // Shared nonces, or the explicit choice of one instance, are accepted.
        for store in [
            "keys = \"postgres://db/keys\"\nnonces = \"redis://cache:6379/0\"\n",
            "keys = \"postgres://db/keys\"\nnonces = \"postgres://db/keys\"\n",
            "keys = \"postgres://db/keys\"\nallow_per_instance_nonces = true\n",
            "keys = \"sqlite\"\n",
        ] {
            let c = config(store).expect(store);
            assert_eq!(
                c.store.allow_per_instance_nonces,
                store.contains("allow_per_instance_nonces"),
                "{store}"
            );
        }
        assert!(!load("").expect("defaults").store.allow_per_instance_nonces);
    }

    #[test]
    fn the_example_file_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../gateway.example.toml");
        let text = std::fs::read_to_string(path).expect("gateway.example.toml");
        let c = Config::from_toml(&text, "gateway.example.toml", &[]).expect("valid example");
        assert_eq!(
            (c.routes.len(), c.kinds.len(), c.fiat.routes.len()),
            (1, 2, 1)
        );
        assert_eq!(c.rate_limit.kinds["trade"].requests, 100);
        assert_eq!(c.console.listen, None);
        assert_eq!(c.console.link_ttl_ms, 86_400_000);
    }

    #[test]
    fn console_links_are_checked() {
        for (toml, key) in [
            ("[console]\nlink_ttl_ms = 59999\n", "console.link_ttl_ms"),
            (
                "[console]\nlink_ttl_ms = 2592000001\n",
                "console.link_ttl_ms",
            ),
            (
                "[console]\npublic_url = \"console.example.com\"\n",
                "console.public_url",
            ),
            (
                "[console]\npublic_url = \"https://\"\n",
                "console.public_url",
            ),
            (
                "[console]\npublic_url = \"https://c.example?x=1\"\n",
                "console.public_url",
            ),
        ] {
            let e = Config::from_toml(toml, "g.toml", &[])
                .expect_err(toml)
                .to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
        let c = Config::from_toml(
            "[console]\npublic_url = \"https://console.example.com/\"\nlink_ttl_ms = 60000\n",
            "g.toml",
            &[],
        )
        .expect("valid");
        assert_eq!(
            c.console.public_url.as_deref(),
            Some("https://console.example.com/")
        );
    }
}
