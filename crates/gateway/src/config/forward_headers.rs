//! Which client headers a route may forward: the default allow-list and the names never
//! forwarded whatever a route lists.

use std::sync::Arc;

use axum::http::HeaderName;

pub(crate) const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

/// The client headers forwarded when a route names none.
pub const DEFAULT_FORWARD_HEADERS: [&str; 5] = [
    "accept",
    "accept-language",
    "user-agent",
    "content-type",
    "x-request-id",
];

/// Names a route may never forward, whatever it lists: credentials, headers that make some
/// servers route or dispatch differently, framing, and those the gateway sets itself.
const NEVER_FORWARDED: [&str; 15] = [
    "authorization",
    "cookie",
    "host",
    "content-length",
    "forwarded",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-original-method",
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
    "x-envoy-original-path",
    "x-client-ip",
    "true-client-ip",
];

/// Name prefixes never forwarded (the gateway's own and the client's signature headers, and
/// proxy metadata the gateway sets itself).
const NEVER_FORWARDED_PREFIXES: [&str; 4] = ["x-txc-", "x-auth-", "x-forwarded-", "proxy-"];

/// Checks a name for a route's `forward_headers`; returns it parsed (lowercase).
pub(crate) fn check_forward_header(name: &str) -> Result<HeaderName, String> {
    let lower = name.to_ascii_lowercase();
    if lower.contains('_') {
        return Err(format!(
            "{name:?}: a name with '_' is never forwarded (some servers read it as '-' and \
             merge it with the real header); use the '-' spelling"
        ));
    }
    let parsed = HeaderName::from_bytes(lower.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    if NEVER_FORWARDED.contains(&lower.as_str())
        || HOP_BY_HOP.contains(&lower.as_str())
        || NEVER_FORWARDED_PREFIXES
            .iter()
            .any(|p| lower.starts_with(p))
    {
        return Err(format!(
            "{name:?} is never forwarded (the gateway sets or strips it; list only \
             application headers such as Accept or X-Request-Id)"
        ));
    }
    Ok(parsed)
}

/// The default allow-list, parsed.
#[must_use]
pub(crate) fn default_forward_headers() -> Arc<[HeaderName]> {
    DEFAULT_FORWARD_HEADERS
        .iter()
        .map(|n| HeaderName::from_static(n))
        .collect()
}
