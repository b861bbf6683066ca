//! The token issuer of a configuration's `[tokens]` section.

use super::{SigningKey, TokenIssuer};
use crate::config::Config;

/// How a `[tokens] keys` entry that cannot be loaded is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadKey {
    /// Logged and skipped (at start-up: the token endpoint then answers 500 "Server
    /// configuration issues" rather than the gateway refusing to start).
    Skip,
    /// Refused (a live reload, which keeps the running keys instead).
    Refuse,
}

/// The issuer of `config`'s `[tokens]`: its PEM keys read now; with `generate` (the sandbox)
/// an RS256 key made in memory when none is configured.
///
/// # Errors
/// A key that cannot be loaded (with [`BadKey::Refuse`]), or issuer settings that are not
/// usable; the message names the setting.
pub(crate) fn issuer_for(
    config: &Config,
    generate: bool,
    bad_key: BadKey,
) -> Result<TokenIssuer, String> {
    let mut keys = Vec::new();
    for (i, key) in config.tokens.keys.iter().enumerate() {
        match SigningKey::load_pem_file(&key.pem).and_then(|k| k.with_kid(key.kid.as_deref())) {
            Ok(k) => keys.push(k),
            Err(e) if bad_key == BadKey::Refuse => {
                return Err(format!("tokens.keys[{i}]: {e}"));
            }
            Err(e) => {
                tracing::error!(target: "wbauth::tokens", "tokens.keys[{i}] is not usable: {e}")
            }
        }
    }
    if keys.is_empty() && generate {
        keys.push(
            SigningKey::generate_rs256().map_err(|e| format!("generating a token key: {e}"))?,
        );
    }
    let issuer = TokenIssuer::new(
        config.tokens.issuer.clone(),
        config.tokens.audience.clone(),
        keys,
    )
    .map_err(|e| format!("tokens.keys: {e}"))?;
    Ok(issuer.with_lifetime_ms(config.tokens.lifetime_ms))
}
