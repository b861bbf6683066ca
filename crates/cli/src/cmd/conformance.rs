//! `wbauth conformance`: the protocol's conformance suite against any server (crate
//! `wbauth-conformance`; this command only parses options and prints the report).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use wbauth_conformance::{Credentials, Group, Options, Partner, Target};

use super::Context;
use crate::error::CliError;

/// Runs the conformance suite against a server that speaks the scheme: every row of the
/// check table (alone and in pairs that prove their order), what real clients send, the nonce
/// rules, replay storms, the token endpoint, Fiat Gateway partner tokens. Exits 1 when a case
/// fails.
#[derive(Debug, Args)]
pub(crate) struct ConformanceArgs {
    /// The server (http://HOST:PORT[/PREFIX]); only loopback addresses unless --allow-remote.
    #[arg(long, value_name = "URL")]
    target: String,
    /// The API key every case signs with (it must be allowed to call --path).
    #[arg(long, env = "WBAUTH_API_KEY", value_name = "KEY")]
    key: String,
    /// Its secret.
    #[arg(
        long,
        env = "WBAUTH_API_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    secret: String,
    /// A second key that may NOT call --path (row 14); without it that case is skipped.
    #[arg(long, requires = "secret2", value_name = "KEY")]
    key2: Option<String>,
    /// The second key's secret.
    #[arg(long, requires = "key2", value_name = "SECRET", hide_env_values = true)]
    secret2: Option<String>,
    /// A key the server has disabled (row 13); without it that case is skipped.
    #[arg(long, requires = "disabled_secret", value_name = "KEY")]
    disabled_key: Option<String>,
    /// The disabled key's secret.
    #[arg(
        long,
        requires = "disabled_key",
        value_name = "SECRET",
        hide_env_values = true
    )]
    disabled_secret: Option<String>,
    /// A path no route of the server serves (the 404 row); without it that case is skipped.
    #[arg(long, value_name = "PATH")]
    unrouted_path: Option<String>,
    /// A private endpoint the key may call and that answers 2xx.
    #[arg(long, default_value = wbauth_conformance::DEFAULT_PATH, value_name = "PATH")]
    path: String,
    /// A Fiat Gateway partner's Auth Key, for the fiat group (skipped without it).
    #[arg(long, requires = "fiat_enc_key", value_name = "KEY")]
    fiat_auth_key: Option<String>,
    /// The partner's Enc Key.
    #[arg(
        long,
        env = "WBAUTH_FIAT_ENC_KEY",
        requires = "fiat_auth_key",
        value_name = "KEY",
        hide_env_values = true
    )]
    fiat_enc_key: Option<String>,
    /// The Fiat Gateway route the partner's tokens are for.
    #[arg(long, default_value = wbauth_conformance::DEFAULT_FIAT_PATH, value_name = "PATH")]
    fiat_path: String,
    /// Only these groups (comma-separated): errors, interop, nonces, replay, jwt, fiat.
    #[arg(long, value_name = "GROUPS")]
    only: Option<String>,
    /// The report's format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    report: ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Requests started per second at most (replay storms send their copies at once).
    #[arg(long, default_value_t = 50, value_name = "N")]
    max_rps: u32,
    /// Copies of one request in each replay storm (2–256).
    #[arg(long, default_value_t = 16, value_name = "N")]
    storm: usize,
    /// Allow a target outside the loopback range.
    #[arg(long)]
    allow_remote: bool,
}

/// The report formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    /// A line per case, details of failures, the count last.
    Text,
    /// One JSON document.
    Json,
    /// JUnit XML.
    Junit,
}

/// Runs the command.
pub(crate) async fn run(args: &ConformanceArgs, _ctx: &Context) -> Result<(), CliError> {
    let usage = |e: wbauth_conformance::ConformanceError| CliError::Usage(e.to_string());
    if !args.path.starts_with('/') {
        return Err(CliError::Usage(format!(
            "--path {:?}: a path starts with /",
            args.path
        )));
    }
    if args.max_rps == 0 || !(2..=256).contains(&args.storm) {
        return Err(CliError::Usage(
            "--max-rps must be at least 1 and --storm 2 to 256".into(),
        ));
    }
    let mut target = Target::parse(
        &args.target,
        Credentials::new(args.key.as_str(), args.secret.as_str()),
        args.allow_remote,
    )
    .map_err(usage)?;
    target.path.clone_from(&args.path);
    if let (Some(key), Some(secret)) = (&args.key2, &args.secret2) {
        target.restricted = Some(Credentials::new(key.as_str(), secret.as_str()));
    }
    if let (Some(key), Some(secret)) = (&args.disabled_key, &args.disabled_secret) {
        target.disabled = Some(Credentials::new(key.as_str(), secret.as_str()));
    }
    if let Some(path) = &args.unrouted_path {
        if !path.starts_with('/') {
            return Err(CliError::Usage(format!(
                "--unrouted-path {path:?}: a path starts with /"
            )));
        }
        target.unrouted_path = Some(path.clone());
    }
    if let (Some(auth), Some(enc)) = (&args.fiat_auth_key, &args.fiat_enc_key) {
        if !args.fiat_path.starts_with('/') {
            return Err(CliError::Usage(format!(
                "--fiat-path {:?}: a path starts with /",
                args.fiat_path
            )));
        }
        target.partner = Some(Partner::new(
            auth.as_str(),
            enc.as_str(),
            args.fiat_path.as_str(),
        ));
    }
    let groups = match &args.only {
        Some(list) => Group::parse_list(list).map_err(usage)?,
        None => Group::ALL.to_vec(),
    };
    if groups.is_empty() {
        return Err(CliError::Usage("--only names no group".into()));
    }
    let options = Options {
        groups,
        max_rps: args.max_rps,
        storm: args.storm,
    };
    let report = tokio::task::spawn_blocking(move || wbauth_conformance::run(&target, &options))
        .await
        .map_err(|e| CliError::Unreachable(format!("the suite stopped: {e}")))?;
    let text = match args.report {
        ReportFormat::Text => report.text(),
        ReportFormat::Json => report.json() + "\n",
        ReportFormat::Junit => report.junit(),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })?;
            println!("{}", report.summary());
        }
        None => print!("{text}"),
    }
    match report.failed() {
        0 => Ok(()),
        n => Err(CliError::Failed(format!("{n} conformance case(s) failed"))),
    }
}
