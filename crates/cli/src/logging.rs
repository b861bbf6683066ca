//! Logs of the long-running commands (`serve`, `sandbox`): to stderr, filtered by `WBAUTH_LOG`
//! (default `info`; e.g. `WBAUTH_LOG=debug` adds one line per request), as text or, with
//! `WBAUTH_LOG_FORMAT=json`, one JSON object per line. Log lines never contain a secret, a
//! signature or a payload: the gateway does not pass them to the logger.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber (once).
pub(crate) fn init() {
    let filter = EnvFilter::try_from_env("WBAUTH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("WBAUTH_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}
