//! Console passwords: setting them (hashed with argon2id), checking them, and the stamp a
//! console session keeps of the one it signed in with.
//!
//! Passwords are argon2id hashes. Hashing and checking run on the blocking pool, at most
//! [`PASSWORD_JOBS`] at once, and never under the write lock every change takes.
//!
//! A session records a stamp of the password it signed in with ([`PasswordStamp`]); setting or
//! resetting the password (admin API, CLI or one-time link, on any instance) changes it, and
//! the console ends every session whose stamp no longer matches.

use std::sync::Arc;

use serde_json::json;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::{Caller, KeyService, ManageError, random_bytes};

/// Password hashes computed at once at most (argon2id: about 19 MiB and 25 ms each).
pub(super) const PASSWORD_JOBS: usize = 2;

/// Shortest console password (characters).
const MIN_PASSWORD_CHARS: usize = 10;
/// Longest console password (bytes).
pub(super) const MAX_PASSWORD_BYTES: usize = 1024;

/// Which password a console session signed in with: the SHA-256 of the stored hash (which
/// changes, salt and all, whenever the password is set).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PasswordStamp([u8; 32]);

impl PasswordStamp {
    pub(super) fn of(phc: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, phc.as_bytes());
        let mut stamp = [0u8; 32];
        stamp.copy_from_slice(digest.as_ref());
        Self(stamp)
    }

    pub(super) fn matches(&self, other: &Self) -> bool {
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

/// Checks a console password's length (before anything is created with it).
pub(crate) fn check_password(password: &str) -> Result<(), ManageError> {
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
    pub(crate) async fn set_password(
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

    /// An argon2id hash of `password`, computed off the runtime.
    pub(super) async fn hash_password(&self, password: &str) -> Result<String, ManageError> {
        let password = Zeroizing::new(password.to_owned());
        self.password_job(move || hash_password(&password)).await?
    }

    /// Whether `password` matches `phc` (none: checked against a dummy hash, never a match),
    /// computed off the runtime.
    pub(super) async fn verify_password(
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

    /// Runs an argon2 job on the blocking pool, at most [`PASSWORD_JOBS`] at once (the others
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
