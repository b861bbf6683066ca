//! The CLI's one error type and its exit codes.

use std::process::ExitCode;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad arguments or input (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Missing or unsafe configuration (exit code 2).
    #[error("{0}")]
    Config(String),
    /// The server refused the request, or it could not be sent (exit code 1).
    #[error(transparent)]
    Client(#[from] whitebit_client::Error),
    /// A file could not be read (exit code 2).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The doctor found problems (exit code 1; the findings were printed).
    #[error("{0} problem(s) found")]
    Problems(usize),
    /// Checks ran and some failed; what failed was printed (exit code 1).
    #[error("{0}")]
    Failed(String),
    /// `wbauth bench` could not reach its target at all (exit code 1).
    #[error("{0}")]
    Unreachable(String),
    /// The gateway's admin API refused the request or could not be reached (exit code 1).
    #[error("{message}")]
    Admin {
        /// The HTTP status (0: no answer).
        status: u16,
        /// The gateway's message.
        message: String,
    },
}

impl CliError {
    /// The process exit code.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Client(_)
            | CliError::Problems(_)
            | CliError::Admin { .. }
            | CliError::Failed(_)
            | CliError::Unreachable(_) => ExitCode::from(1),
            CliError::Usage(_) | CliError::Config(_) | CliError::Io { .. } => ExitCode::from(2),
        }
    }
}
