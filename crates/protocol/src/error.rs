//! The error catalogue of `docs/errors.md`: every variant knows its HTTP status and its exact
//! JSON body, byte for byte.

use crate::json::write_string;

macro_rules! catalogue {
    ($( $(#[$doc:meta])* $variant:ident => ($row:expr, $status:expr, $body:expr) ),+ $(,)?) => {
        /// A rejection of an HMAC-signed private request (`docs/errors.md`, first table, and
        /// the rows after it). The same enum serves the gateway (which answers with it) and
        /// the client (which recognises it).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
        #[non_exhaustive]
        pub enum ApiError {
            $( $(#[$doc])* #[error("{}", message_of($body))] $variant, )+
        }

        impl ApiError {
            /// Every variant, in catalogue order.
            pub const ALL: &'static [ApiError] = &[ $(ApiError::$variant),+ ];

            /// The row of `docs/errors.md` (`"16a"`, `"415"` …), for logs and metrics labels.
            #[must_use]
            pub const fn row(self) -> &'static str {
                match self { $(ApiError::$variant => $row),+ }
            }

            /// The HTTP status code.
            #[must_use]
            pub const fn status(self) -> u16 {
                match self { $(ApiError::$variant => $status),+ }
            }

            /// The exact JSON body.
            #[must_use]
            pub const fn body(self) -> &'static str {
                match self { $(ApiError::$variant => $body),+ }
            }
        }
    };
}

/// Extracts the `message` value of a catalogue body (for `Display`).
fn message_of(body: &'static str) -> &'static str {
    const KEY: &str = "\"message\":\"";
    body.find(KEY)
        .map(|start| {
            let rest = &body[start + KEY.len()..];
            rest.find('"').map_or(rest, |end| &rest[..end])
        })
        .unwrap_or(body)
}

catalogue! {
    /// Row 1: the method is not POST (answer with `Allow: POST`).
    MethodNotAllowed => ("1", 405, r#"{"code":0,"message":"Method not allowed."}"#),
    /// Row 2: the body is over the size limit.
    PayloadTooLarge => ("2", 413, r#"{"code":0,"message":"Payload too large."}"#),
    /// After row 2: a `Content-Type` other than JSON.
    UnsupportedMediaType => ("415", 415, r#"{"code":0,"message":"Content-Type must be application/json."}"#),
    /// Row 3: `X-TXC-APIKEY` missing or empty.
    ApiKeyNotProvided => ("3", 401, r#"{"code":0,"message":"API key not provided."}"#),
    /// Row 4: `X-TXC-PAYLOAD` missing or empty.
    PayloadNotProvided => ("4", 401, r#"{"code":0,"message":"Payload not provided."}"#),
    /// Row 5: `X-TXC-SIGNATURE` missing or empty.
    SignatureNotProvided => ("5", 401, r#"{"code":0,"message":"Signature not provided."}"#),
    /// Row 6: the payload is not strict base64 of the body, or not a JSON object without
    /// duplicate keys.
    InvalidPayload => ("6", 400, r#"{"code":9,"message":"Invalid payload."}"#),
    /// Row 7: `request` absent, `null` or not a string.
    RequestNotProvided => ("7", 400, r#"{"code":0,"message":"Request not provided."}"#),
    /// Row 8: `request` differs from the URL path (or the path is not acceptable).
    RequestPathMismatch => ("8", 400, r#"{"code":0,"message":"Request does not match the endpoint path."}"#),
    /// Row 9: `nonce` absent or `null`.
    NonceNotProvided => ("9", 400, r#"{"code":0,"message":"Nonce not provided."}"#),
    /// Row 10: `nonce` is not a u64 given as a JSON integer or a canonical digit string.
    InvalidNonce => ("10", 400, r#"{"code":0,"message":"Invalid nonce."}"#),
    /// Row 11: `nonceWindow` present but not a boolean.
    InvalidNonceWindow => ("11", 400, r#"{"code":0,"message":"Invalid nonceWindow."}"#),
    /// Row 12: unknown key or wrong signature (indistinguishable on purpose).
    Unauthorized => ("12", 401, r#"{"code":10,"message":"Unauthorized request."}"#),
    /// Row 13: the key is disabled, idle-deactivated, or the client IP is not allowed.
    KeyDisabled => ("13", 401, r#"{"code":2,"message":"This action is unauthorized. Enable your key in API settings"}"#),
    /// Row 14: the key's kind or endpoint allow-list does not open this path.
    EndpointForbidden => ("14", 403, r#"{"code":0,"message":"You don't have permission to use this endpoint."}"#),
    /// Row 15: the per-key rate limit (answer with `Retry-After`).
    RateLimited => ("15", 429, r#"{"code":0,"message":"Rate limit exceeded."}"#),
    /// Row 16a: window mode, nonce more than 5 s behind server time.
    NonceTooOld => ("16a", 429, r#"{"code":0,"message":"Your nonce is more than 5 seconds lesser than the current nonce."}"#),
    /// Row 16a: window mode, nonce more than 5 s ahead of server time.
    NonceTooNew => ("16a", 429, r#"{"code":0,"message":"Your nonce is more than 5 seconds greater than the current nonce."}"#),
    /// Row 16b: window mode, nonce already used by this key.
    NonceReused => ("16b", 429, r#"{"code":0,"errors":{},"message":"Too many requests."}"#),
    /// Row 16c: strict mode, nonce not above the key's last accepted nonce.
    NonceNotIncreasing => ("16c", 429, r#"{"code":0,"errors":{},"message":"Too many requests."}"#),
    /// After rows 1–13: no route serves this path.
    EndpointNotFound => ("404", 404, r#"{"code":0,"message":"Endpoint not found."}"#),
    /// After acceptance: the upstream could not be reached.
    BadGateway => ("502", 502, r#"{"code":0,"message":"Bad gateway."}"#),
    /// After acceptance: the upstream timed out.
    GatewayTimeout => ("504", 504, r#"{"code":0,"message":"Gateway timeout."}"#),
    /// A store could not be reached (answer with `Retry-After`); fail closed.
    ServiceUnavailable => ("503", 503, r#"{"code":0,"message":"Service temporarily unavailable."}"#),
}

impl ApiError {
    /// The `message` text of the body (what clients in the wild match on).
    #[must_use]
    pub fn message(self) -> &'static str {
        message_of(self.body())
    }

    /// Whether the answer carries a `Retry-After` header.
    #[must_use]
    pub const fn has_retry_after(self) -> bool {
        matches!(self, ApiError::RateLimited | ApiError::ServiceUnavailable)
    }

    /// Whether this is one of the nonce rejections of row 16.
    #[must_use]
    pub const fn is_nonce_rejection(self) -> bool {
        matches!(
            self,
            ApiError::NonceTooOld
                | ApiError::NonceTooNew
                | ApiError::NonceReused
                | ApiError::NonceNotIncreasing
        )
    }

    /// How `POST /api/v4/jwt` answers this failure (`docs/design-decisions.md` 20): rows 1, 2, 15, the
    /// 415 and the store outage keep their own answers; rows 3–6, 8–14 and 16 become
    /// 401 "Invalid API key, signature, or nonce". (Rows 7 and 9 are reported together
    /// as [`JwtEndpointError::ValidationFailed`] by the verifier itself.)
    #[must_use]
    pub const fn for_jwt_endpoint(self) -> JwtEndpointError {
        match self {
            ApiError::MethodNotAllowed
            | ApiError::PayloadTooLarge
            | ApiError::UnsupportedMediaType
            | ApiError::RateLimited
            | ApiError::ServiceUnavailable
            | ApiError::EndpointNotFound
            | ApiError::BadGateway
            | ApiError::GatewayTimeout => JwtEndpointError::Api(self),
            ApiError::RequestNotProvided => JwtEndpointError::ValidationFailed {
                request_missing: true,
                nonce_missing: false,
            },
            ApiError::NonceNotProvided => JwtEndpointError::ValidationFailed {
                request_missing: false,
                nonce_missing: true,
            },
            _ => JwtEndpointError::InvalidCredentials,
        }
    }
}

/// The answers of `POST /api/v4/jwt` other than success (`docs/errors.md`, second table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtEndpointError {
    /// 400 "Validation failed" naming only the missing fields.
    #[error("Validation failed")]
    ValidationFailed {
        /// `request` is missing.
        request_missing: bool,
        /// `nonce` is missing.
        nonce_missing: bool,
    },
    /// 401 for any failure of checks 3–6, 8–14 and 16.
    #[error("Invalid API key, signature, or nonce")]
    InvalidCredentials,
    /// 500: no usable token-signing key.
    #[error("Server configuration issues")]
    ServerConfiguration,
    /// An answer this endpoint shares with every private endpoint.
    #[error("{0}")]
    Api(ApiError),
}

impl JwtEndpointError {
    /// The HTTP status code.
    #[must_use]
    pub const fn status(&self) -> u16 {
        match self {
            JwtEndpointError::ValidationFailed { .. } => 400,
            JwtEndpointError::InvalidCredentials => 401,
            JwtEndpointError::ServerConfiguration => 500,
            JwtEndpointError::Api(e) => e.status(),
        }
    }

    /// The exact JSON body.
    #[must_use]
    pub fn body(&self) -> String {
        match self {
            JwtEndpointError::ValidationFailed {
                request_missing,
                nonce_missing,
            } => {
                let mut fields = Vec::new();
                if *request_missing {
                    fields.push(r#""request":["The request field is required."]"#);
                }
                if *nonce_missing {
                    fields.push(r#""nonce":["The nonce field is required."]"#);
                }
                format!(
                    r#"{{"code":0,"message":"Validation failed","errors":{{{}}}}}"#,
                    fields.join(",")
                )
            }
            JwtEndpointError::InvalidCredentials => {
                r#"{"code":0,"message":"Invalid API key, signature, or nonce"}"#.to_owned()
            }
            JwtEndpointError::ServerConfiguration => {
                r#"{"code":0,"message":"Server configuration issues"}"#.to_owned()
            }
            JwtEndpointError::Api(e) => e.body().to_owned(),
        }
    }
}

/// Why a Fiat Gateway token was refused (`docs/design-decisions.md` 23); each reason is the exact text
/// placed in `errors.token[0]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRejection {
    /// `Authorization` missing or not one token.
    #[error("Token missing.")]
    Missing,
    /// Not three strict base64url parts, header or claims not a JSON object, duplicate or
    /// missing claims.
    #[error("Malformed token.")]
    Malformed,
    /// Header `alg` is not the one algorithm allowed.
    #[error("Algorithm not allowed.")]
    AlgorithmNotAllowed,
    /// Unknown or disabled partner, or wrong signature.
    #[error("Invalid token signature.")]
    InvalidSignature,
    /// `key` claim differs from `x-auth-key`.
    #[error("Key mismatch.")]
    KeyMismatch,
    /// `url` claim differs from the request path.
    #[error("URL mismatch.")]
    UrlMismatch,
    /// `iat`/`exp` not integers, `iat` in seconds, or `exp <= iat`.
    #[error("Invalid token times.")]
    InvalidTimes,
    /// `exp - iat > 60000`.
    #[error("Token lifetime over 60 seconds.")]
    LifetimeTooLong,
    /// `iat` later than now plus the leeway.
    #[error("Token issued in the future.")]
    IssuedInFuture,
    /// `now >= exp`.
    #[error("Token expired.")]
    Expired,
    /// A gateway-issued token's `aud` does not name this audience.
    #[error("Invalid token audience.")]
    InvalidAudience,
    /// The request body lacks an order field.
    #[error("Order fields missing.")]
    OrderFieldsMissing,
    /// The `signature` claim differs from the order signature of the body.
    #[error("Order signature mismatch.")]
    OrderSignatureMismatch,
    /// The token was seen before.
    #[error("Token already used.")]
    AlreadyUsed,
    /// A gateway-issued token whose API key is disabled by an operator or deactivated after
    /// a period without use.
    #[error("API key disabled or deactivated: enable it, then request a new token.")]
    KeyDisabled,
    /// A gateway-issued token whose API key was deleted, or whose secret was changed since
    /// the token was issued.
    #[error("API key deleted or its secret changed: request a new token.")]
    KeyReplaced,
}

impl TokenRejection {
    /// The HTTP status code (always 401).
    #[must_use]
    pub const fn status(self) -> u16 {
        401
    }

    /// The exact JSON body.
    #[must_use]
    pub fn body(self) -> String {
        let mut reason = String::new();
        write_string(&self.to_string(), &mut reason);
        format!(
            r#"{{"code":0,"message":"Request authorization failed","errors":{{"token":[{reason}]}}}}"#
        )
    }
}

/// An error and its causes as one line, a message repeated by a wrapper said once
/// (`error sending request: invalid peer certificate: UnknownIssuer`): what to show for a
/// transport error, whose top-level message rarely says what went wrong.
#[must_use]
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}
