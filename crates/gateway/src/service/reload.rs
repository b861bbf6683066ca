//! Live reload (`docs/operations.md`): the configuration file read again, validated as a whole,
//! and put in force atomically — on `SIGHUP` and on `POST /admin/reload`, through this one code
//! path. Requests in flight finish under the settings they started with; the next request
//! sees the new ones. Anything wrong leaves the running configuration as it was.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, ConfigError};
use crate::tokens::{BadKey, issuer_for};
use crate::verify::Gateway;

/// The log filter of the running process, which a reload may change (`[log] level`). The
/// embedding program owns the logger; the gateway only asks it.
pub trait LogFilter: Send + Sync {
    /// Whether `directives` would be accepted, and why not.
    ///
    /// # Errors
    /// What is wrong with the directives.
    fn check(&self, directives: &str) -> Result<(), String>;
    /// Puts `directives` (already checked) in force.
    fn apply(&self, directives: &str);
}

/// What a reload reads again besides the configuration file (the listeners' certificates,
/// which the network edge owns).
pub(crate) trait AlsoReload: Send + Sync {
    /// Reads again; the problems, each saying what was kept in service.
    fn reload(&self) -> Vec<String>;
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    /// The file cannot be read, does not parse or does not validate, or names something that
    /// cannot be used (a token key file, a log filter, a trusted proxy entry).
    #[error("{0}; the running configuration is kept")]
    Invalid(ConfigError),
    /// Settings that only a restart can change differ from the running ones.
    #[error(
        "{source_name}: {} cannot change while the gateway runs (restart it to apply, or put \
         back the running value); nothing was changed",
        settings.join(", ")
    )]
    NeedsRestart {
        /// The file.
        source_name: String,
        /// The settings, by name.
        settings: Vec<&'static str>,
    },
}

impl ReloadError {
    /// The file, line and key of the problem, when known.
    pub(crate) fn place(&self) -> (&str, Option<usize>, Option<&str>) {
        match self {
            Self::Invalid(e) => (&e.source_name, e.line, e.key.as_deref()),
            Self::NeedsRestart {
                source_name,
                settings,
            } => (source_name, None, settings.first().copied()),
        }
    }
}

/// What a reload put in force.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Reloaded {
    /// The file read.
    pub(crate) file: String,
    /// The sections whose settings changed (empty: the file says what runs already; token
    /// key files are read again all the same).
    pub(crate) changed: Vec<&'static str>,
    /// Certificates that could not be read again (the previous ones stay in service).
    pub(crate) certificate_problems: Vec<String>,
}

/// Reloads a gateway's configuration from where it was first read. One reload at a time.
pub(crate) struct Reloader {
    gateway: Arc<Gateway>,
    /// The file (`None`: the defaults), with the process's `WBAUTH_GATEWAY__…` variables.
    source: Option<PathBuf>,
    log: Option<Arc<dyn LogFilter>>,
    /// Whether a token key is generated when none is configured (the sandbox).
    generate_token_key: bool,
    /// Read again at each reload too.
    also: Option<Arc<dyn AlsoReload>>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader of `gateway` from `source`.
    pub(crate) fn new(
        gateway: Arc<Gateway>,
        source: Option<PathBuf>,
        log: Option<Arc<dyn LogFilter>>,
        generate_token_key: bool,
    ) -> Self {
        Self {
            gateway,
            source,
            log,
            generate_token_key,
            also: None,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads `also` again at every reload (whatever becomes of the configuration file).
    #[must_use]
    pub(crate) fn also_reloading(mut self, also: Arc<dyn AlsoReload>) -> Self {
        self.also = Some(also);
        self
    }

    fn source_name(&self) -> String {
        self.source
            .as_deref()
            .map_or_else(|| "(defaults)".to_owned(), |p| p.display().to_string())
    }

    /// Reads, validates and puts in force the configuration; logs the outcome.
    ///
    /// # Errors
    /// Why nothing changed.
    pub(crate) async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let outcome = self.reload_inner().await;
        match &outcome {
            Ok(done) if done.changed.is_empty() => tracing::info!(
                target: "wbauth::reload",
                "configuration reloaded from {}: no setting changed (token key files read again)",
                done.file
            ),
            Ok(done) => tracing::info!(
                target: "wbauth::reload",
                "configuration reloaded from {}: changed {}",
                done.file,
                done.changed.join(", ")
            ),
            Err(e) => tracing::error!(target: "wbauth::reload", "reload refused: {e}"),
        }
        self.gateway.metrics().reloaded(outcome.is_ok());
        outcome
    }

    async fn reload_inner(&self) -> Result<Reloaded, ReloadError> {
        let _one = self.one_at_a_time.lock().await;
        let certificate_problems = match self.also.clone() {
            // File reads: off the event loop.
            Some(also) => tokio::task::spawn_blocking(move || also.reload())
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let source = self.source.clone();
        let loaded = tokio::task::spawn_blocking(move || Config::load(source.as_deref()))
            .await
            .map_err(|e| {
                ReloadError::Invalid(ConfigError::new(
                    self.source_name(),
                    format!("reading the file failed: {e}"),
                ))
            })?;
        let config = loaded.map_err(ReloadError::Invalid)?;
        let running = self.gateway.config();
        let fixed = needs_restart(&running, &config);
        if !fixed.is_empty() {
            return Err(ReloadError::NeedsRestart {
                source_name: self.source_name(),
                settings: fixed,
            });
        }
        let unusable =
            |message: String| ReloadError::Invalid(ConfigError::new(self.source_name(), message));
        // A sandbox's generated key is kept while `[tokens]` still names no key file, so the
        // tokens it issued stay valid.
        let tokens = if self.generate_token_key
            && config.tokens.keys.is_empty()
            && same(&config.tokens, &running.tokens)
        {
            self.gateway.live().shared_tokens()
        } else {
            Arc::new(
                issuer_for(&config, self.generate_token_key, BadKey::Refuse).map_err(unusable)?,
            )
        };
        let log_changed = running.log.level != config.log.level;
        if log_changed && let Some(log) = &self.log {
            log.check(&config.log.level)
                .map_err(|e| unusable(format!("log.level: {e}")))?;
        }
        let changed = changed_sections(&running, &config);
        let level = config.log.level.clone();
        self.gateway
            .replace_live(config, tokens)
            .map_err(|e| unusable(e.to_string()))?;
        if log_changed && let Some(log) = &self.log {
            log.apply(&level);
        }
        Ok(Reloaded {
            file: self.source_name(),
            changed,
            certificate_problems,
        })
    }
}

/// Whether two settings are the same (compared as their serialised values).
fn same<T: Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

/// The settings a running gateway cannot change: its listeners (bound at start), its stores
/// (opened at start), its workers, and the body limit its listeners' header limits derive
/// from.
fn needs_restart(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !same(&running.listen, &new.listen) {
        out.push("[listen]");
    }
    if !same(&running.admin, &new.admin) {
        out.push("[admin]");
    }
    if !same(&running.store, &new.store) {
        out.push("[store]");
    }
    if !same(&running.console, &new.console) {
        out.push("[console]");
    }
    if !same(&running.runtime, &new.runtime) {
        out.push("[runtime]");
    }
    if running.verify.max_body_bytes != new.verify.max_body_bytes {
        out.push("verify.max_body_bytes");
    }
    out
}

/// The sections a reload changes, as the file names them.
fn changed_sections(running: &Config, new: &Config) -> Vec<&'static str> {
    let pairs: [(&'static str, bool); 9] = [
        ("[[route]]", same(&running.routes, &new.routes)),
        ("[[kind]]", same(&running.kinds, &new.kinds)),
        ("[rate_limit]", same(&running.rate_limit, &new.rate_limit)),
        ("[fiat]", same(&running.fiat, &new.fiat)),
        ("[tokens]", same(&running.tokens, &new.tokens)),
        ("[verify]", same(&running.verify, &new.verify)),
        ("[proxy]", same(&running.proxy, &new.proxy)),
        ("[keys]", same(&running.keys, &new.keys)),
        ("[log]", same(&running.log, &new.log)),
    ];
    pairs
        .into_iter()
        .filter_map(|(name, unchanged)| (!unchanged).then_some(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        match Config::from_toml(text, "test.toml", &[]) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn listeners_stores_and_the_body_limit_need_a_restart() {
        let running = config("");
        let moved = config(
            "[listen]\naddr = \"127.0.0.1:9999\"\n[store]\nnonces = \"redis://127.0.0.1:1\"\n\
             [verify]\nmax_body_bytes = 1000\n[runtime]\nworkers = 3\n",
        );
        assert_eq!(
            needs_restart(&running, &moved),
            ["[listen]", "[store]", "[runtime]", "verify.max_body_bytes"]
        );
        assert!(needs_restart(&running, &running).is_empty());
    }

    #[test]
    fn live_sections_are_named_when_they_change() {
        let running = config("");
        let new = config(
            "[[kind]]\nname = \"trade\"\npaths = [\"/api/v4/order/*\"]\n\
             [rate_limit]\ntrade = { requests = 5, window_ms = 1000 }\n\
             [verify]\nbody_match = \"json\"\n[log]\nlevel = \"debug\"\n",
        );
        assert_eq!(
            changed_sections(&running, &new),
            ["[[kind]]", "[rate_limit]", "[verify]", "[log]"]
        );
        assert!(needs_restart(&running, &new).is_empty());
        assert!(changed_sections(&new, &new).is_empty());
    }
}
