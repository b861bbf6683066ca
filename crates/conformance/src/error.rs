//! The suite's one error type: what stops a run before or outside a case's verdict.

/// Why the suite could not run (a case that gets a wrong answer is a failed case, not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConformanceError {
    /// The target or an option is not usable; the text says what to change.
    #[error("{0}")]
    Usage(String),
    /// The target could not be reached or the connection broke.
    #[error("{0}")]
    Io(String),
    /// The target did not answer in HTTP/1.1.
    #[error("{0}")]
    Protocol(String),
}
