//! What the doctor reports: a [`Finding`] per check, with its [`Severity`].

use std::fmt;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// A check that passed.
    Ok,
    /// Fine, but worth knowing.
    Note,
    /// The gateway would reject the request (or it leaks the secret).
    Problem,
}

impl Severity {
    /// A lowercase label: `ok`, `note` or `problem`.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Note => "note",
            Severity::Problem => "problem",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// A stable kebab-case identifier, one of [`code::ALL`](super::code::ALL).
    pub code: &'static str,
    /// A plain-English explanation with the concrete values involved.
    pub message: String,
}

impl Finding {
    /// Whether the gateway would reject the request because of this finding.
    #[must_use]
    pub fn is_problem(&self) -> bool {
        self.severity == Severity::Problem
    }

    /// For a problem the verifier refuses the request for, the row of `docs/errors.md` it
    /// answers with ([`code::row`](super::code::row)); `None` for anything else.
    #[must_use]
    pub fn row(&self) -> Option<&'static str> {
        if self.is_problem() {
            super::code::row(self.code)
        } else {
            None
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.severity, self.code, self.message)
    }
}
