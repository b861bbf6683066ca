//! One module per command, all the same shape: an `Args` struct (clap) and
//! `run(args, &Context) -> Result<(), CliError>`.

pub(crate) mod accounts;
pub(crate) mod admin_api;
pub(crate) mod bench;
pub(crate) mod bench_echo;
pub(crate) mod call;
pub(crate) mod doctor;
pub(crate) mod fiat_token;
pub(crate) mod jwt;
pub(crate) mod keys;
pub(crate) mod partners;
pub(crate) mod sandbox;
pub(crate) mod serve;
pub(crate) mod sign;

use std::io::Read as _;
use std::path::PathBuf;

use clap::Args;

use crate::credentials::Credentials;
use crate::error::CliError;

/// What every command gets: resolved credentials and target.
pub(crate) struct Context {
    /// Credentials and base URL.
    pub(crate) credentials: Credentials,
}

impl Context {
    /// A client for the configured server and key.
    pub(crate) fn client(
        &self,
        strict: bool,
        retries: u32,
    ) -> Result<whitebit_client::Client, CliError> {
        let (key, secret) = self.credentials.require_api()?;
        let mut builder = whitebit_client::Client::builder()
            .credentials(key, secret)
            .base_url(self.credentials.base_url().as_str())
            .retry(whitebit_client::RetryPolicy::new(retries));
        if strict {
            builder = builder.strict_nonces();
        }
        Ok(builder.build()?)
    }
}

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
pub(crate) fn read_input(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    let shown = path.display().to_string();
    if shown == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|source| CliError::Io {
                path: "standard input".into(),
                source,
            })?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|source| CliError::Io {
        path: shown,
        source,
    })
}

/// Prints JSON: pretty on a terminal, compact otherwise.
pub(crate) fn print_json(value: &serde_json::Value) {
    use std::io::IsTerminal as _;
    let text = if std::io::stdout().is_terminal() {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    println!("{}", text.unwrap_or_else(|_| value.to_string()));
}

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Writes `public_key,secret` lines (after a `# public_key,secret (what)` comment) to a new
/// private file (mode 0600; an existing file is replaced). `wbauth bench --keys` reads it.
pub(crate) fn write_keys_file(
    path: &std::path::Path,
    what: &str,
    pairs: &[(String, String)],
) -> Result<(), crate::error::CliError> {
    use std::io::Write as _;
    let io = |e: std::io::Error| crate::error::CliError::Config(format!("{}: {e}", path.display()));
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let file = whitebit_gateway::store::secret_file::create_new(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "# public_key,secret ({what})").map_err(io)?;
    for (key, secret) in pairs {
        writeln!(out, "{key},{secret}").map_err(io)?;
    }
    out.flush().map_err(io)
}
