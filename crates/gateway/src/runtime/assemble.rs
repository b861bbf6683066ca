//! Building the verifier's shared state from the configuration and the opened stores.

use std::sync::Arc;

use super::Stores;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::GatewayError;
use crate::service::KeyService;
use crate::verify::{Answers, Gateway};

/// Builds the verifier's shared state from `config` and the opened `stores`: every key and
/// partner loaded, the token keys read (with [`Answers::BuiltIn`], an RS256 key is generated
/// when none is configured), the routes decided by `answers`.
///
/// # Errors
/// A store that cannot be read, or a configuration the gateway cannot be built from.
pub async fn build_gateway(
    config: Config,
    stores: &Stores,
    clock: SharedClock,
    answers: Answers,
) -> Result<Arc<Gateway>, GatewayError> {
    let tokens = token_issuer(&config, answers == Answers::BuiltIn)?;
    Ok(Arc::new(
        Gateway::load(config, stores, clock, tokens, answers).await?,
    ))
}

/// The admin API's and the console's management service over the gateway's key store,
/// caches, configuration and clock (a change is in force on the very next request).
pub(crate) fn key_service(gateway: &Gateway) -> KeyService {
    let (store, keys, partners) = gateway.key_state();
    KeyService::new(
        store,
        keys,
        partners,
        gateway.config().clone(),
        gateway.clock().clone(),
    )
}

/// The token issuer: the configured PEM keys (a key that cannot be loaded is logged and
/// skipped, so the endpoint answers 500 "Server configuration issues" rather than the gateway
/// refusing to start); the sandbox generates an RS256 key when none is configured.
fn token_issuer(
    config: &Config,
    generate: bool,
) -> Result<crate::tokens::TokenIssuer, GatewayError> {
    use crate::tokens::{SigningKey, TokenIssuer};
    let mut keys = Vec::new();
    for (i, key) in config.tokens.keys.iter().enumerate() {
        match SigningKey::load_pem_file(&key.pem).and_then(|k| k.with_kid(key.kid.as_deref())) {
            Ok(k) => keys.push(k),
            Err(e) => {
                tracing::error!(target: "wbauth::tokens", "tokens.keys[{i}] is not usable: {e}")
            }
        }
    }
    if keys.is_empty() && generate {
        keys.push(
            SigningKey::generate_rs256()
                .map_err(|e| GatewayError::Invalid(format!("generating a token key: {e}")))?,
        );
    }
    let issuer = TokenIssuer::new(
        config.tokens.issuer.clone(),
        config.tokens.audience.clone(),
        keys,
    )
    .map_err(|e| GatewayError::Invalid(format!("tokens.keys: {e}")))?;
    Ok(issuer.with_lifetime_ms(config.tokens.lifetime_ms))
}
