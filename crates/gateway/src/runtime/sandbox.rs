//! `wbauth sandbox`: a zero-config offline double of the real service (`docs/design-decisions.md` 25).

use std::net::SocketAddr;

use whitebit_auth::encoding::hex_encode;

use crate::config::{Config, KindConfig};
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
}

/// The sandbox's configuration: defaults, a temporary data dir, one kind opening every path.
/// `store_overrides` (the `WBAUTH_GATEWAY__STORE__…` variables, and only those) may point it at
/// PostgreSQL or Redis instead of the embedded stores; the data dir stays the temporary one.
///
/// # Errors
/// When an override is not valid.
pub fn sandbox_config(
    options: &SandboxOptions,
    data_dir: &std::path::Path,
    store_overrides: &[(String, String)],
) -> Result<Config, GatewayError> {
    let prefix = format!("{}STORE__", crate::config::ENV_PREFIX);
    let store: Vec<(String, String)> = store_overrides
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .cloned()
        .collect();
    let mut config = Config::from_toml("", "(sandbox)", &store)?;
    config.listen.addr = options.listen;
    config.store.data_dir = data_dir.to_path_buf();
    config.kinds = vec![KindConfig {
        name: SANDBOX_KIND.to_owned(),
        paths: vec!["/*".to_owned()],
    }];
    Ok(config)
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
        .insert_key(demo_key(&public_key, &secret, account.id, now_ms))
        .await?;
    Ok((public_key, secret))
}

/// A demo key of the demo account: the sandbox kind (every private path), no IP or endpoint
/// list.
fn demo_key(public_key: &str, secret: &str, account_id: i64, now_ms: u64) -> NewKey {
    NewKey {
        public_key: public_key.to_owned(),
        account_id,
        kind: SANDBOX_KIND.to_owned(),
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
        keys.push(demo_key(&public_key, &secret, account.id, now_ms));
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
