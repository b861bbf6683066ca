//! `wbauth sandbox`: the zero-config offline double of the real service.

use std::io::Write as _;
use std::net::SocketAddr;

use clap::Args;
use whitebit_gateway::app::{TempDataDir, bind, build_gateway, open_stores, run};
use whitebit_gateway::clock::{SharedClock, SystemClock};
use whitebit_gateway::sandbox::{SandboxOptions, sandbox_config, seed_demo_key};

use super::serve::gateway_error;
use crate::error::CliError;

/// Runs an offline sandbox: a temporary data dir, one demo key that opens every private path,
/// built-in balances and an echo of every other verified request. Prints
/// `listening=…`, `api_key=…`, `api_secret=…` on start.
#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// Listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Use this demo API key instead of a random one.
    #[arg(long, requires = "demo_secret")]
    demo_key: Option<String>,
    /// Use this demo API secret instead of a random one.
    #[arg(long, requires = "demo_key")]
    demo_secret: Option<String>,
}

/// Runs the command.
pub(crate) async fn run_sandbox(args: &SandboxArgs) -> Result<(), CliError> {
    let options = SandboxOptions {
        listen: args.listen,
        demo_key: args.demo_key.clone(),
        demo_secret: args.demo_secret.clone(),
    };
    let dir = TempDataDir::create().map_err(gateway_error)?;
    let overrides: Vec<(String, String)> = std::env::vars().collect();
    let config = sandbox_config(&options, dir.path(), &overrides).map_err(gateway_error)?;
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    let stores = open_stores(&config, clock.now_ms())
        .await
        .map_err(gateway_error)?;
    let (api_key, api_secret) = seed_demo_key(&stores, &options, clock.now_ms())
        .await
        .map_err(gateway_error)?;
    let listener = bind(config.listen.addr, "sandbox")
        .await
        .map_err(gateway_error)?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Config(e.to_string()))?;
    let gateway = build_gateway(config, &stores, clock, true)
        .await
        .map_err(gateway_error)?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening=http://{addr}");
        let _ = writeln!(out, "api_key={api_key}");
        let _ = writeln!(out, "api_secret={api_secret}");
        let _ = out.flush();
    }
    let result = run(gateway, &stores, listener, true, super::shutdown_signal())
        .await
        .map_err(gateway_error);
    drop(stores);
    drop(dir);
    result
}
