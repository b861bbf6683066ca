//! Checks of operator input: account names, a kind's endpoint allow-list, trusted addresses.

use super::{KeyService, ManageError};
use crate::ip::IpRule;

/// Longest account name.
const MAX_ACCOUNT_NAME: usize = 64;

/// Checks an account name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub(super) fn check_account_name(name: &str) -> Result<(), ManageError> {
    check_name("account", name, MAX_ACCOUNT_NAME)
}

/// Checks the name of a `what` (an account, a partner): 1 to `max` characters of letters,
/// digits, `.`, `_`, `-`, `@`.
pub(super) fn check_name(what: &str, name: &str, max: usize) -> Result<(), ManageError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ManageError::Invalid(format!(
            "{what} name {name:?}: use 1 to {max} letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// Whether `text` could be a public key or an Auth Key (1 to 256 visible ASCII characters):
/// anything else is not looked for.
pub(super) fn could_be_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 256 && text.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

impl KeyService {
    /// The configured patterns of a kind.
    fn kind_paths(&self, kind: &str) -> Result<Vec<String>, ManageError> {
        let config = self.config.current();
        if let Some(k) = config.kinds.iter().find(|k| k.name == kind) {
            return Ok(k.paths.clone());
        }
        let names: Vec<&str> = config.kinds.iter().map(|k| k.name.as_str()).collect();
        Err(ManageError::Invalid(if names.is_empty() {
            format!("unknown key kind {kind:?}: no kinds are configured (add [[kind]] sections)")
        } else {
            format!(
                "unknown key kind {kind:?} (configured kinds: {})",
                names.join(", ")
            )
        }))
    }

    /// Validates an endpoint allow-list against a kind: each entry a valid pattern inside the
    /// kind's group. Duplicates are dropped.
    pub(crate) fn check_endpoints(
        &self,
        kind: &str,
        endpoints: &[String],
    ) -> Result<Vec<String>, ManageError> {
        let patterns = self.kind_paths(kind)?;
        let mut out: Vec<String> = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let endpoint = endpoint.trim();
            whitebit_auth::path::check_pattern(endpoint)
                .map_err(|e| ManageError::Invalid(format!("endpoint {e}")))?;
            if !patterns
                .iter()
                .any(|p| whitebit_auth::path::pattern_within(endpoint, p))
            {
                return Err(ManageError::Invalid(format!(
                    "endpoint {endpoint:?} is outside the {kind:?} kind, which opens: {}",
                    patterns.join(", ")
                )));
            }
            if !out.iter().any(|e| e == endpoint) {
                out.push(endpoint.to_owned());
            }
        }
        Ok(out)
    }

    /// Validates trusted addresses (v4/v6 addresses or CIDR blocks, each one entry); at most
    /// `keys.max_ips`. Returns them in canonical form, duplicates dropped.
    pub(crate) fn check_ips(&self, ips: &[String]) -> Result<Vec<String>, ManageError> {
        let mut out: Vec<String> = Vec::with_capacity(ips.len());
        for (i, text) in ips.iter().enumerate() {
            let rule = IpRule::parse(text)
                .map_err(|e| ManageError::Invalid(format!("trusted IP #{}: {e}", i + 1)))?;
            let canonical = rule.to_string();
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        let max = self.config.current().keys.max_ips;
        if out.len() > max {
            return Err(ManageError::Invalid(format!(
                "too many trusted IPs: {} given, a key holds at most {max} (keys.max_ips; a CIDR \
                 block counts as one entry)",
                out.len()
            )));
        }
        Ok(out)
    }
}
