//! [`ManageError`]: why an operation was refused, and the admin API's answer for it.

use wbauth_store::StoreError;

/// Why an operation was refused. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManageError {
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
pub(super) fn format_duration(ms: u64) -> String {
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
    pub(crate) fn status(&self) -> u16 {
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

    /// The JSON body the admin API answers with: `{"code":0,"message":"…"}`.
    #[must_use]
    pub(crate) fn body(&self) -> String {
        serde_json::json!({"code": 0, "message": self.public_message()}).to_string()
    }

    /// The message shown to the caller (store details stay in the server's log).
    #[must_use]
    pub(crate) fn public_message(&self) -> String {
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
    pub(crate) fn retry_after_s(&self) -> Option<u64> {
        match self {
            ManageError::Locked { remaining_ms, .. } | ManageError::Throttled { remaining_ms } => {
                Some(remaining_ms.div_ceil(1000).max(1))
            }
            ManageError::Store(StoreError::Io(_) | StoreError::Unavailable(_)) => Some(1),
            _ => None,
        }
    }
}
