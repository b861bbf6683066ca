//! The `Host` check in front of every admin route: only loopback names and addresses, the
//! listener's own address and (with `[admin] allow_remote`) the names of `[admin] hosts` are
//! answered, so a web page of another site whose name resolves to 127.0.0.1 (DNS rebinding)
//! reads nothing and changes nothing.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;

use super::respond::message;

/// The `Host` values the admin listener answers: `localhost` and loopback addresses (any
/// port), the listener's own address, and with `[admin] allow_remote` the names of
/// `[admin] hosts` (any port, or the one given). Compared without regard to case.
#[derive(Debug, Clone)]
pub(crate) struct AdminHosts {
    bound: std::net::SocketAddr,
    names: Vec<(String, Option<u16>)>,
}

impl AdminHosts {
    /// The hosts of a listener bound to `bound` with this `[admin]` section.
    #[must_use]
    pub(crate) fn new(bound: std::net::SocketAddr, config: &crate::config::AdminConfig) -> Self {
        let names = if config.allow_remote {
            config
                .hosts
                .iter()
                .filter_map(|host| {
                    let host = host.to_ascii_lowercase();
                    split_host(&host).map(|(name, port)| (name.to_owned(), port))
                })
                .collect()
        } else {
            Vec::new()
        };
        Self { bound, names }
    }

    /// Whether a request with this `Host` value is answered.
    #[must_use]
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let Some((name, port)) = split_host(&host) else {
            return false;
        };
        let ip = name.parse::<IpAddr>().ok().map(crate::ip::canonical);
        if name == "localhost" || name == "localhost." || ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        let bound = crate::ip::canonical(self.bound.ip());
        if ip == Some(bound) && !bound.is_unspecified() && port == Some(self.bound.port()) {
            return true;
        }
        self.names.iter().any(|(known, known_port)| {
            let same_name = *known == name
                || (ip.is_some() && known.parse::<IpAddr>().ok().map(crate::ip::canonical) == ip);
            same_name && known_port.is_none_or(|p| port == Some(p))
        })
    }
}

/// `name[:port]` or `[v6][:port]` → (name without brackets, port); `None` when it is neither.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, rest) = match host.strip_prefix('[') {
        Some(inner) => {
            let end = inner.find(']')?;
            (&inner[..end], &inner[end + 1..])
        }
        None => host.split_at(host.find(':').unwrap_or(host.len())),
    };
    let port = match rest {
        "" => None,
        _ => {
            let digits = rest.strip_prefix(':')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    valid.then_some((name, port))
}

/// `router` answering only requests whose `Host` (HTTP/2: `:authority`; and absolute-form
/// target, if any) `hosts`
/// allows; the others get 421 with a JSON error and reach no route.
pub(crate) fn with_host_check(router: Router, hosts: AdminHosts) -> Router {
    router.layer(from_fn_with_state(Arc::new(hosts), check_host))
}

async fn check_host(
    State(hosts): State<Arc<AdminHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let mut values = request.headers().get_all(header::HOST).iter();
    let host = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        // HTTP/2 names the host in the `:authority` pseudo-header instead.
        (None, _) if request.version() == axum::http::Version::HTTP_2 => request
            .uri()
            .authority()
            .map(axum::http::uri::Authority::as_str),
        _ => None,
    };
    let target_ok = request
        .uri()
        .authority()
        .is_none_or(|authority| hosts.allows(authority.as_str()));
    if host.is_some_and(|host| hosts.allows(host)) && target_ok {
        return next.run(request).await;
    }
    tracing::debug!(target: "wbauth::admin", "refused a request for another host");
    message(
        StatusCode::MISDIRECTED_REQUEST,
        "This admin listener answers only requests addressed to a loopback name or address \
         (localhost, 127.0.0.1, [::1]) or to its own address. To reach it under another name, \
         set [admin] allow_remote = true and list that name in [admin] hosts.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_hosts() {
        use crate::config::AdminConfig;
        let local = AdminHosts::new(
            "127.0.0.1:8081".parse().expect("addr"),
            &AdminConfig::default(),
        );
        for host in [
            "127.0.0.1:8081",
            "127.0.0.1",
            "127.9.9.9:1",
            "localhost",
            "LOCALHOST:8081",
            "[::1]:8081",
            "[::1]",
            "[::ffff:127.0.0.1]:8081",
        ] {
            assert!(local.allows(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:8081",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "127.0.0.1:80@evil.example",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "::1",
            "[::1",
            "10.0.0.5:8081",
        ] {
            assert!(!local.allows(host), "{host}");
        }
        let config = AdminConfig {
            addr: "10.0.0.5:8081".parse().expect("addr"),
            allow_remote: true,
            hosts: vec![
                "Admin.Internal".into(),
                "ops.internal:9000".into(),
                "[FD00::1]".into(),
            ],
            tls: None,
        };
        let remote = AdminHosts::new(config.addr, &config);
        for host in [
            "10.0.0.5:8081",
            "admin.internal",
            "admin.internal:8081",
            "ops.internal:9000",
            "[fd00:0::1]:8081",
            "localhost:8081",
        ] {
            assert!(remote.allows(host), "{host}");
        }
        for host in [
            "10.0.0.5",
            "10.0.0.5:80",
            "ops.internal",
            "ops.internal:8081",
            "x.internal",
        ] {
            assert!(!remote.allows(host), "{host}");
        }
        // Names are ignored without allow_remote; an unspecified bind is no Host.
        let config = AdminConfig {
            allow_remote: false,
            ..config
        };
        assert!(!AdminHosts::new(config.addr, &config).allows("admin.internal"));
        let any = AdminHosts::new(
            "0.0.0.0:8081".parse().expect("addr"),
            &AdminConfig::default(),
        );
        assert!(!any.allows("0.0.0.0:8081"));
    }
}
