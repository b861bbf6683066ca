//! Errors, and the parsing of every error shape the service (and its relatives) send.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;
use whitebit_auth::sign::BuildError;

/// What kind of failure the server reported: what a caller usually branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The nonce was refused (not increasing, reused, or outside the ±5 s window). Safe to
    /// retry with a fresh nonce.
    NonceRejected,
    /// A rate limit. Safe to retry after `Retry-After`.
    RateLimited,
    /// The signature, API key or secret is wrong (or a header is missing).
    Unauthorized,
    /// The key is disabled or deactivated, or the client IP is not on its allow-list.
    KeyDisabled,
    /// The key may not use this endpoint.
    EndpointForbidden,
    /// The payload header does not match the body (or is not valid base64 JSON).
    InvalidPayload,
    /// The request was malformed or failed validation; see [`ApiFailure::errors`].
    Validation,
    /// The endpoint does not exist.
    NotFound,
    /// The server (or something behind it) failed.
    Server,
    /// Anything else.
    Other,
}

/// An error answer from the server, in any of the shapes seen in the wild:
/// `{code, message, errors}`, `{success: false, message, params}`, and the legacy
/// `{message: [[…]], result, success}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: u16,
    /// Classification.
    pub kind: ErrorKind,
    /// The `code` field, when present.
    pub code: Option<i64>,
    /// The human-readable message.
    pub message: String,
    /// Field → messages (validation errors), possibly empty.
    pub errors: BTreeMap<String, Vec<String>>,
    /// The `Retry-After` header, when sent.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for (field, messages) in &self.errors {
            write!(f, "; {field}: {}", messages.join(" "))?;
        }
        Ok(())
    }
}

impl ApiFailure {
    /// Parses an error response. Bodies that are not JSON still produce a failure, with the
    /// status's reason as the message.
    #[must_use]
    pub fn parse(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let code = value.get("code").and_then(Value::as_i64);
        let mut errors = BTreeMap::new();
        for field in ["errors", "params"] {
            if let Some(Value::Object(map)) = value.get(field) {
                collect_field_errors(map, &mut errors);
            }
        }
        let message = match value.get("message") {
            Some(Value::String(s)) => s.clone(),
            // Legacy: {"message": [["text", ...], ...]}, or a field map.
            Some(Value::Array(items)) => flatten_strings(items).join(" "),
            Some(Value::Object(map)) => {
                collect_field_errors(map, &mut errors);
                "Validation failed".to_owned()
            }
            _ => match value.get("error") {
                Some(Value::String(s)) => s.clone(),
                _ => fallback_message(status, body),
            },
        };
        let kind = classify(status, code, &message, !errors.is_empty());
        Self {
            status,
            kind,
            code,
            message,
            errors,
            retry_after,
        }
    }
}

fn flatten_strings(items: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::String(s) => out.push(s.clone()),
            Value::Array(inner) => out.extend(flatten_strings(inner)),
            Value::Number(n) => out.push(n.to_string()),
            _ => {}
        }
    }
    out
}

fn collect_field_errors(
    map: &serde_json::Map<String, Value>,
    out: &mut BTreeMap<String, Vec<String>>,
) {
    for (field, messages) in map {
        let list = match messages {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => flatten_strings(items),
            other => vec![other.to_string()],
        };
        out.entry(field.clone()).or_default().extend(list);
    }
}

fn fallback_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.len() > 200 {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

fn classify(status: u16, code: Option<i64>, message: &str, has_field_errors: bool) -> ErrorKind {
    let m = message.to_ascii_lowercase();
    if m.starts_with("your nonce is more than") || m.starts_with("too many requests") {
        return ErrorKind::NonceRejected;
    }
    if status == 429 {
        return ErrorKind::RateLimited;
    }
    if m.starts_with("this action is unauthorized") || (code == Some(2) && status == 401) {
        return ErrorKind::KeyDisabled;
    }
    if m.starts_with("invalid payload") || code == Some(9) {
        return ErrorKind::InvalidPayload;
    }
    if status == 403 || m.contains("permission to use this endpoint") {
        return ErrorKind::EndpointForbidden;
    }
    match status {
        401 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        500..=599 => ErrorKind::Server,
        400 | 422 => ErrorKind::Validation,
        _ if has_field_errors => ErrorKind::Validation,
        _ => ErrorKind::Other,
    }
}

/// The client's error type. Transport errors never carry the request URL (nothing secret is
/// in it today, but errors get logged and URLs tend to grow query strings).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error.
    #[error("{0}")]
    Api(ApiFailure),
    /// The request could not be sent or the response not read. The message carries the
    /// whole chain of causes (a refused certificate, a refused connection, a timeout), each
    /// said once; the reqwest error (without its URL) is kept for inspection.
    #[error("transport error: {}", causes(.0))]
    Transport(reqwest::Error),
    /// The server answered 2xx with something that is not the expected JSON.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The parameters could not be turned into a request body.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// The request could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The server answered a signed request with a redirect (3xx). It was not followed:
    /// sending the signed headers and body on would let whoever receives them replay the
    /// request. `location` is the target without user name, password, query or fragment.
    #[error(
        "the server answered {status} {reason} (a redirect{to}); it was not followed, since \
         that would send the signed request to another address where it could be replayed: \
         use the base URL that answers directly",
        reason = redirect_reason(*status),
        to = location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default()
    )]
    Redirect {
        /// The HTTP status (301, 302, 303, 307, 308, …).
        status: u16,
        /// Where it pointed: `scheme://host[:port]/path`, when the `Location` header parsed.
        location: Option<String>,
    },
    /// The client is not configured correctly.
    #[error("configuration error: {0}")]
    Config(String),
}

fn redirect_reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Redirect")
}

impl Error {
    /// The server's failure, when this is one.
    #[must_use]
    pub fn api(&self) -> Option<&ApiFailure> {
        match self {
            Error::Api(failure) => Some(failure),
            _ => None,
        }
    }

    /// The failure kind, when the server answered.
    #[must_use]
    pub fn kind(&self) -> Option<ErrorKind> {
        self.api().map(|f| f.kind)
    }

    pub(crate) fn transport(e: reqwest::Error) -> Self {
        // Without the URL: it may carry a query or credentials.
        Error::Transport(e.without_url())
    }

    /// A redirect answer to a request sent to `url`: its status and where it pointed, without
    /// credentials, query or fragment (they may carry secrets).
    pub(crate) fn redirect(status: u16, url: &reqwest::Url, location: Option<&str>) -> Self {
        let location = location
            .and_then(|l| url.join(l).ok())
            .map(|target| shown_target(&target));
        Error::Redirect { status, location }
    }
}

/// `scheme://host[:port]/path` of a URL: no user name, password, query or fragment.
pub(crate) fn shown_target(target: &reqwest::Url) -> String {
    // IPv6 hosts come in brackets.
    let host = target.host_str().unwrap_or_default();
    let port = target.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{host}{port}{}", target.scheme(), target.path())
}

impl Error {}

pub use whitebit_auth::error::causes;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &str) -> ApiFailure {
        ApiFailure::parse(status, body.as_bytes(), None)
    }

    #[test]
    fn every_catalogue_error_is_classified() {
        use whitebit_auth::ApiError as E;
        for e in E::ALL {
            let f = parse(e.status(), e.body());
            assert_eq!(f.message, e.message());
            let expected = match e {
                E::NonceTooOld | E::NonceTooNew | E::NonceReused | E::NonceNotIncreasing => {
                    ErrorKind::NonceRejected
                }
                E::RateLimited => ErrorKind::RateLimited,
                E::ApiKeyNotProvided
                | E::PayloadNotProvided
                | E::SignatureNotProvided
                | E::Unauthorized => ErrorKind::Unauthorized,
                E::KeyDisabled => ErrorKind::KeyDisabled,
                E::EndpointForbidden => ErrorKind::EndpointForbidden,
                E::InvalidPayload => ErrorKind::InvalidPayload,
                E::EndpointNotFound => ErrorKind::NotFound,
                E::BadGateway | E::GatewayTimeout | E::ServiceUnavailable => ErrorKind::Server,
                E::MethodNotAllowed | E::PayloadTooLarge | E::UnsupportedMediaType => {
                    ErrorKind::Other
                }
                _ => ErrorKind::Validation,
            };
            assert_eq!(f.kind, expected, "{e:?}");
        }
    }

    #[test]
    fn redirects_name_their_target_without_secrets() {
        let url = reqwest::Url::parse("http://127.0.0.1:9/api/v4/x").expect("url");
        let e = Error::redirect(
            307,
            &url,
            Some("https://u:p4ss@other.example:8443/y?sig=1#f"),
        );
        assert_eq!(
            e.to_string(),
            "the server answered 307 Temporary Redirect (a redirect to \
             https://other.example:8443/y); it was not followed, since that would send the \
             signed request to another address where it could be replayed: use the base URL \
             that answers directly"
        );
        let e = Error::redirect(308, &url, Some("/elsewhere?token=1"));
        assert!(
            e.to_string()
                .contains("308 Permanent Redirect (a redirect to http://127.0.0.1:9/elsewhere)"),
            "{e}"
        );
        let e = Error::redirect(302, &url, None);
        assert!(e.to_string().contains("302 Found (a redirect);"), "{e}");
        assert_eq!(e.kind(), None);
    }

    #[test]
    fn shapes_from_the_wild() {
        let v = parse(
            400,
            r#"{"code":0,"message":"Validation failed","errors":{"request":["The request field is required."],"nonce":["The nonce field is required."]}}"#,
        );
        assert_eq!(v.kind, ErrorKind::Validation);
        assert_eq!(v.errors["nonce"], ["The nonce field is required."]);
        assert_eq!(
            v.to_string(),
            "Validation failed; nonce: The nonce field is required.; request: The request field is required."
        );

        let s = parse(
            422,
            r#"{"success":false,"message":"Inner validation failed","params":{"amount":["Amount must be greater than 0"]}}"#,
        );
        assert_eq!(
            (s.kind, s.message.as_str()),
            (ErrorKind::Validation, "Inner validation failed")
        );
        assert_eq!(s.errors["amount"], ["Amount must be greater than 0"]);

        let legacy = parse(
            400,
            r#"{"message":[["Unauthorized request."]],"result":[],"success":false}"#,
        );
        assert_eq!(legacy.message, "Unauthorized request.");

        let jwt = parse(
            401,
            r#"{"code":0,"message":"Invalid API key, signature, or nonce"}"#,
        );
        assert_eq!(jwt.kind, ErrorKind::Unauthorized);

        let html = parse(502, "<html>bad gateway</html>");
        assert_eq!(
            (html.kind, html.message.as_str()),
            (ErrorKind::Server, "HTTP 502: <html>bad gateway</html>")
        );
        assert_eq!(parse(503, "").message, "HTTP 503");
    }
}
