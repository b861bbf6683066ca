//! The sections of the file (`[listen]`, `[store]`, `[[route]]`, …) with their defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use whitebit_auth::BodyMatch;

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
    /// Serve the console over HTTPS with this certificate (none: plain HTTP).
    pub tls: Option<TlsConfig>,
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
            tls: None,
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

/// Default of `[runtime] upstream_connections`.
pub(crate) const DEFAULT_UPSTREAM_CONNECTIONS: usize = 256;

/// `[runtime]`: how the public listener uses the CPUs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Workers serving the public listener, each a single-threaded runtime on its own thread
    /// accepting from the same listening socket, with its own upstream connections. 0 (the
    /// default): one per CPU the process may run on (its affinity mask and CPU quota).
    pub workers: usize,
    /// Serve the public listener on the process's shared work-stealing runtime instead of
    /// the workers (the behaviour before `[runtime]` existed).
    pub shared: bool,
    /// Open connections to one upstream at most, per worker. A request finding them all busy
    /// waits for one within the route's timeout (then 504).
    pub upstream_connections: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            shared: false,
            upstream_connections: DEFAULT_UPSTREAM_CONNECTIONS,
        }
    }
}

impl RuntimeConfig {
    /// The number of workers: `workers`, or one per CPU the process may run on.
    #[must_use]
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
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
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with this certificate (none: plain HTTP/1.1).
    pub tls: Option<TlsConfig>,
}

/// TLS on a listener (`tls = { cert = "chain.pem", key = "key.pem" }`): PEM files, read at
/// start and again at every reload (`SIGHUP`, `POST /admin/reload`, `wbauth reload`) and
/// whenever they change on disk. A pair that cannot be used at a reload leaves the one in
/// service, and says why in the log and in `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Admin listener only: require a client certificate issued by one of these CAs (PEM);
    /// connections without one are refused during the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls: None,
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
    /// Serve the admin listener over HTTPS; with `client_ca`, only to clients holding a
    /// certificate from that CA (mutual TLS).
    pub tls: Option<TlsConfig>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            allow_remote: false,
            hosts: Vec::new(),
            tls: None,
        }
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
    /// Nonce store: `"embedded"` (default), `"redis://…"`, `"redis+sentinel://…"` or
    /// `"postgres://…"`.
    pub nonces: String,
    /// Durability of accepted nonces (embedded stores).
    pub durability: DurabilityConfig,
    /// Connections per networked store and instance (Redis: one, or this many with
    /// `nonce_replicas_ack` above 0).
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
    /// Redis nonce store: replicas that must hold each recorded nonce (`WAIT N`, within
    /// `op_timeout_ms`) before the request goes on; fewer answer 503. 0 (default): no wait,
    /// and a failover may lose the last nonces (README "Running highly available").
    pub nonce_replicas_ack: u32,
    /// PostgreSQL stores: refuse to start unless commits wait for a synchronous standby
    /// (`synchronous_standby_names` set, `synchronous_commit` `on` or `remote_apply`).
    pub require_sync_standby: bool,
    /// With `keys` on PostgreSQL, allow `nonces = "embedded"`: accepted nonces then live in
    /// this instance's data directory only, which is safe for a single instance and lets a
    /// request accepted by one instance be accepted again by another.
    pub allow_per_instance_nonces: bool,
    /// A `rediss://` nonce store: the CA certificate (PEM file) its certificate must chain
    /// to; unset, the system's trusted roots. PostgreSQL takes its CA in the URL
    /// (`sslrootcert=FILE`, with `sslmode=verify-full`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_ca: Option<PathBuf>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("data_dir", &self.data_dir)
            .field("keys", &wbauth_store::redact_url(&self.keys))
            .field("nonces", &wbauth_store::redact_url(&self.nonces))
            .field("durability", &self.durability)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("op_timeout_ms", &self.op_timeout_ms)
            .field("refresh_interval_ms", &self.refresh_interval_ms)
            .field("redis_allow_non_durable", &self.redis_allow_non_durable)
            .field("nonce_replicas_ack", &self.nonce_replicas_ack)
            .field("require_sync_standby", &self.require_sync_standby)
            .field("allow_per_instance_nonces", &self.allow_per_instance_nonces)
            .field("redis_ca", &self.redis_ca)
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
            nonce_replicas_ack: 0,
            require_sync_standby: false,
            allow_per_instance_nonces: false,
            redis_ca: None,
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
    /// Redis at this URL (`redis://`, `rediss://` or `redis+sentinel://`).
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
                wbauth_store::redact_url(other)
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
            url if ["redis://", "rediss://", "redis+sentinel://"]
                .iter()
                .any(|scheme| url.starts_with(scheme)) =>
            {
                Ok(NonceBackend::Redis(url.to_owned()))
            }
            url if is_postgres_url(url) => Ok(NonceBackend::Postgres(url.to_owned())),
            other => Err(format!(
                "store.nonces: unsupported nonce store {:?} (expected \"embedded\", a \
                 redis://…, a redis+sentinel://… or a postgres://… URL)",
                wbauth_store::redact_url(other)
            )),
        }
    }

    /// Pool size, timeouts and Redis's CA of the networked stores.
    #[must_use]
    pub fn remote_options(&self) -> wbauth_store::RemoteOptions {
        wbauth_store::RemoteOptions {
            pool_size: self.pool_size,
            connect_timeout: std::time::Duration::from_millis(self.connect_timeout_ms),
            op_timeout: std::time::Duration::from_millis(self.op_timeout_ms),
            allow_non_durable: self.redis_allow_non_durable,
            nonce_replicas_ack: self.nonce_replicas_ack,
            require_sync_standby: self.require_sync_standby,
            redis_ca: self.redis_ca.clone(),
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

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// What is logged: a level (`error`, `warn`, `info`, `debug`, `trace`) or per-target
    /// directives (`info,wbauth::request=debug`). `WBAUTH_LOG`, when set, takes its place.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
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
    /// Upstream base URL (`http://host:port` or `https://host:port`).
    pub upstream: String,
    /// `https://` upstreams: the CA certificates (PEM) that issued the upstream's certificate,
    /// instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// `https://` upstreams asking for a client certificate: the chain (PEM) the gateway
    /// presents; with `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// `https://` upstreams: offer HTTP/2 by ALPN (HTTP/1.1 when the upstream does not take
    /// it); one multiplexed connection per upstream and worker instead of a pool.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub http2: bool,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length.
    pub window_ms: u64,
}

/// `[rate_limit]`: kind name → limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
