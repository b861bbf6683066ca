//! `wbauth serve`: run the gateway from a configuration file.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use whitebit_gateway::admin::{ADMIN_TOKEN_ENV, AdminHosts, AdminToken};
use whitebit_gateway::app::{
    AdminServer, ConsoleServer, ServeClock, admin_router_for, build_gateway, open_stores,
    run_with_admin,
};
use whitebit_gateway::config::Config;
use whitebit_gateway::service::KeyService;

use super::Context;
use crate::error::CliError;
use crate::listen::{bind, gateway_error, local_addr, shutdown_signal};
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
    let serve_clock = ServeClock::new();
    let clock = serve_clock.clock.clone();
    let stores = open_stores(&config, clock.now_ms())
        .await
        .map_err(gateway_error)?;
    let env_token = std::env::var(ADMIN_TOKEN_ENV).ok();
    let token = AdminToken::load_or_create(&config.store.data_dir, env_token.as_deref())
        .map_err(gateway_error)?;
    let (listener, addr) = bind(config.listen.addr, "public").await?;
    let (admin_listener, admin_addr) = bind(config.admin.addr, "admin").await?;
    let admin_hosts = AdminHosts::new(admin_addr, &config.admin);
    let gateway = build_gateway(config, &stores, clock, false)
        .await
        .map_err(gateway_error)?;
    let service = Arc::new(KeyService::for_gateway(&gateway));
    let console = ConsoleServer::bind_if_configured(&gateway, &service)
        .await
        .map_err(gateway_error)?;
    let console_addr = match &console {
        Some(c) => Some(local_addr(&c.listener)?),
        None => None,
    };
    let token_origin = token.origin().to_owned();
    // Unauthenticated operational routes of the admin listener.
    let extra = Some(whitebit_gateway::app::metrics_router(gateway.clone()));
    let router = admin_router_for(
        service.clone(),
        &stores,
        token,
        &serve_clock,
        extra,
        admin_hosts,
    );
    eprintln!(
        "wbauth gateway listening on http://{addr} ({} keys); admin API on http://{admin_addr} \
         (admin token: {token_origin})",
        gateway.keys.len()
    );
    let mut lines = vec![
        ("listening", format!("http://{addr}")),
        ("admin", format!("http://{admin_addr}")),
    ];
    if let Some(console_addr) = console_addr {
        lines.push(("console", format!("http://{console_addr}")));
    }
    print_fields(&lines);
    run_with_admin(
        gateway,
        &stores,
        listener,
        AdminServer {
            listener: admin_listener,
            router,
        },
        console,
        service,
        shutdown_signal(),
    )
    .await
    .map_err(gateway_error)
}
