//! Logs of the long-running commands (`serve`, `sandbox`): to stderr, filtered by `WBAUTH_LOG`
//! when it is set, else by the configuration's `[log] level` (default `info`; e.g. `debug` adds
//! one line per request), as text or, with `WBAUTH_LOG_FORMAT=json`, one JSON object per line.
//! A live reload may change `[log] level` (unless `WBAUTH_LOG` is set, which stays in force).
//! Log lines never contain a secret, a signature or a payload: the gateway does not pass them
//! to the logger.

use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};
use whitebit_gateway::LogFilter;

/// The variable whose filter takes the place of `[log] level`.
const LOG_ENV: &str = "WBAUTH_LOG";

/// Installs the subscriber (once) with `WBAUTH_LOG`, else `level`; returns what a live reload
/// uses to change the level (`None` when `WBAUTH_LOG` decides, or when a subscriber was
/// installed already).
pub(crate) fn init(level: &str) -> Option<Arc<dyn LogFilter>> {
    let from_env = EnvFilter::try_from_env(LOG_ENV).ok();
    let fixed = from_env.is_some();
    let filter = from_env
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let json = std::env::var("WBAUTH_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .with_ansi(false)
                    .with_target(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    (installed.is_ok() && !fixed).then(|| Arc::new(Level(handle)) as Arc<dyn LogFilter>)
}

/// Checks `[log] level` as the logger will read it.
///
/// # Errors
/// Why the directives are not a filter.
pub(crate) fn check(level: &str) -> Result<(), String> {
    EnvFilter::try_new(level)
        .map(drop)
        .map_err(|e| format!("{level:?} is not a log filter ({e})"))
}

/// The running logger's filter.
struct Level(reload::Handle<EnvFilter, Registry>);

impl LogFilter for Level {
    fn check(&self, directives: &str) -> Result<(), String> {
        check(directives)
    }

    fn apply(&self, directives: &str) {
        if let Ok(filter) = EnvFilter::try_new(directives)
            && let Err(e) = self.0.reload(filter)
        {
            tracing::warn!(target: "wbauth::reload", "the log level could not be changed: {e}");
        }
    }
}
