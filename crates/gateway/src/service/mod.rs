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
//! `service/two_factor.rs`), so nothing done in the console holds up the operator. A key
//! can be created (or its secret rotated) only for an account whose 2FA is on, and only with a
//! current code.
//!
//! Key lifecycle (`docs/design-decisions.md` 16): active, disabled (by an operator), idle-deactivated
//! (unused for `keys.idle_days`; found in memory by the request path, persisted by
//! [`KeyService::sweep_idle`]). `enable` clears both flags and restarts the idle clock.
//! `rotate-secret` gives the key a new secret, shown once, and a fresh nonce state (a new
//! store id), so a client stuck after sending µs or ns nonces can start again.
//!
//! One file per role, each with its own `impl KeyService`: `accounts.rs`, `two_factor.rs`
//! (enrolment, code checks and both wrong-code locks), `keys.rs`, `partners.rs` (Fiat Gateway
//! partners), `passwords.rs` and `console.rs` (console passwords, one-time links, sign-in),
//! `audit.rs`, `validate.rs` (names, addresses, endpoint lists) and `views.rs` (what the admin
//! API and the console show); `error.rs` and `caller.rs` hold [`ManageError`] and `Caller`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use crate::clock::SharedClock;
use crate::config::SharedConfig;
use crate::service::throttle::{CodeLocks, SignInThrottle, Source};
use crate::state::keys::KeyCache;
use crate::state::partners::PartnerCache;
use wbauth_store::{KeyId, KeyStore};

mod accounts;
mod audit;
mod caller;
mod console;
mod error;
mod keys;
mod partners;
mod passwords;
pub(crate) mod reload;
#[cfg(test)]
mod tests;
pub(crate) mod throttle;
pub(crate) mod totp;
mod two_factor;
mod validate;
mod views;

pub(crate) use caller::Caller;
pub(crate) use error::ManageError;
pub use partners::{PartnerState, PartnerView};
use passwords::PASSWORD_JOBS;
pub(crate) use passwords::PasswordStamp;
pub(crate) use passwords::check_password;
use two_factor::{
    ACCOUNT_LOCK_MS, CodeAttempt, IP_LOCK_MS, IP_WINDOW_MS, MAX_IP_FAILURES, MAX_TRACKED_ACCOUNTS,
    MAX_TRACKED_IPS, MAX_WRONG_CODES,
};
use validate::check_account_name;
pub use views::{AccountView, AuditView, KeyState, KeyView, TwoFactor};
pub(crate) use views::{CreateKey, Enrolment, KeyWithSecret};

/// The management service. Cheap to share (`Arc`); every mutating operation is serialised, so
/// the store and the cache never disagree about the order of changes.
pub(crate) struct KeyService {
    store: Arc<dyn KeyStore>,
    cache: Arc<KeyCache>,
    /// Fiat Gateway partners in memory (kept current by `partners.rs`).
    partners: Arc<PartnerCache>,
    config: SharedConfig,
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

impl KeyService {
    /// A service over these stores, caches (keys and Fiat Gateway partners), configuration
    /// and clock.
    #[must_use]
    pub(crate) fn new(
        store: Arc<dyn KeyStore>,
        cache: Arc<KeyCache>,
        partners: Arc<PartnerCache>,
        config: SharedConfig,
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
    pub(crate) fn console_url(&self) -> Option<&str> {
        self.console_url.get().map(String::as_str)
    }

    /// Sets the web console's address as account holders reach it (`[console] public_url`,
    /// else its listener), the base of one-time links. The first call wins.
    pub(crate) fn set_console_url(&self, url: &str) {
        let _ = self.console_url.set(url.trim_end_matches('/').to_owned());
    }

    /// Now (Unix ms) on the service's clock.
    #[must_use]
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Whether the key store answers (for `/readyz`).
    pub(crate) async fn ready(&self) -> Result<(), ManageError> {
        self.store.health().await?;
        Ok(())
    }

    /// The key store.
    #[must_use]
    pub(crate) fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }
}
