//! The web console's side of [`KeyService`]: console passwords, one-time links, sign-in and the
//! console's own wrong-code lock.
//!
//! Passwords are argon2id hashes. Hashing and checking run on the blocking pool, at most
//! [`PASSWORD_JOBS`](super::PASSWORD_JOBS) at once, and never under the write lock every change takes.
//!
//! Sign-in: name, password and, once 2FA is on, a current code. Every failure — unknown name,
//! wrong password, missing or wrong code, a code while the account's console codes are locked
//! — gets one answer, and counts against the typed name from the caller's source (an IPv4
//! address or an IPv6 /64) and against the source, whether an account has that name or not:
//! after 5 failures the pair waits 30 s, doubled by each further failure up to 15 min; after 20
//! the source waits likewise for every name (see [`crate::throttle`]). A try during a wait is
//! refused unseen, with the time left. Another source, and the operator through the admin API,
//! are never held up.
//!
//! Wrong codes in the console (at sign-in, once the password was right, and for every change)
//! count per account apart from the admin API's: 5 lock the account's codes in the console for
//! 15 minutes. Only someone with the password reaches that count.
//!
//! A session records a stamp of the password it signed in with ([`PasswordStamp`]); setting or
//! resetting the password (admin API, CLI or one-time link, on any instance) changes it, and
//! the console ends every session whose stamp no longer matches.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::{ACCOUNT_LOCK_MS, AccountView, Caller, KeyService, ManageError, lock, random_bytes};
use crate::store::AccountRecord;
use crate::throttle::{Counted, Source, name_key};
use crate::totp;

/// Shortest console password (characters).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest console password (bytes).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A one-time console link (the URL carries the token: show it only to the operator).
pub struct ConsoleLink {
    /// `{console}/welcome/{token}`.
    pub url: Zeroizing<String>,
    /// Valid until (Unix ms).
    pub expires_ms: u64,
}

impl std::fmt::Debug for ConsoleLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleLink")
            .field("url", &"<redacted>")
            .field("expires_ms", &self.expires_ms)
            .finish()
    }
}

/// Which password a console session signed in with: the SHA-256 of the stored hash (which
/// changes, salt and all, whenever the password is set).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PasswordStamp([u8; 32]);

impl PasswordStamp {
    fn of(phc: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, phc.as_bytes());
        let mut stamp = [0u8; 32];
        stamp.copy_from_slice(digest.as_ref());
        Self(stamp)
    }

    fn matches(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }

    /// A stamp for tests of the session table.
    #[cfg(test)]
    pub(crate) fn for_tests(n: u8) -> Self {
        Self([n; 32])
    }
}

impl std::fmt::Debug for PasswordStamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordStamp(<redacted>)")
    }
}

/// A successful console sign-in.
#[derive(Debug)]
pub struct SignedIn {
    /// The account.
    pub account: AccountView,
    /// The password it signed in with (for [`KeyService::console_session_valid`]).
    pub stamp: PasswordStamp,
}

/// Checks a console password's length (before anything is created with it).
pub fn check_password(password: &str) -> Result<(), ManageError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ManageError::Invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ManageError::Invalid(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

impl KeyService {
    /// Sets (or replaces) an account's console password, stored as an argon2id hash. Every
    /// console session of the account ends (their stamp no longer matches).
    pub async fn set_password(
        &self,
        name: &str,
        password: &str,
        caller: &Caller,
    ) -> Result<(), ManageError> {
        check_password(password)?;
        let account = self.account(name).await?;
        let phc = self.hash_password(password).await?;
        let _write = self.write.lock().await;
        self.store
            .set_console_password(account.id, phc, self.now_ms())
            .await?;
        self.audit(caller, "account.password.set", json!({"account": name}))
            .await;
        Ok(())
    }

    /// A one-time link for an account's holder to set its console password (`wbauth accounts
    /// create` without a password, `wbauth accounts link`): a random 256-bit token of which
    /// only the SHA-256 is stored, valid for `[console] link_ttl_ms`, replacing any earlier
    /// link of the account. Refused when no web console is configured.
    pub async fn issue_console_link(
        &self,
        name: &str,
        caller: &Caller,
    ) -> Result<ConsoleLink, ManageError> {
        let Some(base) = self.console_url.get() else {
            return Err(ManageError::Conflict(
                "The web console is off: set [console] listen (or public_url) to hand out links, \
                 or set the password with wbauth accounts password NAME --password-stdin."
                    .to_owned(),
            ));
        };
        let account = self.account(name).await?;
        let token = Zeroizing::new(URL_SAFE_NO_PAD.encode(random_bytes(32)?.as_slice()));
        let now = self.now_ms();
        let expires_ms = now.saturating_add(self.config.console.link_ttl_ms);
        let _write = self.write.lock().await;
        self.store
            .set_console_link(account.id, link_digest(&token), expires_ms, now)
            .await?;
        self.audit(
            caller,
            "account.console_link.issue",
            json!({"account": name, "expires_ms": expires_ms}),
        )
        .await;
        Ok(ConsoleLink {
            url: Zeroizing::new(format!("{base}/welcome/{}", token.as_str())),
            expires_ms,
        })
    }

    /// The account a one-time console link is for, while it is valid.
    pub async fn console_link_account(&self, token: &str) -> Result<String, ManageError> {
        self.store
            .console_link(link_digest(token), self.now_ms())
            .await?
            .map(|(name, _)| name)
            .ok_or_else(link_not_valid)
    }

    /// Uses a one-time console link: sets the account's console password and deletes the link
    /// in one store transaction (a link works once, on any instance). The account's name.
    /// Every console session of the account ends.
    pub async fn redeem_console_link(
        &self,
        token: &str,
        password: &str,
        caller: &Caller,
    ) -> Result<String, ManageError> {
        let name = self.console_link_account(token).await?;
        check_password(password)?;
        let phc = self.hash_password(password).await?;
        let _write = self.write.lock().await;
        if self
            .store
            .redeem_console_link(link_digest(token), phc, self.now_ms())
            .await?
            .is_none()
        {
            return Err(link_not_valid());
        }
        self.audit(
            caller,
            "account.password.set",
            json!({"account": name, "via": "console_link"}),
        )
        .await;
        Ok(name)
    }

    /// Whether an account has a console password.
    pub async fn has_password(&self, name: &str) -> Result<bool, ManageError> {
        let account = self.account(name).await?;
        Ok(self.store.console_password(account.id).await?.is_some())
    }

    /// Whether a console session of `name` that signed in with `stamp` still stands: the
    /// account exists and its password is still the one it signed in with.
    pub async fn console_session_valid(
        &self,
        name: &str,
        stamp: &PasswordStamp,
    ) -> Result<bool, ManageError> {
        let account = match self.account(name).await {
            Ok(account) => account,
            Err(ManageError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let current = self.store.console_password(account.id).await?;
        Ok(current.is_some_and(|phc| PasswordStamp::of(&phc).matches(stamp)))
    }

    /// Console sign-in: name and password and, once 2FA is on, a current TOTP code (see the
    /// module's documentation for what failures do). Badly formed input (an empty field, an
    /// over-long password, a code that is not 6 digits) is refused before anything is counted.
    pub async fn sign_in(
        &self,
        name: &str,
        password: &str,
        code: Option<&str>,
        caller: &Caller,
    ) -> Result<SignedIn, ManageError> {
        if name.is_empty() || password.is_empty() {
            return Err(ManageError::Invalid(
                "Enter the account name and the password.".to_owned(),
            ));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(ManageError::Invalid(format!(
                "The password is too long: passwords have at most {MAX_PASSWORD_BYTES} bytes."
            )));
        }
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        if code.is_some_and(|c| c.len() != 6 || !c.bytes().all(|b| b.is_ascii_digit())) {
            return Err(ManageError::Invalid(
                "The two-factor code is the 6 digits your authenticator app shows; leave it \
                 empty if two-factor authentication is off."
                    .to_owned(),
            ));
        }
        let attempt = Attempt {
            name: name_key(name),
            source: Source::of(caller.ip),
        };
        // Counted as a failure before anything is checked (so parallel tries cannot slip past
        // the count); a success takes it back.
        let wait = {
            let mut throttle = lock(&self.sign_ins);
            let now = self.now_ms();
            match throttle.wait_ms(&attempt.name, attempt.source, now) {
                Some(wait) => return Err(ManageError::Throttled { remaining_ms: wait }),
                None => throttle.fail(&attempt.name, attempt.source, now),
            }
        };
        match self.check_sign_in(name, password, code, caller).await {
            Ok(signed_in) => {
                lock(&self.sign_ins).succeed(&attempt.name, attempt.source);
                self.audit(caller, "console.sign_in", json!({"account": name}))
                    .await;
                Ok(signed_in)
            }
            Err(Failure::Service(e)) => {
                // Not the caller's fault: the try does not count.
                lock(&self.sign_ins).undo(&attempt.name, attempt.source);
                Err(e)
            }
            Err(Failure::Refused { account, reason }) => {
                let mut detail = json!({"source": attempt.source.to_string(), "reason": reason});
                if let Some(account) = account {
                    detail["account"] = json!(account);
                }
                if let Some(wait) = wait {
                    detail["wait_ms"] = json!(wait);
                }
                // Not awaited: the store's time must not tell known names from unknown ones.
                self.audit_detached(caller, "console.sign_in_failed", detail);
                Err(ManageError::SignInFailed(
                    "Wrong name, password or code. Check them and try again.".to_owned(),
                ))
            }
        }
    }

    /// The checks of a sign-in, once it was counted.
    async fn check_sign_in(
        &self,
        name: &str,
        password: &str,
        code: Option<&str>,
        caller: &Caller,
    ) -> Result<SignedIn, Failure> {
        let account = match self.account(name).await {
            Ok(account) => Some(account),
            Err(ManageError::NotFound(_)) => None,
            Err(e) => return Err(Failure::Service(e)),
        };
        let stored = match &account {
            Some(account) => self
                .store
                .console_password(account.id)
                .await
                .map_err(|e| Failure::Service(e.into()))?,
            None => None,
        };
        // The same work for an unknown name, so response times do not tell names apart.
        let right = self
            .verify_password(stored.clone(), password)
            .await
            .map_err(Failure::Service)?;
        let (Some(account), Some(phc), true) = (account.as_ref(), stored, right) else {
            return Err(Failure::Refused {
                account: account.map(|a| a.name),
                reason: "name or password",
            });
        };
        let account = account.clone();
        let two_factor = account.totp.as_ref().is_some_and(|t| t.confirmed);
        let refused = |reason| Failure::Refused {
            account: Some(account.name.clone()),
            reason,
        };
        let account = if two_factor {
            let Some(code) = code else {
                return Err(refused("no code"));
            };
            let _write = self.write.lock().await;
            let now = self.now_ms();
            let mut current = self.account(name).await.map_err(Failure::Service)?;
            match self
                .check_console_code(&mut current, code, caller, now, "console.sign_in")
                .await
            {
                Ok(()) => current,
                Err(e @ (ManageError::Store(_) | ManageError::Internal(_))) => {
                    return Err(Failure::Service(e));
                }
                Err(ManageError::Locked { .. }) => return Err(refused("codes locked")),
                Err(_) => return Err(refused("code")),
            }
        } else {
            account
        };
        Ok(SignedIn {
            account: self.account_view(&account, self.now_ms()),
            stamp: PasswordStamp::of(&phc),
        })
    }

    /// Checks a current TOTP code of an account whose 2FA is on, before a console change
    /// (wrong codes count against the console's own lock, apart from the admin API's).
    pub async fn require_code(
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
        self.check_code(&mut account, code, caller, now, purpose)
            .await
    }

    /// Checks a TOTP code in the console (caller under the write lock): refused while the
    /// account's console codes are locked; a right one is stored as used and clears the count;
    /// a wrong one counts (5 lock the account's codes in the console for 15 minutes). The
    /// admin API's stored counter and lock are neither read nor changed.
    pub(super) async fn check_console_code(
        &self,
        account: &mut AccountRecord,
        code: &str,
        caller: &Caller,
        now: u64,
        purpose: &str,
    ) -> Result<(), ManageError> {
        if let Some(until) = lock(&self.console_codes).locked_until(&account.id, now) {
            return Err(ManageError::Locked {
                subject: format!("Account {}", account.name),
                until_ms: until,
                remaining_ms: until - now,
            });
        }
        let Some(totp_state) = account.totp.as_mut() else {
            return Err(ManageError::TwoFactorRequired {
                account: account.name.clone(),
            });
        };
        let secret = totp_state.secret.0.expose();
        if let Some(step) = totp::verify(secret, code, now, totp_state.last_step) {
            totp_state.last_step = Some(step);
            lock(&self.console_codes).clear(&account.id);
            self.store.update_account(account.clone()).await?;
            return Ok(());
        }
        let reused = totp::verify(secret, code, now, None).is_some();
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

    /// An argon2id hash of `password`, computed off the runtime.
    async fn hash_password(&self, password: &str) -> Result<String, ManageError> {
        let password = Zeroizing::new(password.to_owned());
        self.password_job(move || hash_password(&password)).await?
    }

    /// Whether `password` matches `phc` (none: checked against a dummy hash, never a match),
    /// computed off the runtime.
    async fn verify_password(
        &self,
        phc: Option<String>,
        password: &str,
    ) -> Result<bool, ManageError> {
        let password = Zeroizing::new(password.to_owned());
        self.password_job(move || {
            let right = verify_password(phc.as_deref().unwrap_or(dummy_hash()), &password);
            right && phc.is_some()
        })
        .await
    }

    /// Runs an argon2 job on the blocking pool, at most [`PASSWORD_JOBS`](super::PASSWORD_JOBS) at once (the others
    /// wait their turn). The permit goes with the job, so an abandoned request still counts
    /// until its job ends.
    async fn password_job<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ManageError> {
        let permit = Arc::clone(&self.password_jobs)
            .acquire_owned()
            .await
            .map_err(|_| ManageError::Internal("password checks have stopped".to_owned()))?;
        #[cfg(test)]
        let gate = self.password_gate.get().cloned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            #[cfg(test)]
            if let Some(gate) = gate {
                gate.pass();
            }
            job()
        })
        .await
        .map_err(|e| ManageError::Internal(format!("a password job failed: {e}")))
    }
}

/// One sign-in try, as the throttle counts it.
struct Attempt {
    name: crate::throttle::NameKey,
    source: Source,
}

/// Why a sign-in failed.
enum Failure {
    /// Refused: name, password or code (the caller is told none of this).
    Refused {
        /// The account, when the name is one (never the typed text otherwise: it may be a
        /// password typed in the wrong field).
        account: Option<String>,
        /// For the audit log.
        reason: &'static str,
    },
    /// The service failed (store, randomness): said as it is, not counted.
    Service(ManageError),
}

/// What the store keeps of a link's token: its SHA-256.
fn link_digest(token: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

fn link_not_valid() -> ManageError {
    ManageError::NotFound(
        "This link is not valid: it was used, replaced by a newer one or has expired. \
         Ask your operator for a new one."
            .to_owned(),
    )
}

/// An argon2id hash (PHC string) of a password, with a random 128-bit salt.
fn hash_password(password: &str) -> Result<String, ManageError> {
    use argon2::PasswordHasher as _;
    let salt = random_bytes(16)?;
    let salt = argon2::password_hash::SaltString::encode_b64(&salt)
        .map_err(|e| ManageError::Internal(format!("cannot encode a salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ManageError::Internal(format!("cannot hash a password: {e}")))
}

/// Whether `password` matches a stored PHC string (any unparsable hash: no).
fn verify_password(phc: &str, password: &str) -> bool {
    use argon2::PasswordVerifier as _;
    argon2::password_hash::PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash to check against when there is none, so a missing account costs the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("wbauth-console-no-such-account").unwrap_or_default())
}
