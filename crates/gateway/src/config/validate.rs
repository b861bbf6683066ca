//! The checks made once the file and the overrides are read; each message names the key path.

use whitebit_auth::path::normalize_path;

use super::forward_headers::check_forward_header;
use super::{AdminConfig, Config, KeyBackend, NonceBackend, RouteConfig};
use crate::ip::IpRule;

impl AdminConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !crate::ip::canonical(self.addr.ip()).is_loopback() && !self.allow_remote {
            return Err(format!(
                "admin.addr: {} is not a loopback address. The admin listener serves the \
                 management API, /metrics and /readyz, so it listens on loopback only \
                 (127.0.0.1 or [::1]); to listen on {} anyway, set [admin] allow_remote = true, \
                 keep the port behind a firewall, and list the names clients use for it in \
                 [admin] hosts",
                self.addr, self.addr
            ));
        }
        if !self.hosts.is_empty() && !self.allow_remote {
            return Err(
                "admin.hosts: only used with [admin] allow_remote = true (loopback \
                 names and addresses are always accepted); remove it or set allow_remote"
                    .to_owned(),
            );
        }
        for (i, host) in self.hosts.iter().enumerate() {
            let ok = !host.is_empty()
                && host.len() <= 260
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                });
            if !ok {
                return Err(format!(
                    "admin.hosts[{i}]: {host:?} is not a host name or address (optionally \
                     with :port), e.g. \"admin.internal\" or \"10.0.0.5:8081\""
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Semantic checks; the message names the key path.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.verify.max_body_bytes == 0 {
            return Err("verify.max_body_bytes: must be at least 1".into());
        }
        self.admin.validate()?;
        let level = self.log.level.trim();
        if level.is_empty() || !level.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "log.level: {:?} is not a log filter: give a level (error, warn, info, debug, \
                 trace) or directives such as \"info,wbauth::request=debug\"",
                self.log.level
            ));
        }
        for (section, tls) in [("listen", &self.listen.tls), ("console", &self.console.tls)] {
            if tls.as_ref().is_some_and(|tls| tls.client_ca.is_some()) {
                return Err(format!(
                    "{section}.tls.client_ca: client certificates are asked for on the admin \
                     listener only; remove client_ca here (or move it to [admin] tls)"
                ));
            }
        }
        if self.listen.max_connections == 0 {
            return Err("listen.max_connections: must be at least 1".into());
        }
        if self.runtime.workers > 1024 {
            return Err("runtime.workers: at most 1024 (0: one per CPU)".into());
        }
        if self.runtime.upstream_connections == 0 {
            return Err("runtime.upstream_connections: must be at least 1".into());
        }
        if self.console.session_idle_ms < 1_000 || self.console.session_max_ms < 1_000 {
            return Err(
                "console.session_idle_ms and console.session_max_ms: must be at least 1000".into(),
            );
        }
        if !(60_000..=30 * 86_400_000).contains(&self.console.link_ttl_ms) {
            return Err(
                "console.link_ttl_ms: must be between 60000 (1 min) and 2592000000 (30 days)"
                    .into(),
            );
        }
        if let Some(url) = &self.console.public_url {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            if rest
                .is_none_or(|r| r.trim_end_matches('/').is_empty() || r.contains(['?', '#', ' ']))
            {
                return Err(format!(
                    "console.public_url: {:?} is not an http:// or https:// address without query",
                    wbauth_store::redact_url(url)
                ));
            }
        }
        if self.keys.max_ips == 0 {
            return Err("keys.max_ips: must be at least 1".into());
        }
        if !(1_000..=86_400_000).contains(&self.tokens.lifetime_ms) {
            return Err(
                "tokens.lifetime_ms: must be between 1000 (1 s) and 86400000 (1 day)".into(),
            );
        }
        for (i, key) in self.tokens.keys.iter().enumerate() {
            if key
                .kid
                .as_deref()
                .is_some_and(|kid| kid.is_empty() || !kid.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(format!("tokens.keys[{i}].kid: must be visible ASCII"));
            }
        }
        for (i, trusted) in self.proxy.trusted.iter().enumerate() {
            IpRule::parse(trusted).map_err(|e| format!("proxy.trusted[{i}]: {e}"))?;
        }
        let keys = self.store.key_backend()?;
        let nonces = self.store.nonce_backend()?;
        if matches!(keys, KeyBackend::Postgres(_))
            && nonces == NonceBackend::Embedded
            && !self.store.allow_per_instance_nonces
        {
            return Err(
                "store.nonces: the keys are in PostgreSQL, which several instances \
                 share, but nonces = \"embedded\" keeps the accepted nonces in this \
                 instance's data directory only, so a request accepted by one instance would be \
                 accepted again by another. Set [store] nonces to the nonce store every \
                 instance shares (a redis://… or postgres://… URL) or, if this is the only \
                 instance using these keys, set [store] allow_per_instance_nonces = true."
                    .to_owned(),
            );
        }
        if self.store.nonce_replicas_ack > 0 && !matches!(nonces, NonceBackend::Redis(_)) {
            return Err(format!(
                "store.nonce_replicas_ack = {}: only a Redis nonce store waits for replicas; \
                 set [store] nonces to a redis://… or redis+sentinel://… URL, or remove \
                 nonce_replicas_ack (PostgreSQL: use require_sync_standby)",
                self.store.nonce_replicas_ack
            ));
        }
        if let Some(ca) = &self.store.redis_ca {
            let ca = ca.display().to_string();
            match &nonces {
                NonceBackend::Redis(url) if url.starts_with("rediss://") => {}
                NonceBackend::Redis(url) if url.starts_with("redis+sentinel://") => {
                    return Err(format!(
                        "store.redis_ca = {ca:?}: the Sentinels and the masters they name are \
                         reached over plain TCP only (no TLS through Sentinel); remove \
                         redis_ca, or name the master directly with rediss://host:port"
                    ));
                }
                _ => {
                    return Err(format!(
                        "store.redis_ca = {ca:?}: only a Redis nonce store over TLS uses a CA; \
                         set [store] nonces to a rediss://… URL, or remove redis_ca \
                         (PostgreSQL takes its CA in the URL: \
                         ?sslmode=verify-full&sslrootcert=FILE)"
                    ));
                }
            }
        }
        if self.store.require_sync_standby
            && !matches!(keys, KeyBackend::Postgres(_))
            && !matches!(nonces, NonceBackend::Postgres(_))
        {
            return Err(
                "store.require_sync_standby = true: neither store is PostgreSQL; set \
                 [store] keys or nonces to a postgres://… URL, or remove require_sync_standby"
                    .to_owned(),
            );
        }
        if self.store.pool_size == 0 || self.store.pool_size > 1_000 {
            return Err("store.pool_size: must be between 1 and 1000".to_owned());
        }
        for (name, value) in [
            ("connect_timeout_ms", self.store.connect_timeout_ms),
            ("op_timeout_ms", self.store.op_timeout_ms),
            ("refresh_interval_ms", self.store.refresh_interval_ms),
        ] {
            if value == 0 {
                return Err(format!("store.{name}: must be at least 1"));
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            check_prefix(&route.prefix).map_err(|e| format!("route[{i}].prefix: {e}"))?;
            check_upstream(&route.upstream).map_err(|e| format!("route[{i}].upstream: {e}"))?;
            if route.timeout_ms == 0 {
                return Err(format!("route[{i}].timeout_ms: must be at least 1"));
            }
            check_forward_headers(route).map_err(|e| format!("route[{i}].{e}"))?;
            check_upstream_tls(route).map_err(|e| format!("route[{i}].{e}"))?;
        }
        for (i, route) in self.fiat.routes.iter().enumerate() {
            check_prefix(&route.prefix).map_err(|e| format!("fiat.route[{i}].prefix: {e}"))?;
            check_upstream(&route.upstream)
                .map_err(|e| format!("fiat.route[{i}].upstream: {e}"))?;
            check_forward_headers(route).map_err(|e| format!("fiat.route[{i}].{e}"))?;
            check_upstream_tls(route).map_err(|e| format!("fiat.route[{i}].{e}"))?;
            if self.routes.iter().any(|r| r.prefix == route.prefix) {
                return Err(format!(
                    "fiat.route[{i}].prefix: {:?} is also a private route",
                    route.prefix
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, kind) in self.kinds.iter().enumerate() {
            if kind.name.is_empty()
                || !kind
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "kind[{i}].name: {:?} must be letters, digits, '-' or '_'",
                    kind.name
                ));
            }
            if !names.insert(kind.name.as_str()) {
                return Err(format!(
                    "kind[{i}].name: kind {:?} is defined twice",
                    kind.name
                ));
            }
            for (j, pattern) in kind.paths.iter().enumerate() {
                whitebit_auth::path::check_pattern(pattern)
                    .map_err(|e| format!("kind[{i}].paths[{j}]: {e}"))?;
            }
        }
        for (name, limit) in &self.rate_limit.kinds {
            if !names.contains(name.as_str()) {
                return Err(format!("rate_limit.{name}: no kind named {name:?}"));
            }
            if limit.requests == 0 || limit.window_ms == 0 {
                return Err(format!(
                    "rate_limit.{name}: requests and window_ms must be at least 1"
                ));
            }
        }
        Ok(())
    }
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    match normalize_path(prefix) {
        Ok(n) if n == prefix => Ok(()),
        Ok(n) => Err(format!("{prefix:?} is not normalised (write {n:?})")),
        Err(e) => Err(format!("{prefix:?}: {e}")),
    }
}

fn check_forward_headers(route: &RouteConfig) -> Result<(), String> {
    for (j, name) in route.forward_headers.iter().flatten().enumerate() {
        check_forward_header(name).map_err(|e| format!("forward_headers[{j}]: {e}"))?;
    }
    Ok(())
}

/// The TLS settings of a route: only for an `https://` upstream, a client key with its
/// certificate.
fn check_upstream_tls(route: &RouteConfig) -> Result<(), String> {
    if !route.upstream.starts_with("https://") {
        for (name, set) in [
            ("ca", route.ca.is_some()),
            ("client_cert", route.client_cert.is_some()),
            ("client_key", route.client_key.is_some()),
            ("http2", route.http2),
        ] {
            if set {
                return Err(format!(
                    "{name}: only for an https:// upstream; remove it or make the upstream https://"
                ));
            }
        }
    }
    match (&route.client_cert, &route.client_key) {
        (Some(_), None) => Err("client_key: missing (client_cert needs its key)".into()),
        (None, Some(_)) => Err("client_cert: missing (client_key needs its certificate)".into()),
        _ => Ok(()),
    }
}

fn check_upstream(url: &str) -> Result<(), String> {
    let shown = wbauth_store::redact_url(url);
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{shown:?}: expected http://host:port or https://host:port"))?;
    let authority = rest.trim_end_matches('/');
    if authority.contains('@') {
        return Err(format!(
            "{shown:?}: expected http(s)://host:port without user name or password"
        ));
    }
    if authority.is_empty() || authority.contains(['/', '?', '#', ' ']) {
        return Err(format!(
            "{shown:?}: expected http(s)://host:port with no path"
        ));
    }
    Ok(())
}
