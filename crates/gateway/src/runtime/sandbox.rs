//! `wbauth sandbox`: a zero-config offline double of the real service (`docs/design-decisions.md` 25).

use std::net::SocketAddr;

use whitebit_auth::encoding::hex_encode;

use crate::config::{BodyMatchConfig, Config};
use crate::error::GatewayError;
use crate::runtime::Stores;
use wbauth_store::{NewKey, SecretBytes};

/// The kind of the demo key: every path.
pub(crate) const SANDBOX_KIND: &str = "sandbox";

/// What the sandbox needs to know.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Listen address (default `127.0.0.1:8080`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// A fixed demo key instead of a random one.
    pub demo_key: Option<String>,
    /// A fixed demo secret instead of a random one.
    pub demo_secret: Option<String>,
    /// A gateway configuration file read as `wbauth serve` reads it (body match, kinds, rate
    /// limits, routes to real upstreams); `None`: the defaults.
    pub config_file: Option<std::path::PathBuf>,
    /// The body-match policy, over the file and the environment (`--body-match`).
    pub body_match: Option<BodyMatchConfig>,
    /// The demo key's kind: one of the configuration's `[[kind]]`s (default: the sandbox's own
    /// kind, every path).
    pub demo_kind: Option<String>,
    /// Serve HTTPS with this certificate and key (`--tls-cert`, `--tls-key`), over the file's
    /// `[listen] tls`.
    pub tls: Option<crate::config::TlsConfig>,
}

/// The sandbox's configuration: `options.config_file` (or the defaults) with `overrides` (the
/// `WBAUTH_GATEWAY__…` variables, as `wbauth serve` applies them) and `options.body_match`
/// over it; then the sandbox's own: the listen address of `options`, the temporary data dir,
/// and a `sandbox` kind opening every path (added to the configured kinds). Configured
/// `[[route]]`s forward to their upstreams; every other private path gets the built-in answers.
///
/// # Errors
/// A file that cannot be read or parsed, an override that is not valid, or a demo kind the
/// configuration does not define.
pub fn sandbox_config(
    options: &SandboxOptions,
    data_dir: &std::path::Path,
    overrides: &[(String, String)],
) -> Result<Config, GatewayError> {
    let vars: Vec<(String, String)> = overrides
        .iter()
        .filter(|(k, _)| k.starts_with(crate::config::ENV_PREFIX))
        .cloned()
        .collect();
    let (text, name) = match &options.config_file {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| GatewayError::Io {
                context: format!("reading the configuration {name}"),
                source,
            })?;
            (text, name)
        }
        None => (String::new(), "(sandbox)".to_owned()),
    };
    let mut config = Config::from_toml(&with_sandbox_kind(text), &name, &vars)?;
    config.listen.addr = options.listen;
    if let Some(tls) = &options.tls {
        config.listen.tls = Some(tls.clone());
    }
    config.store.data_dir = data_dir.to_path_buf();
    if let Some(body_match) = options.body_match {
        config.verify.body_match = body_match;
    }
    if let Some(kind) = &options.demo_kind
        && !config.kinds.iter().any(|k| &k.name == kind)
    {
        let known: Vec<&str> = config.kinds.iter().map(|k| k.name.as_str()).collect();
        return Err(GatewayError::Invalid(format!(
            "--demo-kind {kind}: the configuration has no [[kind]] of that name (it has: {}); \
             add one to the file given with --config, or leave --demo-kind out",
            known.join(", ")
        )));
    }
    Ok(config)
}

/// `text` with a `sandbox` kind opening every path appended, unless it defines one (so that
/// `[rate_limit.sandbox]` and its variables name a kind). Appended at the end, so the file's
/// line numbers stay right; text that is not TOML is left for the parser to report.
fn with_sandbox_kind(mut text: String) -> String {
    let Ok(table) = toml::from_str::<toml::Table>(&text) else {
        return text;
    };
    let defined = table
        .get("kind")
        .and_then(toml::Value::as_array)
        .is_some_and(|kinds| {
            kinds
                .iter()
                .any(|k| k.get("name").and_then(toml::Value::as_str) == Some(SANDBOX_KIND))
        });
    if !defined {
        text.push_str(&format!(
            "\n[[kind]]\nname = \"{SANDBOX_KIND}\"\npaths = [\"/*\"]\n"
        ));
    }
    text
}

/// Random lowercase hex of `bytes` random bytes.
pub(crate) fn random_hex(bytes: usize) -> Result<String, GatewayError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| GatewayError::Invalid(format!("no randomness: {e}")))?;
    Ok(hex_encode(&buf))
}

/// Creates the demo account and key; returns (public key, secret).
pub async fn seed_demo_key(
    stores: &Stores,
    options: &SandboxOptions,
    now_ms: u64,
) -> Result<(String, String), GatewayError> {
    let public_key = match &options.demo_key {
        Some(k) => k.clone(),
        None => random_hex(16)?,
    };
    let secret = match &options.demo_secret {
        Some(s) => s.clone(),
        None => random_hex(32)?,
    };
    if public_key.is_empty() || public_key.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(GatewayError::Invalid(
            "--demo-key must be visible ASCII without spaces".into(),
        ));
    }
    if secret.is_empty() {
        return Err(GatewayError::Invalid(
            "--demo-secret must not be empty".into(),
        ));
    }
    // A shared key store may hold the demo account from an earlier run.
    let account = match stores.keys.get_account("demo".to_owned()).await? {
        Some(account) => account,
        None => {
            stores
                .keys
                .insert_account("demo".to_owned(), now_ms)
                .await?
        }
    };
    stores
        .keys
        .insert_key(demo_key(
            &public_key,
            &secret,
            options.demo_kind.as_deref().unwrap_or(SANDBOX_KIND),
            account.id,
            now_ms,
        ))
        .await?;
    Ok((public_key, secret))
}

/// A demo key of the demo account, of `kind` (the sandbox kind opens every private path), no
/// IP or endpoint list.
fn demo_key(public_key: &str, secret: &str, kind: &str, account_id: i64, now_ms: u64) -> NewKey {
    NewKey {
        public_key: public_key.to_owned(),
        account_id,
        kind: kind.to_owned(),
        secret: SecretBytes::new(secret.as_bytes().to_vec()),
        ips: Vec::new(),
        endpoints: Vec::new(),
        created_ms: now_ms,
    }
}

/// Most extra demo keys a sandbox will create.
pub(crate) const MAX_EXTRA_KEYS: usize = 1_000_000;

/// Creates `count` more demo keys (random keys and secrets, every private path) in one batch,
/// for load tests that need many keys (window mode allows about 1,000 requests per second per
/// key); returns `(public key, secret)` pairs.
///
/// # Errors
/// When `count` is over 1,000,000 or the store fails.
pub async fn seed_extra_keys(
    stores: &Stores,
    count: usize,
    now_ms: u64,
) -> Result<Vec<(String, String)>, GatewayError> {
    if count > MAX_EXTRA_KEYS {
        return Err(GatewayError::Invalid(format!(
            "--extra-keys: at most {MAX_EXTRA_KEYS}"
        )));
    }
    let Some(account) = stores.keys.get_account("demo".to_owned()).await? else {
        return Err(GatewayError::Invalid(
            "the demo account does not exist (seed the demo key first)".into(),
        ));
    };
    let mut pairs = Vec::with_capacity(count);
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        let (public_key, secret) = (random_hex(16)?, random_hex(32)?);
        keys.push(demo_key(
            &public_key,
            &secret,
            SANDBOX_KIND,
            account.id,
            now_ms,
        ));
        pairs.push((public_key, secret));
    }
    // Batches keep each transaction (and its memory) moderate.
    let mut rest = keys;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(10_000));
        stores.keys.insert_keys(rest).await?;
        rest = tail;
    }
    Ok(pairs)
}
