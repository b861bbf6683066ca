//! `wbauth serve`: run the gateway from a configuration file.

use std::path::PathBuf;

use clap::Args;
use whitebit_gateway::config::Config;
use whitebit_gateway::{Launch, Options, ServeClock};

use super::Context;
use crate::error::CliError;
use crate::listen::{gateway_error, shutdown_signal};
use crate::logging;
use crate::output::print_fields;

/// Runs the gateway: verifies every private request and forwards the accepted ones to the
/// configured upstreams. Every setting has a default; WBAUTH_GATEWAY__SECTION__KEY
/// environment variables override the file.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The gateway configuration (TOML).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// Runs the command. Prints `listening=http://…` and `admin=http://…` (and `console=http://…`
/// when `[console] listen` is set) on stdout once the listeners are bound (like the sandbox's contract; port 0 picks a free port).
pub(crate) async fn run(args: &ServeArgs, _ctx: &Context) -> Result<(), CliError> {
    logging::init();
    let config =
        Config::load(args.config.as_deref()).map_err(|e| CliError::Config(e.to_string()))?;
    let listening = Launch::open(config, ServeClock::new(), Options::default())
        .await
        .map_err(gateway_error)?
        .listen()
        .await
        .map_err(gateway_error)?;
    let at = listening.addresses();
    let mut lines = vec![("listening", format!("http://{}", at.public))];
    if let Some(admin) = at.admin {
        eprintln!(
            "wbauth gateway listening on http://{} ({} keys); admin API on http://{admin} \
             (admin token: {})",
            at.public,
            listening.key_count(),
            listening.admin_token_origin().unwrap_or("unknown"),
        );
        lines.push(("admin", format!("http://{admin}")));
    }
    if let Some(console) = at.console {
        lines.push(("console", format!("http://{console}")));
    }
    print_fields(&lines);
    listening
        .run(shutdown_signal())
        .await
        .map_err(gateway_error)
}
