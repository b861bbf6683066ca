//! What the admin API and the console show of accounts, keys and the audit log (never a
//! secret but once, in [`KeyWithSecret`] and [`Enrolment`]), and what they send to create a
//! key ([`CreateKey`]).

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::KeyService;
use crate::state::keys::DAY_MS;
use wbauth_store::{AccountRecord, KeyRecord};

/// A key's state as a person reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyState {
    /// Accepted (subject to its addresses and endpoints).
    Active,
    /// Disabled by an operator.
    Disabled,
    /// Deactivated after the idle period.
    Idle,
}

/// A key as the admin API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    /// The public key (`X-TXC-APIKEY`).
    pub public_key: String,
    /// The owner's name.
    pub account: String,
    /// The kind.
    pub kind: String,
    /// Active, disabled or idle.
    pub state: KeyState,
    /// Not disabled by an operator.
    pub enabled: bool,
    /// Deactivated after the idle period (stored or found now).
    pub idle_deactivated: bool,
    /// Trusted addresses (empty: any).
    pub ips: Vec<String>,
    /// Endpoint allow-list (empty: the whole kind).
    pub endpoints: Vec<String>,
    /// Created at (Unix ms).
    pub created_ms: u64,
    /// Idle clock started at (creation or last `enable`, Unix ms).
    pub idle_anchor_ms: u64,
    /// Last accepted request (Unix ms).
    pub last_used_ms: Option<u64>,
}

/// An account's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TwoFactor {
    /// Not enrolled.
    Off,
    /// Enrolled, waiting for the first code.
    Pending,
    /// Confirmed: keys can be created.
    On,
}

/// An account as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Unique name.
    pub name: String,
    /// Created at (Unix ms).
    pub created_ms: u64,
    /// Second factor.
    pub two_factor: TwoFactor,
    /// Wrong codes in a row so far.
    pub failed_attempts: u32,
    /// Locked until (Unix ms), while locked.
    pub locked_until_ms: Option<u64>,
    /// Number of API keys.
    pub keys: usize,
}

/// One audit entry as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    /// When (Unix ms).
    pub at_ms: u64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what and how (JSON; never a secret).
    pub detail: serde_json::Value,
}

/// A key with its secret, shown once (creation and rotation). `Debug` hides the secret; the
/// secret is wiped from memory when dropped.
pub(crate) struct KeyWithSecret {
    pub(crate) key: KeyView,
    pub(super) secret: Zeroizing<String>,
}

impl KeyWithSecret {
    /// The API secret (hex). Show it once; never log it.
    #[must_use]
    pub(crate) fn expose_secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for KeyWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyWithSecret")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A new TOTP enrolment: what an authenticator app needs. `Debug` hides the secret.
pub(crate) struct Enrolment {
    pub(crate) account: String,
    pub(super) otpauth_uri: Zeroizing<String>,
    pub(super) secret_base32: Zeroizing<String>,
}

impl Enrolment {
    /// The `otpauth://totp/…` URI (it contains the secret).
    #[must_use]
    pub(crate) fn expose_uri(&self) -> &str {
        &self.otpauth_uri
    }

    /// The secret in base32, for typing into an app by hand.
    #[must_use]
    pub(crate) fn expose_secret_base32(&self) -> &str {
        &self.secret_base32
    }
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("account", &self.account)
            .field("otpauth_uri", &"<redacted>")
            .field("secret_base32", &"<redacted>")
            .finish()
    }
}

/// A key to create.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// The owner.
    pub(crate) account: String,
    /// The kind (a configured `[[kind]]`).
    pub(crate) kind: String,
    /// A current TOTP code of the owner.
    #[serde(default)]
    pub(crate) code: Option<String>,
    /// Trusted addresses or CIDR blocks (empty: any).
    #[serde(default)]
    pub(crate) ips: Vec<String>,
    /// Endpoint allow-list inside the kind (empty: the whole kind).
    #[serde(default)]
    pub(crate) endpoints: Vec<String>,
}

impl std::fmt::Debug for CreateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateKey")
            .field("account", &self.account)
            .field("kind", &self.kind)
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("ips", &self.ips)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl KeyService {
    /// An account with its number of keys (from the cache: every key is in memory).
    pub(super) fn account_view(&self, account: &AccountRecord, now: u64) -> AccountView {
        let keys = self
            .cache
            .snapshot()
            .iter()
            .filter(|k| k.account_id == account.id)
            .count();
        account_view(account, now, keys)
    }

    pub(super) fn key_view(&self, record: &KeyRecord, now: u64) -> KeyView {
        let days = self.config.current().keys.idle_days;
        let cached = self
            .cache
            .get(&record.public_key)
            .filter(|k| k.id == record.id);
        let last_used_ms = record
            .last_used_ms
            .into_iter()
            .chain(cached.as_ref().and_then(|k| k.last_used_ms()))
            .max();
        let idle = record.idle_deactivated
            || match &cached {
                Some(k) => k.is_idle(now, days),
                None => {
                    let since = last_used_ms.unwrap_or(0).max(record.idle_anchor_ms);
                    now.saturating_sub(since) > days.saturating_mul(DAY_MS)
                }
            };
        KeyView {
            public_key: record.public_key.clone(),
            account: record.account_name.clone(),
            kind: record.kind.clone(),
            state: if !record.enabled {
                KeyState::Disabled
            } else if idle {
                KeyState::Idle
            } else {
                KeyState::Active
            },
            enabled: record.enabled,
            idle_deactivated: idle,
            ips: record.ips.clone(),
            endpoints: record.endpoints.clone(),
            created_ms: record.created_ms,
            idle_anchor_ms: record.idle_anchor_ms,
            last_used_ms,
        }
    }
}

pub(super) fn account_view(account: &AccountRecord, now: u64, keys: usize) -> AccountView {
    AccountView {
        name: account.name.clone(),
        created_ms: account.created_ms,
        two_factor: match &account.totp {
            None => TwoFactor::Off,
            Some(t) if t.confirmed => TwoFactor::On,
            Some(_) => TwoFactor::Pending,
        },
        failed_attempts: account.failed_attempts,
        locked_until_ms: account.locked_until_ms.filter(|until| *until > now),
        keys,
    }
}
