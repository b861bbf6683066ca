//! `wbauth serve`: run the gateway from a configuration file.

use std::path::PathBuf;

use clap::Args;
use whitebit_gateway::config::Config;
use whitebit_gateway::tokens::SigningKey;
use whitebit_gateway::{Launch, Options, ServeClock};

use super::Context;
use crate::error::CliError;
use crate::listen::{gateway_error, shutdown_signal};
use crate::logging;
use crate::output::print_fields;

/// Runs the gateway: verifies every private request and forwards the accepted ones to the
/// configured upstreams. Every setting has a default; WBAUTH_GATEWAY__SECTION__KEY
/// environment variables override the file. SIGHUP (or `wbauth reload`) reads the file
/// again and puts routes, kinds, rate limits, Fiat routes, token keys and the log level in
/// force without a restart.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The gateway configuration (TOML).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Only check the configuration (and that its token keys load), then exit: 0 when it is
    /// usable, 2 with the file, line, key and reason when not. Opens no store and no listener.
    #[arg(long)]
    check: bool,
}

/// Runs the command. Prints `listening=http://…` and `admin=http://…` (and `console=http://…`
/// when `[console] listen` is set) on stdout once the listeners are bound (like the sandbox's contract; port 0 picks a free port).
pub(crate) async fn run(args: &ServeArgs, _ctx: &Context) -> Result<(), CliError> {
    let config =
        Config::load(args.config.as_deref()).map_err(|e| CliError::Config(e.to_string()))?;
    logging::check(&config.log.level)
        .map_err(|e| CliError::Config(format!("{}: log.level: {e}", source_name(args))))?;
    if args.check {
        return check(args, &config);
    }
    let log = logging::init(&config.log.level);
    let listening = Launch::open(config, ServeClock::new(), Options::default())
        .await
        .map_err(gateway_error)?
        .reload_from(args.config.clone(), log)
        .listen()
        .await
        .map_err(gateway_error)?;
    let public = listening.public_url();
    let mut lines = vec![("listening", public.clone())];
    if let Some(admin) = listening.admin_url() {
        eprintln!(
            "wbauth gateway listening on {public} ({} keys); admin API on {admin} (admin \
             token: {})",
            listening.key_count(),
            listening.admin_token_origin().unwrap_or("unknown"),
        );
        lines.push(("admin", admin));
    }
    if let Some(console) = listening.console_url() {
        lines.push(("console", console));
    }
    print_fields(&lines);
    listening
        .run(shutdown_signal())
        .await
        .map_err(gateway_error)
}

/// `--check`: what `Config::load` validates, plus every `[tokens]` key loaded (at start an
/// unusable key is only logged and skipped). Prints `ok=FILE` on success.
fn check(args: &ServeArgs, config: &Config) -> Result<(), CliError> {
    let source = source_name(args);
    for (i, key) in config.tokens.keys.iter().enumerate() {
        SigningKey::load_pem_file(&key.pem)
            .and_then(|k| k.with_kid(key.kid.as_deref()))
            .map_err(|e| CliError::Config(format!("{source}: tokens.keys[{i}]: {e}")))?;
    }
    whitebit_gateway::check_certificates(config)
        .map_err(|e| CliError::Config(format!("{source}: {e}")))?;
    print_fields(&[("ok", source.as_str())]);
    Ok(())
}

/// The configuration's name in messages.
fn source_name(args: &ServeArgs) -> String {
    args.config
        .as_deref()
        .map_or_else(|| "(defaults)".to_owned(), |p| p.display().to_string())
}
