//! `wbauth`: the command-line tool of the WhiteBIT-style private API authentication scheme.

// Doc comments in this binary are clap's `--help` text, written for a terminal, not rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]

mod cmd;
mod credentials;
mod error;
mod input;
mod items;
mod listen;
mod logging;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::cmd::{Command, Context};
use crate::error::CliError;

/// Sign, send and diagnose WhiteBIT-style private API requests.
///
/// Credentials come from WBAUTH_API_KEY and WBAUTH_API_SECRET, or from a credentials file
/// ($XDG_CONFIG_HOME/wbauth/config.toml or ~/.config/wbauth/config.toml, mode 0600) with
/// api_key, api_secret and optionally base_url and a [fiat] section.
#[derive(Debug, Parser)]
#[command(name = "wbauth", version, propagate_version = true)]
struct Cli {
    /// Accepted before the command too (`wbauth --base-url URL call …`), as earlier releases
    /// had it; shown only in the help of the commands that use it.
    #[arg(long, value_name = "URL", hide = true)]
    base_url: Option<String>,
    /// The same for `--credentials`.
    #[arg(long, value_name = "PATH", hide = true)]
    credentials: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Context::new(cli.base_url, cli.credentials);
    match cli.command.run(&ctx).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Problems(n)) => {
            eprintln!("{n} problem(s) found");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            if let CliError::Client(whitebit_client::Error::Api(failure)) = &e
                && let Some(after) = failure.retry_after
            {
                eprintln!("retry after {} s", after.as_secs());
            }
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
