//! One module per command, all the same shape: an `Args` struct (clap) and
//! `async fn run(args, &Context) -> Result<(), CliError>`; [`Command`] lists them. `admin_api`
//! is what `accounts`, `keys` and `partners` share; what every command shares is outside this
//! folder (`input`, `output`, `listen`, `credentials`).

pub(crate) mod accounts;
pub(crate) mod admin_api;
pub(crate) mod bench;
pub(crate) mod bench_echo;
pub(crate) mod call;
pub(crate) mod completions;
pub(crate) mod conformance;
pub(crate) mod doctor;
pub(crate) mod fiat_token;
pub(crate) mod jwt;
pub(crate) mod keys;
pub(crate) mod partners;
pub(crate) mod reload;
pub(crate) mod sandbox;
pub(crate) mod serve;
pub(crate) mod sign;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::credentials::{self, Credentials};
use crate::error::CliError;

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Sign a request and send it; print the JSON answer.
    Call(call::CallArgs),
    /// Print the X-TXC-* headers for an exact body.
    Sign(sign::SignArgs),
    /// Explain what is wrong with a captured request.
    Doctor(doctor::DoctorArgs),
    /// Build a Fiat Gateway partner token (HS256, millisecond claims).
    FiatToken(fiat_token::FiatTokenArgs),
    /// Fetch a short-lived token from POST /api/v4/jwt.
    Jwt(jwt::JwtArgs),
    /// Run the gateway from a configuration file.
    Serve(serve::ServeArgs),
    /// Run the offline sandbox (one demo key, built-in answers).
    Sandbox(sandbox::SandboxArgs),
    /// Manage accounts and their 2FA on a running gateway (through its admin API).
    Accounts(accounts::AccountsArgs),
    /// Manage API keys on a running gateway (through its admin API).
    Keys(keys::KeysArgs),
    /// Manage Fiat Gateway partners (Auth Key, Enc Key) on a running gateway (through its
    /// admin API).
    Partners(partners::PartnersArgs),
    /// Make a running gateway read its configuration file again (like SIGHUP).
    Reload(reload::ReloadArgs),
    /// Load-test a server with requests signed during the run; report throughput, latency
    /// and the generator's own CPU use.
    Bench(bench::BenchArgs),
    /// Run a minimal upstream answering every request 200 {"ok":true} (the echo limit).
    BenchEcho(bench_echo::BenchEchoArgs),
    /// Run the protocol's conformance suite against a server (exit 1 when a case fails).
    Conformance(conformance::ConformanceArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the manual page, or write one page per command with --out DIR.
    Man(completions::ManArgs),
}

impl Command {
    /// Runs the command.
    pub(crate) async fn run(&self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Command::Call(args) => call::run(args, ctx).await,
            Command::Sign(args) => sign::run(args, ctx).await,
            Command::Doctor(args) => doctor::run(args, ctx).await,
            Command::FiatToken(args) => fiat_token::run(args, ctx).await,
            Command::Jwt(args) => jwt::run(args, ctx).await,
            Command::Serve(args) => serve::run(args, ctx).await,
            Command::Sandbox(args) => sandbox::run(args, ctx).await,
            Command::Conformance(args) => conformance::run(args, ctx).await,
            Command::Accounts(args) => accounts::run(args, ctx).await,
            Command::Keys(args) => keys::run(args, ctx).await,
            Command::Partners(args) => partners::run(args, ctx).await,
            Command::Reload(args) => reload::run(args, ctx).await,
            Command::Bench(args) => bench::run(args, ctx).await,
            Command::BenchEcho(args) => bench_echo::run(args, ctx).await,
            Command::Completions(args) => completions::run(args, ctx).await,
            Command::Man(args) => completions::run_man(args, ctx).await,
        }
    }
}

/// What every command gets besides its own arguments: the global options.
pub(crate) struct Context {
    /// `--base-url`.
    base_url: Option<String>,
    /// `--credentials`.
    credentials_file: Option<PathBuf>,
}

impl Context {
    /// The context of the global options.
    pub(crate) fn new(base_url: Option<String>, credentials_file: Option<PathBuf>) -> Self {
        Self {
            base_url,
            credentials_file,
        }
    }

    /// The credentials and target (`WBAUTH_*` variables, the credentials file, `--base-url`),
    /// the command's own options first. The commands that sign or call the API load them
    /// before anything else; the others never read the credentials file.
    pub(crate) fn credentials(&self, server: &ServerArgs) -> Result<Credentials, CliError> {
        let file = server
            .credentials
            .as_deref()
            .or(self.credentials_file.as_deref());
        let base_url = server.base_url.as_deref().or(self.base_url.as_deref());
        let mut credentials = credentials::load(file, base_url)?;
        credentials.cacert.clone_from(&server.cacert);
        Ok(credentials)
    }
}

/// The options of the commands that sign or call the API (`call`, `sign`, `doctor`,
/// `fiat-token`, `jwt`): only their help shows them.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The server to talk to (default: the credentials file's base_url, else
    /// https://whitebit.com).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Credentials file to use instead of the default one.
    #[arg(long, value_name = "PATH")]
    credentials: Option<PathBuf>,
    /// Root certificates (PEM) trusted besides the system's, for an https:// server whose
    /// certificate a private CA issued.
    #[arg(long, value_name = "FILE", env = "WBAUTH_CACERT")]
    cacert: Option<PathBuf>,
}
