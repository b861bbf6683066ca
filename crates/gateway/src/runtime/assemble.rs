//! Building the verifier's shared state from the configuration and the opened stores.

use std::sync::Arc;

use super::Stores;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::GatewayError;
use crate::service::KeyService;
use crate::tokens::{BadKey, issuer_for};
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
    let tokens = issuer_for(&config, answers == Answers::BuiltIn, BadKey::Skip)
        .map_err(GatewayError::Invalid)?;
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
        gateway.shared_config().clone(),
        gateway.clock().clone(),
    )
}
