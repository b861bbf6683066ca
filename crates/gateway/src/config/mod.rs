//! Gateway configuration: one TOML file (`docs/design-decisions.md` 26), every setting with a default,
//! each overridable by `WBAUTH_GATEWAY__SECTION__KEY` environment variables, validated once at
//! start-up with errors that name the file, the key and the reason (and the line when the
//! TOML parser gives it).

mod env;
mod forward_headers;
mod redact;
mod sections;
#[cfg(test)]
mod tests;
mod validate;

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use serde::{Deserialize, Serialize};

pub use env::ENV_PREFIX;
pub use forward_headers::DEFAULT_FORWARD_HEADERS;
pub(crate) use forward_headers::{HOP_BY_HOP, check_forward_header, default_forward_headers};
pub use sections::{
    AdminConfig, BodyMatchConfig, ClientIpHeader, ConsoleConfig, DEFAULT_MAX_CONNECTIONS,
    DurabilityConfig, FiatConfig, KeyBackend, KeysConfig, KindConfig, ListenConfig, LogConfig,
    NonceBackend, ProxyConfig, RateLimit, RateLimitConfig, RouteConfig, RuntimeConfig, StoreConfig,
    TlsConfig, TokenKeyConfig, TokensConfig, VerifyConfig,
};

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    /// The file (or environment variable) the problem is in.
    pub source_name: String,
    /// What is wrong, with the key path and line when known.
    pub message: String,
    /// The line (from 1) the problem is on, when the parser tells.
    pub line: Option<usize>,
    /// The setting the problem is in (`route[0].upstream`, `verify.max_body_bytes`), when
    /// known.
    pub key: Option<String>,
}

impl ConfigError {
    pub(crate) fn new(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        // Validation messages start with the setting they are about: `verify.max_body_bytes: …`.
        let key = message
            .split_once(": ")
            .map(|(key, _)| key)
            .filter(|key| {
                !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.[]-".contains(&b))
            })
            .map(str::to_owned);
        Self {
            source_name: source_name.into(),
            message,
            line: None,
            key,
        }
    }

    /// The error of a file that does not parse: its line and key from the parser's span.
    fn parse(source_name: &str, text: &str, e: &toml::de::Error, hide: bool) -> Self {
        let (line, key) = redact::locate(text, e);
        Self {
            line,
            key,
            ..Self::new(source_name, redact::toml_message(text, e, hide))
        }
    }
}

/// The configuration in force, shared by the verifier and the management service: read
/// anew by each operation, replaced as a whole by a live reload.
#[derive(Debug, Clone)]
pub(crate) struct SharedConfig(Arc<ArcSwap<Config>>);

impl SharedConfig {
    /// Shares `config`.
    pub(crate) fn new(config: Arc<Config>) -> Self {
        Self(Arc::new(ArcSwap::new(config)))
    }

    /// The configuration in force now.
    #[must_use]
    pub(crate) fn current(&self) -> Arc<Config> {
        self.0.load_full()
    }

    /// Puts `config` in force for every operation that starts from now on.
    pub(crate) fn replace(&self, config: Arc<Config>) {
        self.0.store(config);
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
    /// What `wbauth serve` logs.
    pub log: LogConfig,
    /// Workers of the public listener and upstream connections.
    pub runtime: RuntimeConfig,
}

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
        let parsed: Config =
            toml::from_str(text).map_err(|e| ConfigError::parse(source_name, text, &e, false))?;
        let config = if overrides.is_empty() {
            parsed
        } else {
            let mut table: toml::Table = toml::from_str(text)
                .map_err(|e| ConfigError::parse(source_name, text, &e, false))?;
            for (var, value) in overrides {
                env::apply_override(&mut table, var, value)?;
            }
            let names: Vec<&str> = overrides.iter().map(|(k, _)| k.as_str()).collect();
            // A `[store]` variable's value is never repeated (it may be a URL with a password).
            let store_prefix = format!("{ENV_PREFIX}STORE__");
            let hide = names.iter().any(|n| n.starts_with(&store_prefix));
            Config::deserialize(toml::Value::Table(table)).map_err(|e| {
                ConfigError::new(names.join(", "), redact::toml_message("", &e, hide))
            })?
        };
        config
            .validate()
            .map_err(|message| ConfigError::new(source_name, message))?;
        Ok(config)
    }
}
