//! What the commands read besides their arguments: request bodies (inline, from a file or from
//! standard input) and lines of standard input (passwords, keys, codes).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Args;
use zeroize::Zeroizing;

use crate::error::CliError;

/// A request body given inline or from a file.
#[derive(Debug, Args)]
pub(crate) struct BodyArgs {
    /// The exact body (JSON text).
    #[arg(long, conflicts_with = "body_file")]
    pub(crate) body: Option<String>,
    /// Read the exact body from a file (`-` for standard input).
    #[arg(long, value_name = "PATH")]
    pub(crate) body_file: Option<PathBuf>,
}

impl BodyArgs {
    /// The body bytes, or `None` when neither option was given.
    pub(crate) fn read(&self) -> Result<Option<Vec<u8>>, CliError> {
        if let Some(body) = &self.body {
            return Ok(Some(body.clone().into_bytes()));
        }
        match &self.body_file {
            Some(path) => read_input(path).map(Some),
            None => Ok(None),
        }
    }
}

/// Reads a file, or standard input for `-`.
pub(crate) fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    let shown = path.display().to_string();
    if shown == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(stdin_error)?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|source| CliError::Io {
        path: shown,
        source,
    })
}

/// The next line of standard input without its line end, in a buffer wiped when dropped;
/// `None` at the end of the input.
pub(crate) fn read_stdin_line() -> std::io::Result<Option<Zeroizing<String>>> {
    let mut line = Zeroizing::new(String::new());
    if std::io::stdin().read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    )))
}

/// Standard input could not be read.
pub(crate) fn stdin_error(source: std::io::Error) -> CliError {
    CliError::Io {
        path: "standard input".into(),
        source,
    }
}
