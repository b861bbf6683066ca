//! The second factor: TOTP enrolment and confirmation, code checks and the wrong-code locks
//! (through the admin API per account, stored, and per source, in memory).
//!
//! Wrong codes in the console (at sign-in, once the password was right, and for every change)
//! count per account apart from the admin API's: 5 lock the account's codes in the console for
//! 15 minutes. Only someone with the password reaches that count.

use std::net::IpAddr;

use serde_json::json;
use zeroize::Zeroizing;

use super::{AccountView, Caller, Enrolment, KeyService, ManageError, lock, random_bytes};
use crate::service::throttle::{Counted, Source};
use crate::service::totp;
use wbauth_store::{AccountRecord, SecretBytes, SecretBytesEq, TotpRecord};

/// Wrong codes in a row that lock an account.
pub(super) const MAX_WRONG_CODES: u32 = 5;
/// How long a locked account stays locked.
pub(super) const ACCOUNT_LOCK_MS: u64 = 15 * 60 * 1000;
/// Wrong codes through the admin API from one source (within [`IP_WINDOW_MS`]) that lock the
/// source (an IPv4 address or an IPv6 /64).
pub(super) const MAX_IP_FAILURES: u32 = 20;
/// How long a locked address stays locked, and the window its failures are counted in.
pub(super) const IP_LOCK_MS: u64 = 15 * 60 * 1000;
/// The window in which an address's failures are counted.
pub(super) const IP_WINDOW_MS: u64 = IP_LOCK_MS;

/// The issuer shown by authenticator apps.
pub(super) const TOTP_ISSUER: &str = "wbauth";
/// TOTP secret length (160 bits, as RFC 4226 recommends).
pub(super) const TOTP_SECRET_BYTES: usize = 20;

/// Sources tracked for the admin API's per-source lock (the least recently failed go first).
pub(super) const MAX_TRACKED_IPS: usize = 10_000;
/// Accounts tracked for the console's wrong-code lock (the least recently failed go first).
pub(super) const MAX_TRACKED_ACCOUNTS: usize = 100_000;

impl KeyService {
    /// Starts (or restarts) TOTP enrolment: a new secret, pending until [`Self::confirm_2fa`].
    /// An account whose 2FA is on needs a current `code`, or `force` (audited).
    pub(crate) async fn enrol_2fa(
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
            let attempt = CodeAttempt::new(code, caller, now, "2fa.enrol");
            self.check_code(&mut account, attempt).await?;
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
    pub(crate) async fn confirm_2fa(
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
        let attempt = CodeAttempt::new(code, caller, now, "2fa.confirm");
        self.check_code(&mut account, attempt).await?;
        if let Some(t) = account.totp.as_mut() {
            t.confirmed = true;
        }
        self.store.update_account(account.clone()).await?;
        self.audit(caller, "account.2fa.confirm", json!({"account": name}))
            .await;
        Ok(self.account_view(&account, now))
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
    pub(super) async fn check_code(
        &self,
        account: &mut AccountRecord,
        attempt: CodeAttempt<'_>,
    ) -> Result<(), ManageError> {
        let CodeAttempt {
            code, caller, now, ..
        } = attempt;
        if caller.console {
            return self.check_console_code(account, attempt).await;
        }
        self.check_locks(account, caller, now)?;
        let Code::Wrong { reused } = match_code(account, code, now)? else {
            account.failed_attempts = 0;
            account.locked_until_ms = None;
            self.store.update_account(account.clone()).await?;
            return Ok(());
        };
        Err(self.count_failure(account, attempt, reused).await?)
    }

    /// Counts a wrong code through the admin API against `account` and the caller's source;
    /// returns the error to show (wrong code with attempts left, or locked).
    async fn count_failure(
        &self,
        account: &mut AccountRecord,
        attempt: CodeAttempt<'_>,
        reused: bool,
    ) -> Result<ManageError, ManageError> {
        let CodeAttempt {
            caller,
            now,
            purpose,
            ..
        } = attempt;
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

    pub(super) fn ip_locked_until(&self, ip: Option<IpAddr>, now: u64) -> Option<u64> {
        let ip = ip?;
        lock(&self.ip_failures).locked_until(&Source::of(Some(ip)), now)
    }

    /// Counts a wrong code from `ip`'s source; returns the lock's end when this one locks it.
    pub(super) fn record_ip_failure(&self, ip: Option<IpAddr>, now: u64) -> Option<u64> {
        let ip = ip?;
        match lock(&self.ip_failures).fail(Source::of(Some(ip)), now) {
            Counted::LockedUntil(until) => Some(until),
            Counted::Left(_) => None,
        }
    }

    /// Checks a current TOTP code of an account whose 2FA is on, before a console change
    /// (wrong codes count against the console's own lock, apart from the admin API's).
    pub(crate) async fn require_code(
        &self,
        name: &str,
        code: &str,
        caller: &Caller,
        purpose: &str,
    ) -> Result<(), ManageError> {
        let _write = self.write.lock().await;
        let now = self.now_ms();
        let mut account = self.account(name).await?;
        if !account.totp.as_ref().is_some_and(|t| t.confirmed) {
            return Err(ManageError::TwoFactorRequired {
                account: account.name,
            });
        }
        if code.trim().is_empty() {
            return Err(ManageError::CodeRequired(
                "A current code from the authenticator app is required for every change."
                    .to_owned(),
            ));
        }
        let attempt = CodeAttempt::new(code, caller, now, purpose);
        self.check_code(&mut account, attempt).await
    }

    /// Checks a TOTP code in the console (caller under the write lock): refused while the
    /// account's console codes are locked; a right one is stored as used and clears the count;
    /// a wrong one counts (5 lock the account's codes in the console for 15 minutes). The
    /// admin API's stored counter and lock are neither read nor changed.
    pub(super) async fn check_console_code(
        &self,
        account: &mut AccountRecord,
        attempt: CodeAttempt<'_>,
    ) -> Result<(), ManageError> {
        let CodeAttempt {
            code,
            caller,
            now,
            purpose,
        } = attempt;
        if let Some(until) = lock(&self.console_codes).locked_until(&account.id, now) {
            return Err(ManageError::Locked {
                subject: format!("Account {}", account.name),
                until_ms: until,
                remaining_ms: until - now,
            });
        }
        let Code::Wrong { reused } = match_code(account, code, now)? else {
            lock(&self.console_codes).clear(&account.id);
            self.store.update_account(account.clone()).await?;
            return Ok(());
        };
        let counted = lock(&self.console_codes).fail(account.id, now);
        let name = account.name.clone();
        match counted {
            Counted::Left(attempts_left) => {
                self.audit(
                    caller,
                    "account.code_rejected",
                    json!({"account": name, "purpose": purpose, "reused": reused,
                           "attempts_left": attempts_left, "via": "console"}),
                )
                .await;
                Err(ManageError::WrongCode {
                    reused,
                    attempts_left,
                })
            }
            Counted::LockedUntil(until) => {
                self.audit(
                    caller,
                    "account.lock",
                    json!({"account": name, "purpose": purpose, "until_ms": until,
                           "via": "console"}),
                )
                .await;
                Err(ManageError::Locked {
                    subject: format!("Account {name}"),
                    until_ms: until,
                    remaining_ms: ACCOUNT_LOCK_MS,
                })
            }
        }
    }
}

/// A TOTP code given for a change: by whom, when, and for what (`purpose`, as audited).
#[derive(Clone, Copy)]
pub(super) struct CodeAttempt<'a> {
    code: &'a str,
    caller: &'a Caller,
    now: u64,
    purpose: &'a str,
}

impl<'a> CodeAttempt<'a> {
    /// `code`, given by `caller` at `now` for `purpose`.
    pub(super) fn new(code: &'a str, caller: &'a Caller, now: u64, purpose: &'a str) -> Self {
        Self {
            code,
            caller,
            now,
            purpose,
        }
    }
}

/// A TOTP code matched against an account's secret.
enum Code {
    /// Right for a time step not used before (now recorded as used).
    Right,
    /// Wrong, or `reused`: right for a time step already used.
    Wrong { reused: bool },
}

/// Matches `code` against the account's TOTP secret (pending or confirmed) within ±1 step;
/// a right one's time step is recorded as used (in `account`, for the caller to store).
fn match_code(account: &mut AccountRecord, code: &str, now: u64) -> Result<Code, ManageError> {
    let Some(totp_state) = account.totp.as_mut() else {
        return Err(ManageError::TwoFactorRequired {
            account: account.name.clone(),
        });
    };
    let secret = totp_state.secret.0.expose();
    if let Some(step) = totp::verify(secret, code, now, totp_state.last_step) {
        totp_state.last_step = Some(step);
        return Ok(Code::Right);
    }
    Ok(Code::Wrong {
        reused: totp::verify(secret, code, now, None).is_some(),
    })
}
