//! Forwarding a verified request upstream (`docs/paths-and-forwarding.md`): the method, the
//! normalised path, the decoded payload as the body, an **allow-list** of the client's headers
//! (by default [`DEFAULT_FORWARD_HEADERS`](crate::config::DEFAULT_FORWARD_HEADERS), per route `forward_headers`), plus the gateway's own
//! identity headers and `X-Forwarded-For` / `X-Real-IP` set to the client address it verified.
//! Nothing else the client sent reaches the upstream. The response is read in full (at most
//! `max_response_bytes`, within the route's timeout) before it is passed back, so an upstream
//! that fails mid-response still yields a clean 502 or 504.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderName, Response, header};
use whitebit_auth::ApiError;

pub(crate) use crate::edge::upstream::UpstreamClient;

use crate::edge::upstream::OutHeaders;
use crate::edge::wire::{has_token, is_header_value};
use crate::verify::routing::Upstream;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The headers a forwarded request carries (`Host` and `Content-Length` are the sender's):
/// of the client's, only those named in `allowed`, minus any the client's `Connection`
/// header lists; then the gateway's `identity` headers, and `X-Forwarded-For` and
/// `X-Real-IP` set to `client_ip`. They are written straight from the client's header map
/// into the request (no header map rebuilt).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarded<'a> {
    /// The client's headers.
    pub(crate) client: &'a HeaderMap,
    /// The names forwarded (the route's `forward_headers`).
    pub(crate) allowed: &'a [HeaderName],
    /// The gateway's identity headers.
    pub(crate) identity: &'a [(HeaderName, &'a str)],
    /// The client address the gateway verified.
    pub(crate) client_ip: IpAddr,
}

impl OutHeaders for Forwarded<'_> {
    fn each(&self, f: &mut dyn FnMut(&HeaderName, &[u8])) {
        let connection = self.client.get_all(header::CONNECTION);
        let has_connection = connection.iter().next().is_some();
        // One pass over the client's headers, in the order they came (a handful of names
        // compared with a short list costs less than a hashed look-up per allowed name).
        for (name, value) in self.client {
            if !self.allowed.contains(name) {
                continue;
            }
            if has_connection
                && connection
                    .iter()
                    .any(|v| has_token(v.as_bytes(), name.as_str().as_bytes()))
            {
                continue;
            }
            f(name, value.as_bytes());
        }
        for (name, value) in self.identity {
            if is_header_value(value.as_bytes()) {
                f(name, value.as_bytes());
            }
        }
        match self.client_ip {
            IpAddr::V4(v4) => {
                let mut text = [0u8; 15];
                let ip = ipv4_text(v4, &mut text);
                f(&X_FORWARDED_FOR, ip);
                f(&X_REAL_IP, ip);
            }
            IpAddr::V6(_) => {
                let ip = self.client_ip.to_string();
                f(&X_FORWARDED_FOR, ip.as_bytes());
                f(&X_REAL_IP, ip.as_bytes());
            }
        }
    }
}

/// `ip` in dotted decimal, as `Display` writes it, without the formatting machinery (it
/// showed in the per-request instruction counts).
fn ipv4_text(ip: std::net::Ipv4Addr, out: &mut [u8; 15]) -> &[u8] {
    let mut len = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for byte in std::iter::once(b'.')
            .filter(|_| i > 0)
            .chain(digits.into_iter().skip(skip).map(|d| b'0' + d))
        {
            if let Some(slot) = out.get_mut(len) {
                *slot = byte;
                len += 1;
            }
        }
    }
    out.get(..len).unwrap_or_default()
}

/// A request on its way upstream.
#[derive(Debug)]
pub(crate) struct Outbound<'a> {
    /// Upstream base URL (named in logs).
    pub(crate) base: &'a str,
    /// Its `host:port`.
    pub(crate) authority: Option<&'a Authority>,
    /// TLS, for an `https://` upstream.
    pub(crate) tls: Option<&'a crate::verify::upstream_tls::UpstreamTls>,
    /// Upstream timeout.
    pub(crate) timeout: Duration,
    /// Largest response body passed back.
    pub(crate) max_response_bytes: usize,
    /// The normalised path.
    pub(crate) path: &'a str,
    /// The body to send.
    pub(crate) body: bytes::Bytes,
    /// The headers to send.
    pub(crate) headers: Forwarded<'a>,
}

/// Sends a request upstream and passes its answer back once it is complete: 502 when the
/// upstream cannot be reached, breaks the connection before its answer is complete, or answers
/// more than `max_response_bytes`; 504 when the whole answer does not arrive in time. The
/// answer comes without hop-by-hop headers.
pub(crate) async fn send_upstream(
    client: &UpstreamClient,
    out: Outbound<'_>,
) -> Result<Response<Body>, ApiError> {
    let base = out.base;
    let Some(authority) = out.authority else {
        tracing::warn!(target: "wbauth::upstream", upstream = base, "upstream address unusable");
        return Err(ApiError::BadGateway);
    };
    // The head and the body under one timeout (waiting for a free connection included): an
    // answer cut or stalled half way must not reach the client as a 200 with a broken body.
    let exchange = client.send(
        authority,
        out.tls,
        out.path,
        &out.headers,
        out.body,
        out.max_response_bytes,
    );
    match tokio::time::timeout(out.timeout, exchange).await {
        Err(_) => {
            tracing::warn!(target: "wbauth::upstream", upstream = base, "upstream timed out");
            Err(ApiError::GatewayTimeout)
        }
        Ok(Err(error)) => {
            let error = error.to_string();
            tracing::warn!(target: "wbauth::upstream", upstream = base, error = %error, "upstream failed");
            Err(ApiError::BadGateway)
        }
        Ok(Ok((parts, body))) => Ok(Response::from_parts(parts, Body::from(body))),
    }
}

/// An accepted request as it goes upstream.
#[derive(Debug)]
pub(crate) struct Delivery<'a> {
    /// The normalised path.
    pub(crate) path: &'a str,
    /// The body: a private request's decoded payload (exactly the signed bytes), a Fiat
    /// request's body as received.
    pub(crate) body: bytes::Bytes,
    /// The gateway's identity headers (`X-Auth-Key` and `X-Auth-Account`, or
    /// `X-Auth-Partner`).
    pub(crate) identity: &'a [(HeaderName, &'a str)],
    /// The client address the gateway verified (`X-Forwarded-For`, `X-Real-IP`).
    pub(crate) client_ip: IpAddr,
}

/// Forwards an accepted request to `upstream` with the allow-listed client headers.
pub(crate) async fn forward(
    client: &UpstreamClient,
    upstream: &Upstream,
    max_response_bytes: usize,
    client_headers: &HeaderMap,
    delivery: Delivery<'_>,
) -> Result<Response<Body>, ApiError> {
    let headers = Forwarded {
        client: client_headers,
        allowed: &upstream.forward_headers,
        identity: delivery.identity,
        client_ip: delivery.client_ip,
    };
    send_upstream(
        client,
        Outbound {
            base: &upstream.base,
            authority: upstream.authority.as_ref(),
            tls: upstream.tls.as_ref(),
            timeout: Duration::from_millis(upstream.timeout_ms),
            max_response_bytes,
            path: delivery.path,
            body: delivery.body,
            headers,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::HeaderValue;

    use super::*;
    use crate::config::{check_forward_header, default_forward_headers};

    /// What `Forwarded` writes, as a header map.
    fn upstream_headers(
        client: &HeaderMap,
        allowed: &[HeaderName],
        identity: &[(HeaderName, &str)],
        client_ip: IpAddr,
    ) -> HeaderMap {
        let forwarded = Forwarded {
            client,
            allowed,
            identity,
            client_ip,
        };
        let mut out = HeaderMap::new();
        forwarded.each(&mut |name, value| {
            out.append(name.clone(), HeaderValue::from_bytes(value).expect("value"));
        });
        out
    }

    fn client_headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn only_allow_listed_client_headers_pass() {
        let client = client_headers(&[
            ("accept", "application/json"),
            ("user-agent", "bot/1"),
            ("x-request-id", "r-1"),
            ("x-original-url", "/api/v4/main-account/withdraw"),
            ("x-http-method-override", "DELETE"),
            ("x_auth_account", "victim"),
            ("x-auth-account", "victim"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
            ("authorization", "Bearer x"),
            ("cookie", "s=1"),
            ("x-txc-apikey", "k"),
            ("x-custom", "1"),
            ("content-length", "999"),
            ("connection", "x-request-id"),
        ]);
        let identity = [(HeaderName::from_static("x-auth-account"), "alice")];
        let ip = IpAddr::from([198, 51, 100, 7]);
        let out = upstream_headers(&client, &default_forward_headers(), &identity, ip);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        // X-Request-Id is named in the client's Connection header: hop-by-hop, dropped.
        assert_eq!(
            names,
            [
                "accept",
                "user-agent",
                "x-auth-account",
                "x-forwarded-for",
                "x-real-ip"
            ]
        );
        assert_eq!(out["x-auth-account"], "alice");
        assert_eq!(out["x-forwarded-for"], "198.51.100.7");
        assert_eq!(out.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(out["x-real-ip"], "198.51.100.7");
        // The client's Content-Length never passes: the sender writes the body's own.
        assert!(out.get("content-length").is_none());
    }

    #[test]
    fn ipv4_text_is_what_display_writes() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.10.100.99",
        ] {
            let parsed: std::net::Ipv4Addr = ip.parse().expect("ip");
            let mut buf = [0u8; 15];
            assert_eq!(ipv4_text(parsed, &mut buf), ip.as_bytes());
        }
    }

    #[test]
    fn a_route_list_replaces_the_default() {
        let client = client_headers(&[("accept", "a"), ("x-tenant", "t1"), ("x-tenant", "t2")]);
        let allowed: Arc<[HeaderName]> = [check_forward_header("X-Tenant").expect("valid")].into();
        let out = upstream_headers(&client, &allowed, &[], IpAddr::from([127, 0, 0, 1]));
        assert!(out.get("accept").is_none());
        assert_eq!(out.get_all("x-tenant").iter().count(), 2);
    }
}
