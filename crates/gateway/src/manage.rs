//! Key and account management: the one implementation of every operation on accounts, their
//! second factor and their API keys. The admin API calls it (and so does the CLI, through the
//! admin API); a web console will too. Every change goes to the durable store first and to the
//! in-memory [`KeyCache`] right after, so it is in force on the very next request; every change
//! is audited (stored, and printed on stderr as one JSON line `{"audit":…}`), never with a
//! secret in it.
//!
//! Second factor (`docs/design-decisions.md` 17): TOTP (RFC 6238) with ±1 step of skew, each time step
//! accepted once per account; through the admin API 5 wrong codes lock the account for 15
//! minutes (stored) and 20 wrong codes from one source (an IPv4 address or an IPv6 /64) lock
//! that source for 15 minutes (counted in memory); re-enrolling needs a current code or an
//! audited `force` by the operator. The web console counts its wrong codes apart (see
//! `manage/console.rs`), so nothing done in the console holds up the operator. A key
//! can be created (or its secret rotated) only for an account whose 2FA is on, and only with a
//! current code.
//!
//! Key lifecycle (`docs/design-decisions.md` 16): active, disabled (by an operator), idle-deactivated
//! (unused for `keys.idle_days`; found in memory by the request path, persisted by
//! [`KeyService::sweep_idle`]). `enable` clears both flags and restarts the idle clock.
//! `rotate-secret` gives the key a new secret, shown once, and a fresh nonce state (a new
//! store id), so a client stuck after sending µs or ns nonces can start again.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::json;
use whitebit_auth::encoding::hex_encode;
use zeroize::Zeroizing;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::ip::IpRule;
use crate::keys::{DAY_MS, KeyCache};
use crate::partners::PartnerCache;
use crate::pipeline::Gateway;
use crate::store::{
    AccountRecord, AuditEntry, KeyId, KeyRecord, KeyStore, KeyUpdate, NewKey, SecretBytes,
    SecretBytesEq, StoreError, TotpRecord,
};
use crate::throttle::{CodeLocks, Counted, SignInThrottle, Source};
use crate::totp;

mod console;

pub use console::{
    ConsoleLink, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, PasswordStamp, SignedIn, check_password,
};

/// Wrong codes in a row that lock an account.
pub const MAX_WRONG_CODES: u32 = 5;
/// How long a locked account stays locked.
pub const ACCOUNT_LOCK_MS: u64 = 15 * 60 * 1000;
/// Wrong codes through the admin API from one source (within [`IP_WINDOW_MS`]) that lock the
/// source (an IPv4 address or an IPv6 /64).
pub const MAX_IP_FAILURES: u32 = 20;
/// How long a locked address stays locked, and the window its failures are counted in.
pub const IP_LOCK_MS: u64 = 15 * 60 * 1000;
/// The window in which an address's failures are counted.
pub const IP_WINDOW_MS: u64 = IP_LOCK_MS;
/// Password hashes computed at once at most (argon2id: about 19 MiB and 25 ms each).
pub const PASSWORD_JOBS: usize = 2;
/// The issuer shown by authenticator apps.
pub const TOTP_ISSUER: &str = "wbauth";
/// TOTP secret length (160 bits, as RFC 4226 recommends).
pub const TOTP_SECRET_BYTES: usize = 20;
/// Public key length in random bytes (shown as hex).
pub const PUBLIC_KEY_BYTES: usize = 16;
/// API secret length in random bytes (shown as hex).
pub const SECRET_BYTES: usize = 32;
/// Longest account name.
pub const MAX_ACCOUNT_NAME: usize = 64;
/// Most audit entries one listing returns.
pub const MAX_AUDIT_LIMIT: u32 = 10_000;
/// Sources tracked for the admin API's per-source lock (the least recently failed go first).
const MAX_TRACKED_IPS: usize = 10_000;
/// Accounts tracked for the console's wrong-code lock (the least recently failed go first).
const MAX_TRACKED_ACCOUNTS: usize = 100_000;

/// Who asks for an operation: recorded in the audit log; the address counts wrong codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Recorded as the audit entry's actor (`admin@127.0.0.1`, `system`, …).
    pub actor: String,
    /// The address the request came from, when there is one.
    pub ip: Option<IpAddr>,
    /// An account holder in the web console (wrong codes count apart from the admin API's).
    pub console: bool,
}

impl Caller {
    /// A caller through the admin API (or the gateway itself).
    #[must_use]
    pub fn new(actor: impl Into<String>, ip: Option<IpAddr>) -> Self {
        Self {
            actor: actor.into(),
            ip,
            console: false,
        }
    }

    /// An account holder in the web console.
    #[must_use]
    pub fn console(actor: impl Into<String>, ip: Option<IpAddr>) -> Self {
        Self {
            console: true,
            ..Self::new(actor, ip)
        }
    }

    /// The gateway itself (background tasks).
    #[must_use]
    pub fn system() -> Self {
        Self::new("system", None)
    }
}

/// Why an operation was refused. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// No such account or key.
    #[error("{0}")]
    NotFound(String),
    /// The name or key exists already, or the state does not allow the operation.
    #[error("{0}")]
    Conflict(String),
    /// Bad input: unknown kind, bad address, endpoint outside the kind, too many addresses, …
    #[error("{0}")]
    Invalid(String),
    /// The operation needs a current TOTP code and none was given.
    #[error("{0}")]
    CodeRequired(String),
    /// The account has no confirmed second factor.
    #[error(
        "Account {account} has no two-factor authentication; enable it first (wbauth accounts 2fa {account})."
    )]
    TwoFactorRequired {
        /// The account.
        account: String,
    },
    /// The code is wrong, or was already used.
    #[error("{}", wrong_code_message(*reused, *attempts_left))]
    WrongCode {
        /// The code was right but its time step was already used.
        reused: bool,
        /// Wrong codes left before the account is locked.
        attempts_left: u32,
    },
    /// Console sign-in refused (name, password or code wrong: not said which).
    #[error("{0}")]
    SignInFailed(String),
    /// Console sign-in refused unseen: too many failures from this source (for this name, or
    /// for any); the same answer whether the name exists or not.
    #[error(
        "Too many failed sign-ins from your address; try again in {}.",
        format_duration(*remaining_ms)
    )]
    Throttled {
        /// Time left (ms).
        remaining_ms: u64,
    },
    /// Too many wrong codes: the account or the address is locked.
    #[error(
        "{subject} is locked after too many wrong codes; try again in {}.",
        format_duration(*remaining_ms)
    )]
    Locked {
        /// `Account NAME` or `Address IP`.
        subject: String,
        /// Locked until (Unix ms).
        until_ms: u64,
        /// Time left (ms).
        remaining_ms: u64,
    },
    /// The store failed.
    #[error("key store error: {0}")]
    Store(StoreError),
    /// Something else failed (no randomness).
    #[error("internal error: {0}")]
    Internal(String),
}

fn wrong_code_message(reused: bool, attempts_left: u32) -> String {
    let what = if reused {
        "This TOTP code was already used; wait for the next one."
    } else {
        "Wrong TOTP code."
    };
    let plural = if attempts_left == 1 { "" } else { "s" };
    format!("{what} {attempts_left} attempt{plural} left before the account is locked.")
}

/// `15 min`, `14 min 30 s`, `45 s` (rounded up to the second).
#[must_use]
pub fn format_duration(ms: u64) -> String {
    let seconds = ms.div_ceil(1000);
    let (minutes, rest) = (seconds / 60, seconds % 60);
    match (minutes, rest) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => ManageError::Conflict(message),
            other => ManageError::Store(other),
        }
    }
}

impl ManageError {
    /// The HTTP status of the admin API's answer.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            ManageError::NotFound(_) => 404,
            ManageError::Conflict(_) => 409,
            ManageError::Invalid(_) | ManageError::CodeRequired(_) => 400,
            ManageError::TwoFactorRequired { .. } | ManageError::WrongCode { .. } => 403,
            ManageError::SignInFailed(_) => 401,
            ManageError::Locked { .. } | ManageError::Throttled { .. } => 429,
            ManageError::Store(StoreError::Io(_) | StoreError::Unavailable(_)) => 503,
            ManageError::Store(_) | ManageError::Internal(_) => 500,
        }
    }

    /// The message shown to the caller (store details stay in the server's log).
    #[must_use]
    pub fn public_message(&self) -> String {
        match self {
            ManageError::Store(StoreError::Io(_) | StoreError::Unavailable(_)) => {
                "Service temporarily unavailable.".to_owned()
            }
            ManageError::Store(_) | ManageError::Internal(_) => {
                "Internal error; see the gateway's log.".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// Seconds to wait before trying again, for `Retry-After`.
    #[must_use]
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ManageError::Locked { remaining_ms, .. } | ManageError::Throttled { remaining_ms } => {
                Some(remaining_ms.div_ceil(1000).max(1))
            }
            ManageError::Store(StoreError::Io(_) | StoreError::Unavailable(_)) => Some(1),
            _ => None,
        }
    }

    /// The JSON body: `{"code":0,"message":"…"}`.
    #[must_use]
    pub fn body(&self) -> String {
        json!({"code": 0, "message": self.public_message()}).to_string()
    }
}

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
pub struct KeyWithSecret {
    /// The key.
    pub key: KeyView,
    secret: Zeroizing<String>,
}

impl KeyWithSecret {
    /// The API secret (hex). Show it once; never log it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
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
pub struct Enrolment {
    /// The account.
    pub account: String,
    otpauth_uri: Zeroizing<String>,
    secret_base32: Zeroizing<String>,
}

impl Enrolment {
    /// The `otpauth://totp/…` URI (it contains the secret).
    #[must_use]
    pub fn expose_uri(&self) -> &str {
        &self.otpauth_uri
    }

    /// The secret in base32, for typing into an app by hand.
    #[must_use]
    pub fn expose_secret_base32(&self) -> &str {
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

/// Most keys one `create_keys` call makes.
pub const MAX_KEY_BATCH: usize = 10_000;

/// A key to create.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// The owner.
    pub account: String,
    /// The kind (a configured `[[kind]]`).
    pub kind: String,
    /// A current TOTP code of the owner.
    #[serde(default)]
    pub code: Option<String>,
    /// Trusted addresses or CIDR blocks (empty: any).
    #[serde(default)]
    pub ips: Vec<String>,
    /// Endpoint allow-list inside the kind (empty: the whole kind).
    #[serde(default)]
    pub endpoints: Vec<String>,
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

/// The management service. Cheap to share (`Arc`); every mutating operation is serialised, so
/// the store and the cache never disagree about the order of changes.
pub struct KeyService {
    store: Arc<dyn KeyStore>,
    cache: Arc<KeyCache>,
    /// Fiat Gateway partners in memory (kept current by `manage_partners`).
    partners: Arc<PartnerCache>,
    config: Arc<Config>,
    clock: SharedClock,
    /// Serialises changes (and TOTP checks, so a code cannot be used twice concurrently).
    write: tokio::sync::Mutex<()>,
    /// The admin API's wrong codes per source (in memory, `docs/design-decisions.md` 17).
    ip_failures: Mutex<CodeLocks<Source>>,
    /// The console's failed sign-ins per (name, source) and per source.
    sign_ins: Mutex<SignInThrottle>,
    /// The console's wrong codes per account (apart from the admin API's, which are stored).
    console_codes: Mutex<CodeLocks<i64>>,
    /// Password hashing and checking: at most [`PASSWORD_JOBS`] at once, off the runtime.
    password_jobs: Arc<tokio::sync::Semaphore>,
    /// Keys whose idle deactivation is known to be stored.
    idle_stored: Mutex<HashSet<KeyId>>,
    /// Where account holders reach the web console (for one-time links), once it is known.
    console_url: std::sync::OnceLock<String>,
    /// Tests: where password checks wait.
    #[cfg(test)]
    password_gate: std::sync::OnceLock<Arc<tests::Gate>>,
}

impl std::fmt::Debug for KeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyService")
            .field("keys", &self.cache.len())
            .finish_non_exhaustive()
    }
}

/// Random bytes from the system generator, wiped when dropped.
fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>, ManageError> {
    let mut buf = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut buf).map_err(|e| ManageError::Internal(format!("no randomness: {e}")))?;
    Ok(buf)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Checks an account name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_account_name(name: &str) -> Result<(), ManageError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ACCOUNT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ManageError::Invalid(format!(
            "account name {name:?}: use 1 to {MAX_ACCOUNT_NAME} letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// Prints one audit line on stderr: `{"audit":{…}}`.
fn emit_audit_line(line: &serde_json::Value) {
    tracing::info!(target: "wbauth::audit", "{line}");
}

/// Appends an entry to the audit log and prints it (see [`KeyService::audit`]).
async fn write_audit(
    store: &dyn KeyStore,
    at_ms: u64,
    caller: &Caller,
    action: &str,
    detail: serde_json::Value,
) {
    let stored = store
        .audit(AuditEntry {
            at_ms,
            actor: caller.actor.clone(),
            action: action.to_owned(),
            detail: detail.to_string(),
        })
        .await;
    let mut line = json!({"audit": {
        "at_ms": at_ms,
        "actor": caller.actor,
        "action": action,
        "detail": detail,
    }});
    if let Err(e) = stored {
        line["audit_store_error"] = serde_json::Value::String(e.to_string());
    }
    emit_audit_line(&line);
}

impl KeyService {
    /// A service over these stores, caches (keys and Fiat Gateway partners), configuration
    /// and clock.
    #[must_use]
    pub fn new(
        store: Arc<dyn KeyStore>,
        cache: Arc<KeyCache>,
        partners: Arc<PartnerCache>,
        config: Arc<Config>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            cache,
            partners,
            config,
            clock,
            write: tokio::sync::Mutex::new(()),
            ip_failures: Mutex::new(CodeLocks::new(
                MAX_TRACKED_IPS,
                MAX_IP_FAILURES,
                IP_LOCK_MS,
                Some(IP_WINDOW_MS),
            )),
            sign_ins: Mutex::new(SignInThrottle::default()),
            console_codes: Mutex::new(CodeLocks::new(
                MAX_TRACKED_ACCOUNTS,
                MAX_WRONG_CODES,
                ACCOUNT_LOCK_MS,
                None,
            )),
            password_jobs: Arc::new(tokio::sync::Semaphore::new(PASSWORD_JOBS)),
            idle_stored: Mutex::new(HashSet::new()),
            console_url: std::sync::OnceLock::new(),
            #[cfg(test)]
            password_gate: std::sync::OnceLock::new(),
        }
    }

    /// The web console's address for account holders, when a console is configured.
    #[must_use]
    pub fn console_url(&self) -> Option<&str> {
        self.console_url.get().map(String::as_str)
    }

    /// Sets the web console's address as account holders reach it (`[console] public_url`,
    /// else its listener), the base of one-time links. The first call wins.
    pub fn set_console_url(&self, url: &str) {
        let _ = self.console_url.set(url.trim_end_matches('/').to_owned());
    }

    /// A service sharing the gateway's store, caches, configuration and clock, so every change
    /// is in force on the gateway's next request.
    #[must_use]
    pub fn for_gateway(gateway: &Gateway) -> Self {
        Self::new(
            gateway.key_store.clone(),
            gateway.keys.clone(),
            gateway.partners.clone(),
            gateway.config.clone(),
            gateway.clock.clone(),
        )
    }

    /// Now (Unix ms) on the service's clock.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The Fiat Gateway partners in memory (the same cache the gateway's request path reads).
    #[must_use]
    pub fn partners(&self) -> &Arc<PartnerCache> {
        &self.partners
    }

    /// The durable store (for the partner operations in `manage_partners`).
    pub(crate) fn key_store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// Serialises a change with every other change.
    pub(crate) async fn write_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write.lock().await
    }

    /// Audits a change (stored and printed on stderr; never a secret in `detail`).
    pub(crate) async fn audit_change(
        &self,
        caller: &Caller,
        action: &str,
        detail: serde_json::Value,
    ) {
        self.audit(caller, action, detail).await;
    }

    /// Whether the key store answers (for `/readyz`).
    pub async fn ready(&self) -> Result<(), ManageError> {
        self.store.health().await?;
        Ok(())
    }

    /// The key store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    // -----------------------------------------------------------------------------------------
    // Accounts and 2FA
    // -----------------------------------------------------------------------------------------

    /// Creates an account (2FA off).
    pub async fn create_account(
        &self,
        name: &str,
        caller: &Caller,
    ) -> Result<AccountView, ManageError> {
        check_account_name(name)?;
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let account = self.store.insert_account(name.to_owned(), now).await?;
        self.audit(caller, "account.create", json!({"account": name}))
            .await;
        Ok(self.account_view(&account, now))
    }

    /// Every account.
    pub async fn list_accounts(&self) -> Result<Vec<AccountView>, ManageError> {
        let now = self.now_ms();
        let accounts = self.store.list_accounts().await?;
        let mut keys: HashMap<i64, usize> = HashMap::new();
        for key in self.cache.snapshot() {
            *keys.entry(key.account_id).or_default() += 1;
        }
        Ok(accounts
            .iter()
            .map(|a| account_view(a, now, keys.get(&a.id).copied().unwrap_or(0)))
            .collect())
    }

    /// One account.
    pub async fn show_account(&self, name: &str) -> Result<AccountView, ManageError> {
        let account = self.account(name).await?;
        Ok(self.account_view(&account, self.now_ms()))
    }

    /// Starts (or restarts) TOTP enrolment: a new secret, pending until [`Self::confirm_2fa`].
    /// An account whose 2FA is on needs a current `code`, or `force` (audited).
    pub async fn enrol_2fa(
        &self,
        name: &str,
        code: Option<&str>,
        force: bool,
        caller: &Caller,
    ) -> Result<Enrolment, ManageError> {
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let mut account = self.account(name).await?;
        let was_on = account.totp.as_ref().is_some_and(|t| t.confirmed);
        if was_on && !force {
            let code = code.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                ManageError::CodeRequired(format!(
                    "Two-factor authentication is already on for account {name}: re-enrolling needs \
                     a current code (--current-code) or --force."
                ))
            })?;
            self.check_code(&mut account, code, caller, now, "2fa.enrol")
                .await?;
        }
        let secret = random_bytes(TOTP_SECRET_BYTES)?;
        account.totp = Some(TotpRecord {
            secret: SecretBytesEq(SecretBytes::new(secret.to_vec())),
            confirmed: false,
            last_step: None,
        });
        if force {
            account.failed_attempts = 0;
            account.locked_until_ms = None;
            lock(&self.console_codes).clear(&account.id);
        }
        if !self.store.update_account(account.clone()).await? {
            return Err(ManageError::NotFound(format!("No account named {name:?}.")));
        }
        self.audit(
            caller,
            "account.2fa.enrol",
            json!({"account": name, "reenrol": was_on, "forced": force}),
        )
        .await;
        Ok(Enrolment {
            account: name.to_owned(),
            otpauth_uri: Zeroizing::new(totp::otpauth_uri(TOTP_ISSUER, name, &secret)),
            secret_base32: Zeroizing::new(totp::base32_encode(&secret)),
        })
    }

    /// Confirms a pending enrolment with a code from the app: 2FA is on from then on.
    pub async fn confirm_2fa(
        &self,
        name: &str,
        code: &str,
        caller: &Caller,
    ) -> Result<AccountView, ManageError> {
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let mut account = self.account(name).await?;
        match &account.totp {
            None => {
                return Err(ManageError::Conflict(format!(
                    "Account {name} has no pending 2FA enrolment; start one with wbauth accounts 2fa {name}."
                )));
            }
            Some(t) if t.confirmed => {
                return Err(ManageError::Conflict(format!(
                    "Two-factor authentication is already on for account {name}."
                )));
            }
            Some(_) => {}
        }
        if code.trim().is_empty() {
            return Err(ManageError::CodeRequired(
                "A code from the authenticator app is required.".to_owned(),
            ));
        }
        self.check_code(&mut account, code, caller, now, "2fa.confirm")
            .await?;
        if let Some(t) = account.totp.as_mut() {
            t.confirmed = true;
        }
        self.store.update_account(account.clone()).await?;
        self.audit(caller, "account.2fa.confirm", json!({"account": name}))
            .await;
        Ok(self.account_view(&account, now))
    }

    // -----------------------------------------------------------------------------------------
    // Keys
    // -----------------------------------------------------------------------------------------

    /// Creates a key for an account whose 2FA is on, with a current TOTP code of it.
    pub async fn create_key(
        &self,
        request: &CreateKey,
        caller: &Caller,
    ) -> Result<KeyWithSecret, ManageError> {
        let mut created = self.create_keys(request, 1, caller).await?;
        created
            .pop()
            .ok_or_else(|| ManageError::Invalid("no key was created".to_owned()))
    }

    /// Creates `count` keys alike (1 to [`MAX_KEY_BATCH`]) with one TOTP code, in one store
    /// transaction: for operators provisioning many bots, and for load tests (window mode
    /// allows about 1,000 requests per second per key).
    pub async fn create_keys(
        &self,
        request: &CreateKey,
        count: usize,
        caller: &Caller,
    ) -> Result<Vec<KeyWithSecret>, ManageError> {
        if count == 0 || count > MAX_KEY_BATCH {
            return Err(ManageError::Invalid(format!(
                "count must be between 1 and {MAX_KEY_BATCH}"
            )));
        }
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let mut account = self.account(&request.account).await?;
        if !account.totp.as_ref().is_some_and(|t| t.confirmed) {
            return Err(ManageError::TwoFactorRequired {
                account: account.name,
            });
        }
        // Validate everything before the code is used up.
        let endpoints = self.check_endpoints(&request.kind, &request.endpoints)?;
        let ips = self.check_ips(&request.ips)?;
        let code = request
            .code
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                ManageError::CodeRequired(
                    "A current TOTP code of the account is required to create a key (--code)."
                        .to_owned(),
                )
            })?;
        self.check_code(&mut account, code, caller, now, "key.create")
            .await?;

        let mut secrets = Vec::with_capacity(count);
        let mut keys = Vec::with_capacity(count);
        for _ in 0..count {
            let public_key = hex_encode(&random_bytes(PUBLIC_KEY_BYTES)?);
            let secret = Zeroizing::new(hex_encode(&random_bytes(SECRET_BYTES)?));
            keys.push(NewKey {
                public_key,
                account_id: account.id,
                kind: request.kind.clone(),
                secret: SecretBytes::new(secret.as_bytes().to_vec()),
                ips: ips.clone(),
                endpoints: endpoints.clone(),
                created_ms: now,
            });
            secrets.push(secret);
        }
        let ids = self.store.insert_keys(keys).await?;
        let mut created = Vec::with_capacity(count);
        for (id, secret) in ids.into_iter().zip(secrets) {
            let record = self.stored_key(id).await?;
            self.cache.upsert(&record);
            if count == 1 {
                self.audit(
                    caller,
                    "key.create",
                    json!({
                        "public_key": record.public_key,
                        "account": record.account_name,
                        "kind": record.kind,
                        "ips": record.ips,
                        "endpoints": record.endpoints,
                    }),
                )
                .await;
            }
            created.push(KeyWithSecret {
                key: self.key_view(&record, now),
                secret,
            });
        }
        if count > 1 {
            self.audit(
                caller,
                "key.create",
                json!({
                    "count": count,
                    "account": account.name,
                    "kind": request.kind,
                    "ips": ips,
                    "endpoints": endpoints,
                    "first": created.first().map(|k| k.key.public_key.clone()),
                    "last": created.last().map(|k| k.key.public_key.clone()),
                }),
            )
            .await;
        }
        Ok(created)
    }

    /// Keys, all or one account's.
    pub async fn list_keys(&self, account: Option<&str>) -> Result<Vec<KeyView>, ManageError> {
        self.sweep_idle_quietly().await;
        if let Some(name) = account {
            self.account(name).await?;
        }
        let now = self.now_ms();
        let records = self.store.load_keys().await?;
        Ok(records
            .iter()
            .filter(|r| account.is_none_or(|name| r.account_name == name))
            .map(|r| self.key_view(r, now))
            .collect())
    }

    /// One key.
    pub async fn show_key(&self, public_key: &str) -> Result<KeyView, ManageError> {
        self.sweep_idle_quietly().await;
        let record = self.find_key(public_key).await?;
        Ok(self.key_view(&record, self.now_ms()))
    }

    /// Enables a key: clears the disabled and idle flags and restarts the idle clock.
    pub async fn enable_key(
        &self,
        public_key: &str,
        caller: &Caller,
    ) -> Result<KeyView, ManageError> {
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let record = self
            .update(
                public_key,
                KeyUpdate {
                    enabled: Some(true),
                    idle_deactivated: Some(false),
                    idle_anchor_ms: Some(now),
                    ..KeyUpdate::default()
                },
            )
            .await?;
        lock(&self.idle_stored).remove(&record.id);
        self.audit(caller, "key.enable", key_detail(&record)).await;
        Ok(self.key_view(&record, now))
    }

    /// Disables a key (refused with row 13 from the next request on).
    pub async fn disable_key(
        &self,
        public_key: &str,
        caller: &Caller,
    ) -> Result<KeyView, ManageError> {
        let _write = self.write.lock().await;
        let record = self
            .update(
                public_key,
                KeyUpdate {
                    enabled: Some(false),
                    ..KeyUpdate::default()
                },
            )
            .await?;
        self.audit(caller, "key.disable", key_detail(&record)).await;
        Ok(self.key_view(&record, self.now_ms()))
    }

    /// Deletes a key (unknown from the next request on: row 12).
    pub async fn delete_key(&self, public_key: &str, caller: &Caller) -> Result<(), ManageError> {
        let _write = self.write.lock().await;
        let record = self.find_key(public_key).await?;
        if !self.store.delete_key(record.id).await? {
            return Err(not_found_key(public_key));
        }
        self.cache.remove(&record.public_key);
        lock(&self.idle_stored).remove(&record.id);
        self.audit(caller, "key.delete", key_detail(&record)).await;
        Ok(())
    }

    /// Replaces a key's trusted addresses (empty: any address).
    pub async fn set_ips(
        &self,
        public_key: &str,
        ips: &[String],
        caller: &Caller,
    ) -> Result<KeyView, ManageError> {
        let ips = self.check_ips(ips)?;
        let _write = self.write.lock().await;
        let record = self
            .update(
                public_key,
                KeyUpdate {
                    ips: Some(ips),
                    ..KeyUpdate::default()
                },
            )
            .await?;
        self.audit(
            caller,
            "key.set_ips",
            json!({"public_key": record.public_key, "account": record.account_name, "ips": record.ips}),
        )
        .await;
        Ok(self.key_view(&record, self.now_ms()))
    }

    /// Replaces a key's endpoint allow-list (inside its kind; empty: the whole kind).
    pub async fn set_endpoints(
        &self,
        public_key: &str,
        endpoints: &[String],
        caller: &Caller,
    ) -> Result<KeyView, ManageError> {
        let _write = self.write.lock().await;
        let current = self.find_key(public_key).await?;
        let endpoints = self.check_endpoints(&current.kind, endpoints)?;
        let record = self
            .update(
                public_key,
                KeyUpdate {
                    endpoints: Some(endpoints),
                    ..KeyUpdate::default()
                },
            )
            .await?;
        self.audit(
            caller,
            "key.set_endpoints",
            json!({
                "public_key": record.public_key,
                "account": record.account_name,
                "endpoints": record.endpoints,
            }),
        )
        .await;
        Ok(self.key_view(&record, self.now_ms()))
    }

    /// Gives a key a new secret (shown once; the old one is refused from then on) and a fresh
    /// nonce state. Needs a current TOTP code of the owner.
    pub async fn rotate_secret(
        &self,
        public_key: &str,
        code: Option<&str>,
        caller: &Caller,
    ) -> Result<KeyWithSecret, ManageError> {
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let old = self.find_key(public_key).await?;
        let mut account = self.account(&old.account_name).await?;
        if !account.totp.as_ref().is_some_and(|t| t.confirmed) {
            return Err(ManageError::TwoFactorRequired {
                account: account.name,
            });
        }
        let code = code.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
            ManageError::CodeRequired(
                "A current TOTP code of the account is required to rotate a secret (--code)."
                    .to_owned(),
            )
        })?;
        self.check_code(&mut account, code, caller, now, "key.rotate_secret")
            .await?;

        let secret = Zeroizing::new(hex_encode(&random_bytes(SECRET_BYTES)?));
        // A new row (a new id, so a fresh nonce state: the high-water mark of the old id is
        // never lowered, `docs/design-decisions.md` 16) with the same public key, rules and state, swapped
        // in one store transaction.
        let replaced = self
            .store
            .replace_key(
                old.id,
                NewKey {
                    public_key: old.public_key.clone(),
                    account_id: old.account_id,
                    kind: old.kind.clone(),
                    secret: SecretBytes::new(secret.as_bytes().to_vec()),
                    ips: old.ips.clone(),
                    endpoints: old.endpoints.clone(),
                    created_ms: old.created_ms,
                },
                (old.enabled, old.idle_deactivated, old.idle_anchor_ms),
            )
            .await?;
        let Some(id) = replaced else {
            return Err(not_found_key(public_key));
        };
        let last_used = old
            .last_used_ms
            .into_iter()
            .chain(self.cache.get(public_key).and_then(|k| k.last_used_ms()))
            .max();
        if let Some(used) = last_used {
            self.store.touch_keys(vec![(id, used)]).await?;
        }
        let record = self.stored_key(id).await?;
        self.cache.upsert(&record);
        {
            let mut stored = lock(&self.idle_stored);
            if stored.remove(&old.id) {
                stored.insert(id);
            }
        }
        self.audit(caller, "key.rotate_secret", key_detail(&record))
            .await;
        Ok(KeyWithSecret {
            key: self.key_view(&record, now),
            secret,
        })
    }

    /// The most recent audit entries, newest first (`limit` capped at [`MAX_AUDIT_LIMIT`]).
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditView>, ManageError> {
        let entries = self
            .store
            .recent_audit(limit.clamp(1, MAX_AUDIT_LIMIT))
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| AuditView {
                at_ms: e.at_ms,
                actor: e.actor,
                action: e.action,
                detail: serde_json::from_str(&e.detail)
                    .unwrap_or(serde_json::Value::String(e.detail)),
            })
            .collect())
    }

    /// Persists the idle deactivation of every key found idle (unused for `keys.idle_days`)
    /// and not yet stored as such; audited as `key.idle_deactivate`. Returns how many.
    pub async fn sweep_idle(&self) -> Result<usize, ManageError> {
        let days = self.config.keys.idle_days;
        let now = self.now_ms();
        let candidates: Vec<_> = {
            let stored = lock(&self.idle_stored);
            self.cache
                .snapshot()
                .into_iter()
                .filter(|k| !stored.contains(&k.id) && k.is_idle(now, days))
                .collect()
        };
        let mut count = 0;
        for key in candidates {
            let _write = self.write.lock().await;
            // Re-check under the lock: an `enable` may have come first.
            let Some(current) = self.cache.get(&key.public_key) else {
                continue;
            };
            if current.id != key.id || !current.is_idle(self.now_ms(), days) {
                continue;
            }
            let Some(record) = self.store.get_key(key.id).await? else {
                continue;
            };
            if !record.idle_deactivated {
                self.store
                    .update_key(
                        key.id,
                        KeyUpdate {
                            idle_deactivated: Some(true),
                            ..KeyUpdate::default()
                        },
                    )
                    .await?;
                let record = self.stored_key(key.id).await?;
                self.cache.upsert(&record);
                self.audit(
                    &Caller::system(),
                    "key.idle_deactivate",
                    json!({
                        "public_key": record.public_key,
                        "account": record.account_name,
                        "idle_days": days,
                        "last_used_ms": record.last_used_ms.or(key.last_used_ms()),
                        "idle_anchor_ms": record.idle_anchor_ms,
                    }),
                )
                .await;
                count += 1;
            }
            lock(&self.idle_stored).insert(key.id);
        }
        Ok(count)
    }

    /// [`Self::sweep_idle`] before a listing; a failure only shows in the log (the listing
    /// still shows idle keys as idle).
    async fn sweep_idle_quietly(&self) {
        if let Err(e) = self.sweep_idle().await {
            eprintln!("wbauth: persisting idle keys failed: {e}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------------------------------

    async fn account(&self, name: &str) -> Result<AccountRecord, ManageError> {
        if check_account_name(name).is_err() {
            return Err(ManageError::NotFound(format!("No account named {name:?}.")));
        }
        self.store
            .get_account(name.to_owned())
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("No account named {name:?}.")))
    }

    async fn stored_key(&self, id: KeyId) -> Result<KeyRecord, ManageError> {
        self.store.get_key(id).await?.ok_or_else(|| {
            ManageError::Store(StoreError::Unavailable(format!(
                "API key id {id} vanished during a change"
            )))
        })
    }

    /// A key by public key: the cache names its id (every key is in memory); a key missing
    /// there is looked for in the store.
    async fn find_key(&self, public_key: &str) -> Result<KeyRecord, ManageError> {
        if public_key.is_empty()
            || public_key.len() > 256
            || public_key.bytes().any(|b| !(0x21..=0x7e).contains(&b))
        {
            return Err(not_found_key(public_key));
        }
        if let Some(cached) = self.cache.get(public_key)
            && let Some(record) = self.store.get_key(cached.id).await?
        {
            return Ok(record);
        }
        self.store
            .load_keys()
            .await?
            .into_iter()
            .find(|r| r.public_key == public_key)
            .ok_or_else(|| not_found_key(public_key))
    }

    /// Applies a change to the store, then to the cache.
    async fn update(&self, public_key: &str, update: KeyUpdate) -> Result<KeyRecord, ManageError> {
        let record = self.find_key(public_key).await?;
        if !self.store.update_key(record.id, update).await? {
            return Err(not_found_key(public_key));
        }
        let record = self.stored_key(record.id).await?;
        self.cache.upsert(&record);
        Ok(record)
    }

    /// The configured patterns of a kind.
    fn kind_paths(&self, kind: &str) -> Result<&[String], ManageError> {
        if let Some(k) = self.config.kinds.iter().find(|k| k.name == kind) {
            return Ok(&k.paths);
        }
        let names: Vec<&str> = self.config.kinds.iter().map(|k| k.name.as_str()).collect();
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
    pub fn check_endpoints(
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
    pub fn check_ips(&self, ips: &[String]) -> Result<Vec<String>, ManageError> {
        let mut out: Vec<String> = Vec::with_capacity(ips.len());
        for (i, text) in ips.iter().enumerate() {
            let rule = IpRule::parse(text)
                .map_err(|e| ManageError::Invalid(format!("trusted IP #{}: {e}", i + 1)))?;
            let canonical = rule.to_string();
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        let max = self.config.keys.max_ips;
        if out.len() > max {
            return Err(ManageError::Invalid(format!(
                "too many trusted IPs: {} given, a key holds at most {max} (keys.max_ips; a CIDR \
                 block counts as one entry)",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Refuses while the caller's source or the account is locked (the admin API's locks);
    /// clears an expired lock.
    fn check_locks(
        &self,
        account: &mut AccountRecord,
        caller: &Caller,
        now: u64,
    ) -> Result<(), ManageError> {
        if let Some(until) = self.ip_locked_until(caller.ip, now) {
            return Err(ManageError::Locked {
                subject: format!("Address {}", Source::of(caller.ip)),
                until_ms: until,
                remaining_ms: until - now,
            });
        }
        match account.locked_until_ms {
            Some(until) if until > now => {
                return Err(ManageError::Locked {
                    subject: format!("Account {}", account.name),
                    until_ms: until,
                    remaining_ms: until - now,
                });
            }
            Some(_) => {
                // The lock has expired: a fresh start.
                account.locked_until_ms = None;
                account.failed_attempts = 0;
            }
            None => {}
        }
        Ok(())
    }

    /// Checks a TOTP code of `account` (pending or confirmed secret), with the account and
    /// address locks; stores the outcome (last used step, wrong-code counter, lock). Console
    /// callers count against the console's own lock ([`Self::check_console_code`]).
    async fn check_code(
        &self,
        account: &mut AccountRecord,
        code: &str,
        caller: &Caller,
        now: u64,
        purpose: &str,
    ) -> Result<(), ManageError> {
        if caller.console {
            return self
                .check_console_code(account, code, caller, now, purpose)
                .await;
        }
        self.check_locks(account, caller, now)?;
        let Some(totp_state) = account.totp.as_mut() else {
            return Err(ManageError::TwoFactorRequired {
                account: account.name.clone(),
            });
        };
        let secret = totp_state.secret.0.expose();
        if let Some(step) = totp::verify(secret, code, now, totp_state.last_step) {
            totp_state.last_step = Some(step);
            account.failed_attempts = 0;
            account.locked_until_ms = None;
            self.store.update_account(account.clone()).await?;
            return Ok(());
        }
        let reused = totp::verify(secret, code, now, None).is_some();
        Err(self
            .count_failure(account, caller, now, purpose, reused)
            .await?)
    }

    /// Counts a wrong code through the admin API against `account` and the caller's source;
    /// returns the error to show (wrong code with attempts left, or locked).
    async fn count_failure(
        &self,
        account: &mut AccountRecord,
        caller: &Caller,
        now: u64,
        purpose: &str,
        reused: bool,
    ) -> Result<ManageError, ManageError> {
        account.failed_attempts = account.failed_attempts.saturating_add(1);
        let ip_lock = self.record_ip_failure(caller.ip, now);
        let name = account.name.clone();
        if account.failed_attempts >= MAX_WRONG_CODES {
            let until = now + ACCOUNT_LOCK_MS;
            account.failed_attempts = 0;
            account.locked_until_ms = Some(until);
            self.store.update_account(account.clone()).await?;
            self.audit(
                caller,
                "account.lock",
                json!({"account": name, "purpose": purpose, "until_ms": until}),
            )
            .await;
            return Ok(ManageError::Locked {
                subject: format!("Account {name}"),
                until_ms: until,
                remaining_ms: ACCOUNT_LOCK_MS,
            });
        }
        self.store.update_account(account.clone()).await?;
        let attempts_left = MAX_WRONG_CODES - account.failed_attempts;
        self.audit(
            caller,
            "account.code_rejected",
            json!({"account": name, "purpose": purpose, "reused": reused, "attempts_left": attempts_left}),
        )
        .await;
        if let Some(until) = ip_lock {
            let source = Source::of(caller.ip);
            self.audit(
                caller,
                "ip.lock",
                json!({"ip": source.to_string(), "until_ms": until}),
            )
            .await;
            return Ok(ManageError::Locked {
                subject: format!("Address {source}"),
                until_ms: until,
                remaining_ms: IP_LOCK_MS,
            });
        }
        Ok(ManageError::WrongCode {
            reused,
            attempts_left,
        })
    }

    fn ip_locked_until(&self, ip: Option<IpAddr>, now: u64) -> Option<u64> {
        let ip = ip?;
        lock(&self.ip_failures).locked_until(&Source::of(Some(ip)), now)
    }

    /// Counts a wrong code from `ip`'s source; returns the lock's end when this one locks it.
    fn record_ip_failure(&self, ip: Option<IpAddr>, now: u64) -> Option<u64> {
        let ip = ip?;
        match lock(&self.ip_failures).fail(Source::of(Some(ip)), now) {
            Counted::LockedUntil(until) => Some(until),
            Counted::Left(_) => None,
        }
    }

    /// An account with its number of keys (from the cache: every key is in memory).
    fn account_view(&self, account: &AccountRecord, now: u64) -> AccountView {
        let keys = self
            .cache
            .snapshot()
            .iter()
            .filter(|k| k.account_id == account.id)
            .count();
        account_view(account, now, keys)
    }

    fn key_view(&self, record: &KeyRecord, now: u64) -> KeyView {
        let days = self.config.keys.idle_days;
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

    /// Appends to the audit log and prints the line on stderr. A change that succeeded is not
    /// undone when the audit log cannot be written: the stderr line says so.
    async fn audit(&self, caller: &Caller, action: &str, detail: serde_json::Value) {
        write_audit(self.store.as_ref(), self.now_ms(), caller, action, detail).await;
    }

    /// [`Self::audit`] without waiting for the store (where waiting would let response times
    /// tell cases apart).
    fn audit_detached(&self, caller: &Caller, action: &str, detail: serde_json::Value) {
        let (store, at_ms) = (self.store.clone(), self.now_ms());
        let (caller, action) = (caller.clone(), action.to_owned());
        tokio::spawn(async move {
            write_audit(store.as_ref(), at_ms, &caller, &action, detail).await;
        });
    }
}

fn not_found_key(public_key: &str) -> ManageError {
    let shown: String = public_key.chars().take(80).collect();
    ManageError::NotFound(format!("No API key {shown:?}."))
}

fn account_view(account: &AccountRecord, now: u64, keys: usize) -> AccountView {
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

fn key_detail(record: &KeyRecord) -> serde_json::Value {
    json!({"public_key": record.public_key, "account": record.account_name, "kind": record.kind})
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::clock::{Clock as _, ManualClock};
    use crate::config::KindConfig;
    use crate::store::{SqliteKeyStore, load_or_create_master_key};

    const T0: u64 = 1_700_000_000_000;
    const STEP_MS: u64 = 30_000;

    struct Fixture {
        service: KeyService,
        cache: Arc<KeyCache>,
        store: Arc<SqliteKeyStore>,
        clock: ManualClock,
        _dir: tempfile::TempDir,
    }

    fn config() -> Config {
        Config {
            kinds: vec![
                KindConfig {
                    name: "trade".into(),
                    paths: vec!["/api/v4/trade-account/*".into(), "/api/v4/order/*".into()],
                },
                KindConfig {
                    name: "main".into(),
                    paths: vec!["/api/v4/main-account/balance".into()],
                },
            ],
            ..Config::default()
        }
    }

    async fn open(dir: &Path) -> Arc<SqliteKeyStore> {
        let master = load_or_create_master_key(dir, Some(&"ab".repeat(32))).expect("master key");
        Arc::new(
            SqliteKeyStore::open(&dir.join("keys.sqlite"), master)
                .await
                .expect("store"),
        )
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path()).await;
        let cache = Arc::new(KeyCache::default());
        let clock = ManualClock::at(T0);
        let service = KeyService::new(
            store.clone(),
            cache.clone(),
            Arc::new(PartnerCache::default()),
            Arc::new(config()),
            Arc::new(clock.clone()),
        );
        Fixture {
            service,
            cache,
            store,
            clock,
            _dir: dir,
        }
    }

    fn admin() -> Caller {
        Caller::new("admin@127.0.0.1", Some(IpAddr::from([127, 0, 0, 1])))
    }

    fn base32_decode(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut buffer, mut bits) = (0u32, 0u32);
        for c in text.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'2'..=b'7' => c - b'2' + 26,
                _ => panic!("not base32"),
            };
            buffer = (buffer << 5) | u32::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(((buffer >> bits) & 0xff) as u8);
            }
        }
        out
    }

    fn code(secret: &[u8], now: u64) -> String {
        format!("{:06}", totp::code_at_step(secret, totp::step_of(now)))
    }

    fn wrong_code(secret: &[u8], now: u64) -> String {
        let step = totp::step_of(now);
        let valid: Vec<u32> = (step - 1..=step + 1)
            .map(|s| totp::code_at_step(secret, s))
            .collect();
        let mut candidate = (valid[1] + 1) % 1_000_000;
        while valid.contains(&candidate) {
            candidate = (candidate + 1) % 1_000_000;
        }
        format!("{candidate:06}")
    }

    /// Creates an account with 2FA on; returns its TOTP secret. Leaves the clock one step on.
    async fn account_with_2fa(f: &Fixture, name: &str) -> Vec<u8> {
        f.service
            .create_account(name, &admin())
            .await
            .expect("account");
        let enrolment = f
            .service
            .enrol_2fa(name, None, false, &admin())
            .await
            .expect("enrol");
        let secret = base32_decode(enrolment.expose_secret_base32());
        assert!(
            enrolment
                .expose_uri()
                .contains(enrolment.expose_secret_base32())
        );
        let view = f
            .service
            .confirm_2fa(name, &code(&secret, f.clock.now_ms()), &admin())
            .await
            .expect("confirm");
        assert_eq!(view.two_factor, TwoFactor::On);
        f.clock.advance(STEP_MS);
        secret
    }

    fn create(account: &str, kind: &str, code: &str) -> CreateKey {
        CreateKey {
            account: account.into(),
            kind: kind.into(),
            code: Some(code.into()),
            ..CreateKey::default()
        }
    }

    #[tokio::test]
    async fn keys_need_2fa_and_a_fresh_code() {
        let f = fixture().await;
        f.service
            .create_account("alice", &admin())
            .await
            .expect("account");
        let e = f
            .service
            .create_key(&create("alice", "trade", "123456"), &admin())
            .await
            .expect_err("no 2FA");
        assert!(matches!(e, ManageError::TwoFactorRequired { .. }), "{e}");
        assert_eq!(e.status(), 403);

        let enrolment = f
            .service
            .enrol_2fa("alice", None, false, &admin())
            .await
            .expect("enrol");
        assert!(!format!("{enrolment:?}").contains(enrolment.expose_secret_base32()));
        let secret = base32_decode(enrolment.expose_secret_base32());
        assert_eq!(secret.len(), TOTP_SECRET_BYTES);
        // Pending is not on.
        let e = f
            .service
            .create_key(&create("alice", "trade", &code(&secret, T0)), &admin())
            .await
            .expect_err("pending");
        assert!(matches!(e, ManageError::TwoFactorRequired { .. }), "{e}");
        let now = f.clock.now_ms();
        let confirm_code = code(&secret, now);
        f.service
            .confirm_2fa("alice", &confirm_code, &admin())
            .await
            .expect("confirm");

        // The confirmation code cannot be used again.
        let e = f
            .service
            .create_key(&create("alice", "trade", &confirm_code), &admin())
            .await
            .expect_err("reused");
        assert!(
            matches!(
                e,
                ManageError::WrongCode {
                    reused: true,
                    attempts_left: 4
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.body(),
            r#"{"code":0,"message":"This TOTP code was already used; wait for the next one. 4 attempts left before the account is locked."}"#
        );
        let e = f
            .service
            .create_key(
                &create("alice", "trade", &wrong_code(&secret, now)),
                &admin(),
            )
            .await
            .expect_err("wrong");
        assert!(
            matches!(
                e,
                ManageError::WrongCode {
                    reused: false,
                    attempts_left: 3
                }
            ),
            "{e}"
        );
        let e = f
            .service
            .create_key(
                &CreateKey {
                    code: None,
                    ..create("alice", "trade", "")
                },
                &admin(),
            )
            .await
            .expect_err("no code");
        assert!(matches!(e, ManageError::CodeRequired(_)), "{e}");

        f.clock.advance(STEP_MS);
        let created = f
            .service
            .create_key(
                &CreateKey {
                    ips: vec!["127.0.0.1".into(), "2001:db8::/32".into()],
                    endpoints: vec!["/api/v4/order/*".into()],
                    ..create("alice", "trade", &code(&secret, f.clock.now_ms()))
                },
                &admin(),
            )
            .await
            .expect("created");
        assert_eq!(created.key.public_key.len(), PUBLIC_KEY_BYTES * 2);
        assert_eq!(created.expose_secret().len(), SECRET_BYTES * 2);
        assert!(!format!("{created:?}").contains(created.expose_secret()));
        assert_eq!(created.key.state, KeyState::Active);
        assert_eq!(created.key.ips, ["127.0.0.1", "2001:db8::/32"]);
        // In the cache, with the secret's HMAC state.
        let cached = f.cache.get(&created.key.public_key).expect("cached");
        assert_eq!(
            whitebit_auth::PayloadMac::sign(&cached.mac, b"x").to_hex(),
            whitebit_auth::mac::sign_payload(created.expose_secret().as_bytes(), b"x")
        );
        // The account's failed attempts were reset by the good code.
        let account = f.service.show_account("alice").await.expect("account");
        assert_eq!((account.failed_attempts, account.keys), (0, 1));
    }

    #[tokio::test]
    async fn inputs_are_validated_before_the_code_is_used() {
        let f = fixture().await;
        let secret = account_with_2fa(&f, "alice").await;
        let now = f.clock.now_ms();
        let good = code(&secret, now);
        let cases: Vec<(CreateKey, &str)> = vec![
            (
                create("alice", "nope", &good),
                "unknown key kind \"nope\" (configured kinds: trade, main)",
            ),
            (
                CreateKey {
                    endpoints: vec!["/api/v4/main-account/balance".into()],
                    ..create("alice", "trade", &good)
                },
                "endpoint \"/api/v4/main-account/balance\" is outside the \"trade\" kind, which opens: /api/v4/trade-account/*, /api/v4/order/*",
            ),
            (
                CreateKey {
                    endpoints: vec!["/api/v4/*".into()],
                    ..create("alice", "trade", &good)
                },
                "endpoint \"/api/v4/*\" is outside the \"trade\" kind, which opens: /api/v4/trade-account/*, /api/v4/order/*",
            ),
            (
                CreateKey {
                    endpoints: vec!["/api//v4/order/new".into()],
                    ..create("alice", "trade", &good)
                },
                "endpoint \"/api//v4/order/new\" is not normalised (write \"/api/v4/order/new\")",
            ),
            (
                CreateKey {
                    ips: vec!["10.0.0.1/8".into()],
                    ..create("alice", "trade", &good)
                },
                "trusted IP #1: \"10.0.0.1/8\": host bits are set below the /8 prefix (write 10.0.0.0/8)",
            ),
            (
                CreateKey {
                    ips: (0..51).map(|i| format!("10.0.{i}.0/24")).collect(),
                    ..create("alice", "trade", &good)
                },
                "too many trusted IPs: 51 given, a key holds at most 50 (keys.max_ips; a CIDR block counts as one entry)",
            ),
            (create("bob", "trade", &good), "No account named \"bob\"."),
        ];
        for (request, message) in cases {
            let e = f
                .service
                .create_key(&request, &admin())
                .await
                .expect_err(message);
            assert_eq!(e.to_string(), message);
            assert!(matches!(e.status(), 400 | 404), "{e}");
        }
        // The code is still good, and 50 entries (duplicates dropped) are fine.
        let created = f
            .service
            .create_key(
                &CreateKey {
                    ips: (0..50)
                        .map(|i| format!("10.0.{i}.0/24"))
                        .chain(["10.0.0.0/24".to_owned()])
                        .collect(),
                    endpoints: vec![
                        "/api/v4/order/new".into(),
                        "/api/v4/trade-account/*".into(),
                        "/api/v4/trade-account/x/*".into(),
                    ],
                    ..create("alice", "trade", &good)
                },
                &admin(),
            )
            .await
            .expect("created");
        assert_eq!(created.key.ips.len(), 50);
        let pk = created.key.public_key.clone();
        let e = f
            .service
            .set_ips(
                &pk,
                &(0..51)
                    .map(|i| format!("2001:db8:{i:x}::/48"))
                    .collect::<Vec<_>>(),
                &admin(),
            )
            .await
            .expect_err("51");
        assert!(e.to_string().starts_with("too many trusted IPs: 51"), "{e}");
        let e = f
            .service
            .set_endpoints(&pk, &["/api/v4/main-account/balance".into()], &admin())
            .await
            .expect_err("outside");
        assert_eq!(e.status(), 400);
        let view = f
            .service
            .set_endpoints(&pk, &["/api/v4/order/new".into()], &admin())
            .await
            .expect("narrowed");
        assert_eq!(view.endpoints, ["/api/v4/order/new"]);
        assert_eq!(
            f.cache.get(&pk).expect("cached").endpoints,
            ["/api/v4/order/new"]
        );
        let e = f.service.show_key("nope").await.expect_err("unknown");
        assert_eq!(e.body(), r#"{"code":0,"message":"No API key \"nope\"."}"#);
        assert_eq!(e.status(), 404);
    }

    #[tokio::test]
    async fn five_wrong_codes_lock_the_account_for_15_minutes() {
        let f = fixture().await;
        let secret = account_with_2fa(&f, "alice").await;
        let now = f.clock.now_ms();
        for left in (1..=4).rev() {
            let e = f
                .service
                .create_key(
                    &create("alice", "trade", &wrong_code(&secret, now)),
                    &admin(),
                )
                .await
                .expect_err("wrong");
            assert!(
                matches!(e, ManageError::WrongCode { attempts_left, .. } if attempts_left == left),
                "{e}"
            );
        }
        let e = f
            .service
            .create_key(
                &create("alice", "trade", &wrong_code(&secret, now)),
                &admin(),
            )
            .await
            .expect_err("locked");
        assert_eq!(e.status(), 429);
        assert_eq!(e.retry_after_s(), Some(900));
        assert_eq!(
            e.body(),
            r#"{"code":0,"message":"Account alice is locked after too many wrong codes; try again in 15 min."}"#
        );
        let account = f.service.show_account("alice").await.expect("account");
        assert_eq!(account.locked_until_ms, Some(now + ACCOUNT_LOCK_MS));
        // Even the right code is refused while locked.
        f.clock.advance(10 * 60 * 1000 + 500);
        let e = f
            .service
            .create_key(
                &create("alice", "trade", &code(&secret, f.clock.now_ms())),
                &admin(),
            )
            .await
            .expect_err("still locked");
        assert_eq!(
            e.to_string(),
            "Account alice is locked after too many wrong codes; try again in 5 min."
        );
        f.clock.advance(5 * 60 * 1000);
        f.service
            .create_key(
                &create("alice", "trade", &code(&secret, f.clock.now_ms())),
                &admin(),
            )
            .await
            .expect("unlocked");
        let actions: Vec<String> = f
            .service
            .audit_log(100)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(actions.contains(&"account.lock".to_owned()), "{actions:?}");
    }

    #[tokio::test]
    async fn twenty_wrong_codes_from_one_address_lock_it() {
        let f = fixture().await;
        let mut secrets = Vec::new();
        for name in ["a1", "a2", "a3", "a4", "a5"] {
            secrets.push((name, account_with_2fa(&f, name).await));
        }
        let now = f.clock.now_ms();
        let mut last = None;
        // 4 wrong codes per account (no account lock), 5 accounts: the 20th locks the address.
        for (name, secret) in &secrets {
            for _ in 0..4 {
                last = Some(
                    f.service
                        .create_key(&create(name, "trade", &wrong_code(secret, now)), &admin())
                        .await
                        .expect_err("wrong"),
                );
            }
        }
        let e = last.expect("an error");
        assert_eq!(
            e.to_string(),
            "Address 127.0.0.1 is locked after too many wrong codes; try again in 15 min."
        );
        // A right code from that address is refused; from another address it works.
        let (name, secret) = &secrets[0];
        let e = f
            .service
            .create_key(&create(name, "trade", &code(secret, now)), &admin())
            .await
            .expect_err("address locked");
        assert_eq!(e.status(), 429);
        let other = Caller::new("admin@10.0.0.1", Some(IpAddr::from([10, 0, 0, 1])));
        f.service
            .create_key(&create(name, "trade", &code(secret, now)), &other)
            .await
            .expect("other address");
        f.clock.advance(IP_LOCK_MS + 1);
        let (name, secret) = &secrets[1];
        f.service
            .create_key(
                &create(name, "trade", &code(secret, f.clock.now_ms())),
                &admin(),
            )
            .await
            .expect("address unlocked");
    }

    #[tokio::test]
    async fn reenrolment_needs_a_code_or_force() {
        let f = fixture().await;
        let secret = account_with_2fa(&f, "alice").await;
        let e = f
            .service
            .enrol_2fa("alice", None, false, &admin())
            .await
            .expect_err("needs code");
        assert!(matches!(e, ManageError::CodeRequired(_)), "{e}");
        let now = f.clock.now_ms();
        let e = f
            .service
            .enrol_2fa("alice", Some(&wrong_code(&secret, now)), false, &admin())
            .await
            .expect_err("wrong code");
        assert!(matches!(e, ManageError::WrongCode { .. }), "{e}");
        let again = f
            .service
            .enrol_2fa("alice", Some(&code(&secret, now)), false, &admin())
            .await
            .expect("re-enrolled");
        let new_secret = base32_decode(again.expose_secret_base32());
        assert_ne!(new_secret, secret);
        assert_eq!(
            f.service.show_account("alice").await.expect("a").two_factor,
            TwoFactor::Pending
        );
        f.service
            .enrol_2fa("alice", None, true, &admin())
            .await
            .expect("forced");
        let audit = f.service.audit_log(100).await.expect("audit");
        let forced = audit
            .iter()
            .find(|e| e.action == "account.2fa.enrol" && e.detail["forced"] == true)
            .expect("forced enrolment audited");
        assert_eq!(forced.detail["account"], "alice");
        let e = f
            .service
            .confirm_2fa("nobody", "123456", &admin())
            .await
            .expect_err("unknown");
        assert_eq!(e.status(), 404);
    }

    #[tokio::test]
    async fn lifecycle_enable_disable_idle_rotate_delete() {
        let f = fixture().await;
        let secret = account_with_2fa(&f, "alice").await;
        let created = f
            .service
            .create_key(
                &create("alice", "trade", &code(&secret, f.clock.now_ms())),
                &admin(),
            )
            .await
            .expect("created");
        let pk = created.key.public_key.clone();
        let first_id = f.cache.get(&pk).expect("cached").id;

        let view = f.service.disable_key(&pk, &admin()).await.expect("disable");
        assert_eq!(view.state, KeyState::Disabled);
        assert!(!f.cache.get(&pk).expect("cached").enabled);
        let view = f.service.enable_key(&pk, &admin()).await.expect("enable");
        assert_eq!(view.state, KeyState::Active);

        // Idle: found, persisted, audited; enable restarts the clock.
        f.clock.advance(15 * DAY_MS);
        assert_eq!(f.service.sweep_idle().await.expect("sweep"), 1);
        assert_eq!(f.service.sweep_idle().await.expect("sweep"), 0);
        let stored = f.store.get_key(first_id).await.expect("get").expect("key");
        assert!(stored.idle_deactivated);
        assert_eq!(
            f.service.show_key(&pk).await.expect("show").state,
            KeyState::Idle
        );
        let view = f.service.enable_key(&pk, &admin()).await.expect("enable");
        assert_eq!(
            (view.state, view.idle_anchor_ms),
            (KeyState::Active, f.clock.now_ms())
        );
        assert!(
            !f.cache
                .get(&pk)
                .expect("cached")
                .is_idle(f.clock.now_ms(), 14)
        );
        let stored = f.store.get_key(first_id).await.expect("get").expect("key");
        assert!(!stored.idle_deactivated && stored.enabled);

        // Rotation: a new secret and a new id (fresh nonce state), same rules.
        f.service
            .set_ips(&pk, &["127.0.0.1".into()], &admin())
            .await
            .expect("ips");
        f.clock.advance(STEP_MS);
        let e = f
            .service
            .rotate_secret(&pk, None, &admin())
            .await
            .expect_err("needs code");
        assert!(matches!(e, ManageError::CodeRequired(_)), "{e}");
        let rotated = f
            .service
            .rotate_secret(&pk, Some(&code(&secret, f.clock.now_ms())), &admin())
            .await
            .expect("rotated");
        assert_ne!(rotated.expose_secret(), created.expose_secret());
        assert_eq!(rotated.key.public_key, pk);
        assert_eq!(rotated.key.ips, ["127.0.0.1"]);
        let cached = f.cache.get(&pk).expect("cached");
        assert_ne!(cached.id, first_id);
        let new_sig = whitebit_auth::mac::sign_payload(rotated.expose_secret().as_bytes(), b"p");
        let old_sig = whitebit_auth::mac::sign_payload(created.expose_secret().as_bytes(), b"p");
        let computed = whitebit_auth::PayloadMac::sign(&cached.mac, b"p").to_hex();
        assert_eq!(computed, new_sig);
        assert_ne!(computed, old_sig);
        assert_eq!(
            f.service
                .list_keys(Some("alice"))
                .await
                .expect("list")
                .len(),
            1
        );

        f.service.delete_key(&pk, &admin()).await.expect("delete");
        assert!(f.cache.get(&pk).is_none());
        assert_eq!(
            f.service
                .delete_key(&pk, &admin())
                .await
                .expect_err("gone")
                .status(),
            404
        );
        assert!(f.service.list_keys(None).await.expect("list").is_empty());
        assert_eq!(
            f.service
                .list_keys(Some("zed"))
                .await
                .expect_err("no account")
                .status(),
            404
        );

        // No audit entry carries a secret.
        let audit = f.service.audit_log(1000).await.expect("audit");
        let text = serde_json::to_string(&audit).expect("json");
        for secret in [created.expose_secret(), rotated.expose_secret()] {
            assert!(!text.contains(secret));
        }
        assert!(!text.contains(&totp::base32_encode(&secret)));
        for action in [
            "account.create",
            "account.2fa.enrol",
            "account.2fa.confirm",
            "key.create",
            "key.disable",
            "key.enable",
            "key.idle_deactivate",
            "key.set_ips",
            "key.rotate_secret",
            "key.delete",
        ] {
            assert!(audit.iter().any(|e| e.action == action), "{action}: {text}");
        }
    }

    #[tokio::test]
    async fn accounts_are_unique_and_named_sensibly() {
        let f = fixture().await;
        f.service
            .create_account("alice", &admin())
            .await
            .expect("created");
        let e = f
            .service
            .create_account("alice", &admin())
            .await
            .expect_err("duplicate");
        assert_eq!(e.status(), 409);
        for bad in ["", "has space", "x\u{e9}", &"a".repeat(65)] {
            let e = f
                .service
                .create_account(bad, &admin())
                .await
                .expect_err(bad);
            assert_eq!(e.status(), 400, "{bad:?}");
        }
        let list = f.service.list_accounts().await.expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].two_factor, TwoFactor::Off);
        f.service.ready().await.expect("ready");
    }

    /// Where password checks wait in a test, counting who came and how many were inside at
    /// once. Every wait is bounded.
    #[derive(Default)]
    pub(super) struct Gate {
        state: Mutex<GateState>,
        changed: std::sync::Condvar,
    }

    #[derive(Default)]
    struct GateState {
        open: bool,
        entered: usize,
        inside: usize,
        most_inside: usize,
    }

    const GATE_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

    impl Gate {
        fn install(service: &KeyService) -> Arc<Self> {
            let gate = Arc::new(Self::default());
            assert!(service.password_gate.set(gate.clone()).is_ok());
            gate
        }

        /// A password check arrives: waits until the gate opens (at most [`GATE_BOUND`]).
        pub(super) fn pass(&self) {
            let mut state = lock(&self.state);
            state.entered += 1;
            state.inside += 1;
            state.most_inside = state.most_inside.max(state.inside);
            self.changed.notify_all();
            state = self
                .changed
                .wait_timeout_while(state, GATE_BOUND, |s| !s.open)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
            state.inside -= 1;
            self.changed.notify_all();
        }

        /// Waits (at most [`GATE_BOUND`]) until `ready` holds; whether it does.
        async fn wait_for(self: &Arc<Self>, ready: fn(&GateState) -> bool) -> bool {
            let gate = self.clone();
            tokio::task::spawn_blocking(move || {
                let state = lock(&gate.state);
                let (state, _) = gate
                    .changed
                    .wait_timeout_while(state, GATE_BOUND, |s| !ready(s))
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                ready(&state)
            })
            .await
            .expect("waiter")
        }

        fn open(&self) {
            lock(&self.state).open = true;
            self.changed.notify_all();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_checks_never_hold_the_write_lock() {
        let f = Arc::new(fixture().await);
        f.service
            .create_account("alice", &admin())
            .await
            .expect("account");
        f.service
            .set_password("alice", "correct horse battery", &admin())
            .await
            .expect("password");
        let gate = Gate::install(&f.service);
        let tries: Vec<_> = (1..=3u8)
            .map(|i| {
                let f = f.clone();
                tokio::spawn(async move {
                    let ip = IpAddr::from([192, 0, 2, i]);
                    let caller = Caller::console(format!("console:alice@{ip}"), Some(ip));
                    f.service
                        .sign_in("alice", "not the password", None, &caller)
                        .await
                })
            })
            .collect();
        assert!(gate.wait_for(|s| s.inside >= 1).await, "a check started");
        // While password checks run, a change (it takes the write lock) goes through.
        let operator = admin();
        let change = tokio::time::timeout(GATE_BOUND, f.service.create_account("bob", &operator));
        change
            .await
            .expect("a change waited for a password check")
            .expect("account");
        gate.open();
        for attempt in tries {
            let e = attempt.await.expect("task").expect_err("wrong password");
            assert_eq!(e.status(), 401, "{e}");
        }
        let state = lock(&gate.state);
        assert_eq!(state.entered, 3);
        assert!(state.most_inside <= PASSWORD_JOBS, "{}", state.most_inside);
    }

    #[tokio::test]
    async fn failure_maps_stay_bounded() {
        let f = fixture().await;
        let extra = 500;
        for i in 0..u32::try_from(MAX_TRACKED_IPS + extra).expect("small") {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            f.service.record_ip_failure(Some(ip), T0);
        }
        let tracked = lock(&f.service.ip_failures).len();
        assert!(tracked <= MAX_TRACKED_IPS, "{tracked} addresses tracked");
    }

    #[tokio::test]
    async fn wrong_codes_from_one_ipv6_network_count_together() {
        let f = fixture().await;
        let ip = |net: u16, host: u16| {
            Some(IpAddr::V6(std::net::Ipv6Addr::new(
                0x2001, 0xdb8, 1, net, 0, host, 0, 1,
            )))
        };
        // Every wrong code from another address of the same /64: the 20th locks the /64.
        for host in 1..u16::try_from(MAX_IP_FAILURES).expect("small") {
            assert_eq!(f.service.record_ip_failure(ip(2, host), T0), None);
        }
        assert_eq!(
            f.service.record_ip_failure(ip(2, 999), T0),
            Some(T0 + IP_LOCK_MS)
        );
        assert_eq!(
            f.service.ip_locked_until(ip(2, 4000), T0),
            Some(T0 + IP_LOCK_MS)
        );
        // The next /64 is not locked.
        assert_eq!(f.service.ip_locked_until(ip(3, 1), T0), None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(900_000), "15 min");
        assert_eq!(format_duration(899_001), "15 min");
        assert_eq!(format_duration(870_000), "14 min 30 s");
        assert_eq!(format_duration(1), "1 s");
        assert_eq!(
            ManageError::Store(StoreError::Unavailable("x".into())).body(),
            r#"{"code":0,"message":"Service temporarily unavailable."}"#
        );
    }
}
