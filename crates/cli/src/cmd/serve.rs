//! `wbauth serve`: run the gateway from a configuration file.

use std::path::PathBuf;

use clap::Args;
use whitebit_gateway::app::{bind, build_gateway, open_stores, run};
use whitebit_gateway::clock::{SharedClock, SystemClock};
use whitebit_gateway::config::Config;

use crate::error::CliError;

/// Runs the gateway: verifies every private request and forwards the accepted ones to the
/// configured upstreams. Every setting has a default; WBAUTH_GATEWAY__SECTION__KEY
/// environment variables override the file.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The gateway configuration (TOML).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// Runs the command.
pub(crate) async fn run_serve(args: &ServeArgs) -> Result<(), CliError> {
    let config =
        Config::load(args.config.as_deref()).map_err(|e| CliError::Config(e.to_string()))?;
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    let stores = open_stores(&config, clock.now_ms())
        .await
        .map_err(gateway_error)?;
    let listener = bind(config.listen.addr, "public")
        .await
        .map_err(gateway_error)?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Config(e.to_string()))?;
    let gateway = build_gateway(config, &stores, clock, false)
        .await
        .map_err(gateway_error)?;
    eprintln!(
        "wbauth gateway listening on http://{addr} ({} keys)",
        gateway.keys.len()
    );
    run(gateway, &stores, listener, false, super::shutdown_signal())
        .await
        .map_err(gateway_error)
}

/// Start-up failures are configuration problems (exit code 2).
pub(crate) fn gateway_error(e: whitebit_gateway::GatewayError) -> CliError {
    CliError::Config(e.to_string())
}
