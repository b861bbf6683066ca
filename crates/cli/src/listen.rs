//! What the commands that listen share (`serve`, `sandbox`, `bench-echo`): binding a listener,
//! start-up errors and the stop signal.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::error::CliError;

/// Start-up failures are configuration problems (exit code 2).
pub(crate) fn gateway_error(e: whitebit_gateway::GatewayError) -> CliError {
    CliError::Config(e.to_string())
}

/// Binds a listener as the gateway binds its own (same backlog); `what` names it in the error.
/// Returns the listener and its address (port 0 resolved).
pub(crate) async fn bind(
    addr: SocketAddr,
    what: &str,
) -> Result<(TcpListener, SocketAddr), CliError> {
    let listener = whitebit_gateway::bind(addr, what)
        .await
        .map_err(gateway_error)?;
    let local = local_addr(&listener)?;
    Ok((listener, local))
}

/// The address a listener is bound to.
pub(crate) fn local_addr(listener: &TcpListener) -> Result<SocketAddr, CliError> {
    listener
        .local_addr()
        .map_err(|e| CliError::Config(e.to_string()))
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
