//! The configuration harness: TOML with overrides and validation.

use whitebit_auth::path::{normalize_path, pattern_matches};
use whitebit_gateway::config::{Config, ENV_PREFIX};

use crate::{Outcome, fields};

/// The gateway's configuration parser, as `wbauth serve --config FILE` uses it.
///
/// Input: the TOML text, then NUL-separated overrides `SECTION__KEY=value` (the
/// `WBAUTH_GATEWAY__` prefix is added when missing). Invariants: parsing is deterministic; an
/// accepted configuration satisfies the documented limits and its route tables and kind
/// patterns can be used; a refusal has a message.
pub fn config(data: &[u8]) -> Outcome {
    let [text, overrides] = fields::<2>(data);
    let text = String::from_utf8_lossy(text);
    let overrides: Vec<(String, String)> = overrides
        .split(|&b| b == 0)
        .filter(|o| !o.is_empty())
        .take(8)
        .map(|o| {
            let o = String::from_utf8_lossy(o);
            let (name, value) = o.split_once('=').unwrap_or((&o, ""));
            let name = if name.starts_with(ENV_PREFIX) {
                name.to_owned()
            } else {
                format!("{ENV_PREFIX}{name}")
            };
            (name, value.to_owned())
        })
        .collect();
    let first = Config::from_toml(&text, "fuzz.toml", &overrides);
    let second = Config::from_toml(&text, "fuzz.toml", &overrides);
    match (first, second) {
        (Ok(config), Ok(_)) => {
            assert!(config.verify.max_body_bytes >= 1);
            assert!((1_000..=86_400_000).contains(&config.tokens.lifetime_ms));
            assert!((1..=1_000).contains(&config.store.pool_size));
            assert!(config.keys.max_ips >= 1);
            assert!(config.store.key_backend().is_ok());
            assert!(config.store.nonce_backend().is_ok());
            let _ = config.store.remote_options();
            let routes = config.routes.iter().chain(&config.fiat.routes);
            for prefix in routes.map(|route| route.prefix.as_str()) {
                assert!(
                    normalize_path(prefix).is_ok(),
                    "a route prefix that is not a path: {prefix:?}"
                );
            }
            for kind in &config.kinds {
                for pattern in &kind.paths {
                    let _ = pattern_matches(pattern, "/api/v4/trade-account/balance");
                    let _ = pattern_matches(pattern, pattern);
                }
            }
            Outcome::Accepted
        }
        (Err(a), Err(b)) => {
            let message = a.to_string();
            assert!(!message.is_empty());
            assert_eq!(message, b.to_string(), "parsing is not deterministic");
            Outcome::Rejected
        }
        _ => panic!("parsing the same text twice gave different results"),
    }
}
