//! Where a request goes, decided once from its method and URL path: a public GET route, a
//! Fiat Gateway route (a token instead of an HMAC signature), or a private endpoint served by
//! the gateway itself (the token endpoint, the sandbox's built-in answers) or by an upstream.

use std::sync::Arc;

use axum::http::uri::Authority;
use axum::http::{HeaderName, Method, Uri};
use whitebit_auth::path::{normalize_path, path_has_prefix};
use whitebit_auth::verify::JWT_ENDPOINT_PATH;

use crate::config::{Config, RouteConfig};
use crate::verify::upstream_tls::UpstreamTls;

/// An upstream that a route forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upstream {
    /// Base URL (`http://host:port`).
    pub(crate) base: String,
    /// Its `host:port` (none when the base cannot be read as one: every request then 502s).
    pub(crate) authority: Option<Authority>,
    /// Timeout in ms.
    pub(crate) timeout_ms: u64,
    /// The client headers forwarded (the route's `forward_headers` or the default list).
    pub(crate) forward_headers: Arc<[HeaderName]>,
    /// TLS, for an `https://` upstream.
    pub(crate) tls: Option<UpstreamTls>,
}

/// Where a verified private request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Forward to an upstream.
    Upstream(Upstream),
    /// Answer inside the gateway (the sandbox's built-in responses).
    Builtin,
    /// `POST /api/v4/jwt`: issue a token to the key's account.
    IssueToken,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination<'a> {
    /// `GET /.well-known/jwks.json`: the token keys.
    Jwks,
    /// `GET /api/v4/public/time` (sandbox only): the server's clock.
    Time,
    /// A Fiat Gateway route: rows 1, 2 and the 415 check, then the token checks.
    Fiat(&'a Upstream),
    /// A private endpoint: every row of the check table. `None`: no route serves the path
    /// (404 after row 13).
    Private(Option<&'a Target>),
}

impl Destination<'_> {
    /// Whether refusals take the token endpoint's answer shapes.
    #[must_use]
    pub(crate) fn is_token_endpoint(&self) -> bool {
        matches!(self, Destination::Private(Some(Target::IssueToken)))
    }
}

/// Who answers the requests that pass every check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Answers {
    /// The upstreams of the configured routes (`wbauth serve`).
    #[default]
    Upstreams,
    /// The sandbox's built-in answers: balances, and an echo of every other verified request.
    BuiltIn,
}

/// The route tables, longest prefix first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    private: Vec<(String, Target)>,
    fiat: Vec<(String, Upstream)>,
    sandbox: bool,
}

impl Routes {
    /// The configured routes; with [`Answers::BuiltIn`] (the sandbox) the gateway answers
    /// every private path no configured route serves itself, and serves the public time route.
    ///
    /// # Errors
    /// An `https://` route whose TLS files cannot be used (the message names the route).
    pub(crate) fn new(config: &Config, answers: Answers) -> Result<Self, String> {
        let mut private = table(&config.routes, "route", Target::Upstream)?;
        let sandbox = answers == Answers::BuiltIn;
        if sandbox {
            // The shortest prefix: last.
            private.push(("/".to_owned(), Target::Builtin));
        }
        Ok(Self {
            private,
            fiat: table(&config.fiat.routes, "fiat.route", |upstream| upstream)?,
            sandbox,
        })
    }

    /// Where a request for `uri` with `method` goes.
    #[must_use]
    pub(crate) fn destination(&self, method: &Method, uri: &Uri) -> Destination<'_> {
        let raw = uri.path();
        if method == Method::GET {
            if raw == "/.well-known/jwks.json" {
                return Destination::Jwks;
            }
            if self.sandbox && raw == "/api/v4/public/time" {
                return Destination::Time;
            }
        }
        let Ok(path) = normalize_path(raw) else {
            // Refused at row 8 (the path rule) before any route matters.
            return Destination::Private(None);
        };
        if uri.query().is_none()
            && let Some(target) = find(&self.fiat, &path)
        {
            return Destination::Fiat(target);
        }
        Destination::Private(self.private_target(&path))
    }

    /// The private route serving `path` (normalised).
    #[must_use]
    pub(crate) fn private_target(&self, path: &str) -> Option<&Target> {
        if path == JWT_ENDPOINT_PATH {
            return Some(&Target::IssueToken);
        }
        find(&self.private, path)
    }
}

fn find<'a, T>(table: &'a [(String, T)], path: &str) -> Option<&'a T> {
    table
        .iter()
        .find(|(prefix, _)| path_has_prefix(path, prefix))
        .map(|(_, target)| target)
}

/// A route table, longest prefix first.
fn table<T>(
    routes: &[RouteConfig],
    section: &str,
    target: impl Fn(Upstream) -> T,
) -> Result<Vec<(String, T)>, String> {
    let mut table = Vec::with_capacity(routes.len());
    for (i, route) in routes.iter().enumerate() {
        let upstream = upstream(route).map_err(|e| format!("{section}[{i}].{e}"))?;
        table.push((route.prefix.clone(), target(upstream)));
    }
    table.sort_by_key(|r: &(String, T)| std::cmp::Reverse(r.0.len()));
    Ok(table)
}

fn upstream(route: &RouteConfig) -> Result<Upstream, String> {
    let base = route.upstream.trim_end_matches('/');
    let authority: Option<Authority> = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .and_then(|a| a.parse().ok());
    let host = authority.as_ref().map_or("", |a| {
        let host = a.host();
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    });
    let tls = UpstreamTls::for_route(route, host)?;
    Ok(Upstream {
        base: base.to_owned(),
        authority,
        tls,
        timeout_ms: route.timeout_ms,
        forward_headers: route.forward_headers.as_ref().map_or_else(
            crate::config::default_forward_headers,
            |names| {
                names
                    .iter()
                    .filter_map(|n| crate::config::check_forward_header(n).ok())
                    .collect()
            },
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        let config = Config::from_toml(
            "[[route]]\nprefix = \"/api/v4\"\nupstream = \"http://127.0.0.1:1\"\n\
             [[route]]\nprefix = \"/api/v4/order\"\nupstream = \"http://127.0.0.1:2\"\n\
             [[fiat.route]]\nprefix = \"/api/v1/fiat\"\nupstream = \"http://127.0.0.1:3\"\n",
            "gateway.toml",
            &[],
        )
        .expect("config");
        Routes::new(&config, Answers::Upstreams).expect("routes")
    }

    fn base(d: Destination<'_>) -> Option<String> {
        match d {
            Destination::Private(Some(Target::Upstream(Upstream { base, .. })))
            | Destination::Fiat(Upstream { base, .. }) => Some(base.clone()),
            _ => None,
        }
    }

    #[test]
    fn each_request_goes_one_way() {
        let r = routes();
        let at = |method: Method, uri: &str| r.destination(&method, &uri.parse().expect("uri"));
        assert_eq!(at(Method::GET, "/.well-known/jwks.json"), Destination::Jwks);
        // Only the sandbox serves the time; elsewhere it is a private path like any other.
        assert_eq!(
            base(at(Method::GET, "/api/v4/public/time")).as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert!(at(Method::POST, "/api/v4/jwt").is_token_endpoint());
        assert!(at(Method::POST, "//api/v4//jwt").is_token_endpoint());
        assert_eq!(
            base(at(Method::POST, "/api/v4/order/new")).as_deref(),
            Some("http://127.0.0.1:2")
        );
        assert_eq!(
            base(at(Method::POST, "/api/v4/orders")).as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert!(matches!(
            at(Method::POST, "/api/v1/fiat/deposit"),
            Destination::Fiat(_)
        ));
        // A query is never a Fiat request: it goes the HMAC way and meets row 8.
        assert!(matches!(
            at(Method::POST, "/api/v1/fiat/deposit?x=1"),
            Destination::Private(None)
        ));
        assert_eq!(at(Method::POST, "/other"), Destination::Private(None));
        assert_eq!(
            at(Method::POST, "/api/v4/%2e%2e/x"),
            Destination::Private(None)
        );

        let sandbox = Routes::new(&Config::default(), Answers::BuiltIn).expect("routes");
        let at =
            |method: Method, uri: &str| sandbox.destination(&method, &uri.parse().expect("uri"));
        assert_eq!(at(Method::GET, "/api/v4/public/time"), Destination::Time);
        assert_eq!(
            at(Method::POST, "/anything"),
            Destination::Private(Some(&Target::Builtin))
        );
        assert!(at(Method::POST, "/api/v4/jwt").is_token_endpoint());
    }
}
