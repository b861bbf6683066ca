//! `wbauth`: the command-line tool of the WhiteBIT-style private API authentication scheme.

// Doc comments in this binary are clap's `--help` text, written for a terminal, not rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]

mod cmd;
mod credentials;
mod error;
mod items;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd::Context;
use crate::error::CliError;

/// Sign, send and diagnose WhiteBIT-style private API requests.
///
/// Credentials come from WBAUTH_API_KEY and WBAUTH_API_SECRET, or from a credentials file
/// ($XDG_CONFIG_HOME/wbauth/config.toml or ~/.config/wbauth/config.toml, mode 0600) with
/// api_key, api_secret and optionally base_url and a [fiat] section.
#[derive(Debug, Parser)]
#[command(name = "wbauth", version, propagate_version = true)]
struct Cli {
    /// The server to talk to (default: https://whitebit.com).
    #[arg(long, global = true, value_name = "URL")]
    base_url: Option<String>,
    /// Credentials file to use instead of the default one.
    #[arg(long, global = true, value_name = "PATH")]
    credentials: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign a request and send it; print the JSON answer.
    Call(cmd::call::CallArgs),
    /// Print the X-TXC-* headers for an exact body.
    Sign(cmd::sign::SignArgs),
    /// Explain what is wrong with a captured request.
    Doctor(cmd::doctor::DoctorArgs),
    /// Build a Fiat Gateway partner token (HS256, millisecond claims).
    FiatToken(cmd::fiat_token::FiatTokenArgs),
    /// Fetch a short-lived token from POST /api/v4/jwt.
    Jwt(cmd::jwt::JwtArgs),
    /// Run the gateway from a configuration file.
    Serve(cmd::serve::ServeArgs),
    /// Run the offline sandbox (one demo key, built-in answers).
    Sandbox(cmd::sandbox::SandboxArgs),
    /// Manage accounts and their 2FA on a running gateway (through its admin API).
    Accounts(cmd::accounts::AccountsArgs),
    /// Manage API keys on a running gateway (through its admin API).
    Keys(cmd::keys::KeysArgs),
    /// Manage Fiat Gateway partners (Auth Key, Enc Key) on a running gateway (through its
    /// admin API).
    Partners(cmd::partners::PartnersArgs),
    /// Load-test a server with requests signed during the run; report throughput, latency
    /// and the generator's own CPU use.
    Bench(cmd::bench::BenchArgs),
    /// Run a minimal upstream answering every request 200 {"ok":true} (the echo limit).
    BenchEcho(cmd::bench_echo::BenchEchoArgs),
}

async fn run(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Serve(args) => {
            logging::init();
            return cmd::serve::run_serve(args).await;
        }
        Command::Sandbox(args) => {
            logging::init();
            return cmd::sandbox::run_sandbox(args).await;
        }
        Command::Accounts(args) => return cmd::accounts::run(args).await,
        Command::Keys(args) => return cmd::keys::run(args).await,
        Command::Partners(args) => return cmd::partners::run(args).await,
        Command::Bench(args) => return cmd::bench::run(args).await,
        Command::BenchEcho(args) => return cmd::bench_echo::run(args).await,
        _ => {}
    }
    let credentials = credentials::load(cli.credentials.as_deref(), cli.base_url.as_deref())?;
    let ctx = Context { credentials };
    match &cli.command {
        Command::Call(args) => cmd::call::run(args, &ctx).await,
        Command::Sign(args) => cmd::sign::run(args, &ctx),
        Command::Doctor(args) => cmd::doctor::run(args, &ctx),
        Command::FiatToken(args) => cmd::fiat_token::run(args, &ctx),
        Command::Jwt(args) => cmd::jwt::run(args, &ctx).await,
        Command::Serve(_)
        | Command::Sandbox(_)
        | Command::Accounts(_)
        | Command::Keys(_)
        | Command::Partners(_)
        | Command::Bench(_)
        | Command::BenchEcho(_) => Ok(()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
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
