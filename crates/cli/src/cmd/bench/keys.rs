//! The keys of `wbauth bench`: where they come from (a keys file, `--key`/`--secret` or the
//! environment), their signers, and which connection signs with which key.

use std::sync::Arc;

use hyper::header::HeaderValue;
use whitebit_auth::mac::HmacSha512Key;
use whitebit_client::NonceSource;
use zeroize::Zeroizing;

use super::args::{BenchArgs, Secret};
use crate::error::CliError;

/// Parses a keys file: `public_key,secret` a line; blank lines and `#` comments ignored. The
/// error names the line, never the secret.
pub(super) fn parse_keys_csv(text: &str) -> Result<Vec<(String, Secret)>, String> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let number = index + 1;
        let Some((public, secret)) = line.split_once(',') else {
            return Err(format!(
                "line {number}: expected `public_key,secret` (no comma found)"
            ));
        };
        let (public, secret) = (public.trim(), secret.trim());
        if public.is_empty() {
            return Err(format!("line {number}: the public key is empty"));
        }
        if secret.is_empty() {
            return Err(format!("line {number}: the secret is empty"));
        }
        if keys
            .iter()
            .any(|(known, _): &(String, Secret)| known == public)
        {
            return Err(format!("line {number}: key {public:?} is listed twice"));
        }
        keys.push((public.to_owned(), Secret(Zeroizing::new(secret.to_owned()))));
    }
    Ok(keys)
}

/// The keys from `--keys`, `--key`/`--secret` or the environment.
fn load_keys(args: &BenchArgs) -> Result<Vec<(String, Secret)>, CliError> {
    if let Some(path) = &args.keys {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let keys = parse_keys_csv(&text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        if keys.is_empty() {
            return Err(CliError::Usage(format!("{}: no keys", path.display())));
        }
        return Ok(keys);
    }
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let key = args.key.clone().or_else(|| from_env("WBAUTH_API_KEY"));
    let secret = args
        .secret
        .clone()
        .or_else(|| from_env("WBAUTH_API_SECRET").map(|s| Secret(Zeroizing::new(s))));
    match (key, secret) {
        (Some(key), Some(secret)) => Ok(vec![(key, secret)]),
        (Some(_), None) => Err(CliError::Usage(
            "no secret for the key: give --secret or set WBAUTH_API_SECRET".into(),
        )),
        (None, Some(_)) => Err(CliError::Usage(
            "a secret but no key: give --key or set WBAUTH_API_KEY".into(),
        )),
        (None, None) => Err(CliError::Usage(
            "no API key: give --keys FILE, --key and --secret, or set WBAUTH_API_KEY and \
             WBAUTH_API_SECRET (or --plain for unsigned requests)"
                .into(),
        )),
    }
}

/// One API key with its cached keyed HMAC state and its window-mode nonce source.
pub(super) struct Signer {
    pub(super) api_key: HeaderValue,
    pub(super) mac: HmacSha512Key,
    pub(super) nonces: NonceSource,
}

/// The signers of the keys from `--keys`, `--key`/`--secret` or the environment.
pub(super) fn load_signers(args: &BenchArgs) -> Result<Vec<Arc<Signer>>, CliError> {
    load_keys(args)?
        .into_iter()
        .map(|(public, secret)| {
            let api_key = HeaderValue::from_str(&public).map_err(|_| {
                CliError::Usage(format!("API key {public:?} cannot be sent in a header"))
            })?;
            Ok(Arc::new(Signer {
                api_key,
                mac: HmacSha512Key::new(secret.0.as_bytes()),
                nonces: NonceSource::new(),
            }))
        })
        .collect()
}

/// The keys (indexes into `keys` signers) connection `index` of `connections` takes in turn:
/// with more keys than connections, `index`, `index + connections`, … (every key used by
/// exactly one connection); otherwise the one key `index % keys` (none without keys).
pub(super) fn keys_of_connection(
    keys: usize,
    connections: usize,
    index: usize,
) -> impl Iterator<Item = usize> {
    let (start, step, count) = if keys > connections {
        (index, connections.max(1), keys)
    } else if keys == 0 {
        (0, 1, 0)
    } else {
        (index % keys, keys, index % keys + 1)
    };
    (start..count).step_by(step)
}
