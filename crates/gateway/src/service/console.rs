//! The web console's side of [`KeyService`]: one-time links and sign-in (console passwords
//! are in `passwords.rs`, the console's own wrong-code lock in `two_factor.rs`).
//!
//! Sign-in: name, password and, once 2FA is on, a current code. Every failure — unknown name,
//! wrong password, missing or wrong code, a code while the account's console codes are locked
//! — gets one answer, and counts against the typed name from the caller's source (an IPv4
//! address or an IPv6 /64) and against the source, whether an account has that name or not:
//! after 5 failures the pair waits 30 s, doubled by each further failure up to 15 min; after 20
//! the source waits likewise for every name (see [`crate::service::throttle`]). A try during a wait is
//! refused unseen, with the time left. Another source, and the operator through the admin API,
//! are never held up.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use zeroize::Zeroizing;

use super::passwords::MAX_PASSWORD_BYTES;
use super::{
    Caller, CodeAttempt, KeyService, ManageError, PasswordStamp, check_password, lock, random_bytes,
};
use crate::service::throttle::{Source, name_key};
use wbauth_store::NewConsoleLink;

/// A one-time console link (the URL carries the token: show it only to the operator).
pub(crate) struct ConsoleLink {
    /// `{console}/welcome/{token}`.
    pub(crate) url: Zeroizing<String>,
    /// Valid until (Unix ms).
    pub(crate) expires_ms: u64,
}

impl std::fmt::Debug for ConsoleLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleLink")
            .field("url", &"<redacted>")
            .field("expires_ms", &self.expires_ms)
            .finish()
    }
}

/// A successful console sign-in.
#[derive(Debug)]
pub(crate) struct SignedIn {
    /// The password it signed in with (for [`KeyService::console_session_valid`]).
    pub(crate) stamp: PasswordStamp,
}

impl KeyService {
    /// A one-time link for an account's holder to set its console password (`wbauth accounts
    /// create` without a password, `wbauth accounts link`): a random 256-bit token of which
    /// only the SHA-256 is stored, valid for `[console] link_ttl_ms`, replacing any earlier
    /// link of the account. Refused when no web console is configured.
    pub(crate) async fn issue_console_link(
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
        let expires_ms = now.saturating_add(self.config.current().console.link_ttl_ms);
        let _write = self.write.lock().await;
        let link = NewConsoleLink {
            account_id: account.id,
            token_sha256: link_digest(&token),
            expires_ms,
            created_ms: now,
        };
        self.store.set_console_link(link).await?;
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
    pub(crate) async fn console_link_account(&self, token: &str) -> Result<String, ManageError> {
        self.store
            .console_link(link_digest(token), self.now_ms())
            .await?
            .map(|(name, _)| name)
            .ok_or_else(link_not_valid)
    }

    /// Uses a one-time console link: sets the account's console password and deletes the link
    /// in one store transaction (a link works once, on any instance). The account's name.
    /// Every console session of the account ends.
    pub(crate) async fn redeem_console_link(
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

    /// Whether a console session of `name` that signed in with `stamp` still stands: the
    /// account exists and its password is still the one it signed in with.
    pub(crate) async fn console_session_valid(
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
    pub(crate) async fn sign_in(
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
        if two_factor {
            let Some(code) = code else {
                return Err(refused("no code"));
            };
            let _write = self.write.lock().await;
            let now = self.now_ms();
            let mut current = self.account(name).await.map_err(Failure::Service)?;
            let attempt = CodeAttempt::new(code, caller, now, "console.sign_in");
            match self.check_console_code(&mut current, attempt).await {
                Ok(()) => {}
                Err(e @ (ManageError::Store(_) | ManageError::Internal(_))) => {
                    return Err(Failure::Service(e));
                }
                Err(ManageError::Locked { .. }) => return Err(refused("codes locked")),
                Err(_) => return Err(refused("code")),
            }
        }
        Ok(SignedIn {
            stamp: PasswordStamp::of(&phc),
        })
    }
}

/// One sign-in try, as the throttle counts it.
struct Attempt {
    name: crate::service::throttle::NameKey,
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
