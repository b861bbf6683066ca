//! The verifier's pure checks, rows 3–12 of `docs/errors.md`, in order.
//!
//! Header values and the body go in; a [`CheckedRequest`] (rows 3–11 passed) or the first
//! failing row comes out. Row 12 needs the key's secret, so it is the separate step
//! [`CheckedRequest::verify_signature`], which the caller runs after looking the key up
//! (and which costs the same for an unknown key). Nothing here does IO.

use core::fmt;
use std::borrow::Cow;

use crate::encoding::base64_decode;
use crate::error::ApiError;
use crate::json::{self, JsonObject, JsonValue};
use crate::mac::{HmacSha512Key, PayloadMac, Signature};
use crate::nonce::{NonceMode, parse_nonce};
use crate::path::{PathRejection, normalize_path};

/// The path of the token endpoint, whose field checks differ (`docs/design-decisions.md` 20).
pub const JWT_ENDPOINT_PATH: &str = "/api/v4/jwt";

/// What an `X-TXC-*` header looked like on the wire (`docs/design-decisions.md` 2). Its `Debug` shows
/// the value's length only: the payload and signature never reach a log through it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    /// Absent, or present with an empty value.
    Missing,
    /// Sent more than once, or not visible ASCII.
    Invalid,
    /// One visible-ASCII value.
    Present(&'a str),
}

impl fmt::Debug for HeaderValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderValue::Missing => f.write_str("Missing"),
            HeaderValue::Invalid => f.write_str("Invalid"),
            HeaderValue::Present(value) => write!(f, "Present(<{} bytes>)", value.len()),
        }
    }
}

impl<'a> HeaderValue<'a> {
    /// Classifies all the values a request carried for one header name.
    pub fn from_values<I>(values: I) -> Self
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut values = values.into_iter();
        match (values.next(), values.next()) {
            (None, _) => HeaderValue::Missing,
            (Some(_), Some(_)) => HeaderValue::Invalid,
            (Some(value), None) => Self::from_value(value),
        }
    }

    /// Classifies a single header value.
    #[must_use]
    pub fn from_value(value: &'a [u8]) -> Self {
        if value.is_empty() {
            return HeaderValue::Missing;
        }
        // Visible ASCII only, checked without an early exit so that the loop vectorises.
        if !value
            .iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(0x21) < 0x5e))
        {
            return HeaderValue::Invalid;
        }
        match std::str::from_utf8(value) {
            Ok(text) => HeaderValue::Present(text),
            Err(_) => HeaderValue::Invalid,
        }
    }
}

/// How the body must relate to the decoded payload (`docs/interop.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum BodyMatch {
    /// Byte for byte (the default, as the live service).
    #[default]
    Exact,
    /// The same JSON value (for clients that re-serialise the body).
    Json,
}

/// What the verifier is given. `Debug` shows no header value and no body byte.
#[derive(Clone, Copy)]
pub struct RequestParts<'a> {
    /// `X-TXC-APIKEY`.
    pub api_key: HeaderValue<'a>,
    /// `X-TXC-PAYLOAD`.
    pub payload: HeaderValue<'a>,
    /// `X-TXC-SIGNATURE`.
    pub signature: HeaderValue<'a>,
    /// The request body as received.
    pub body: &'a [u8],
    /// The request target's path, with the query string if it had one.
    pub path: &'a str,
}

impl fmt::Debug for RequestParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestParts")
            .field("api_key", &self.api_key)
            .field("payload", &self.payload)
            .field("signature", &self.signature)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("path", &self.path)
            .finish()
    }
}

/// A rejection from the verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A row of the private-API catalogue.
    Api(ApiError),
    /// Token endpoint only: rows 7 and 9 evaluated together (`docs/design-decisions.md` 20).
    MissingFields {
        /// `request` is missing (or not a string).
        request: bool,
        /// `nonce` is missing.
        nonce: bool,
    },
}

impl From<ApiError> for Rejection {
    fn from(e: ApiError) -> Self {
        Rejection::Api(e)
    }
}

/// A request that passed rows 3–11: its parts are well-formed and its fields parsed. `Debug`
/// shows neither the payload nor the signature.
pub struct CheckedRequest<'a> {
    api_key: Option<&'a str>,
    payload: &'a str,
    signature: Option<Signature>,
    decoded: Vec<u8>,
    path: String,
    nonce: u64,
    nonce_window: Option<bool>,
}

impl fmt::Debug for CheckedRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedRequest")
            .field("api_key", &self.api_key)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("signature", &self.signature)
            .field("path", &self.path)
            .field("nonce", &self.nonce)
            .field("nonce_window", &self.nonce_window)
            .finish_non_exhaustive()
    }
}

/// Runs rows 3–11 on a request; see the module docs.
///
/// `path` is compared with `request` after [`normalize_path`] on both sides. On the token
/// endpoint ([`JWT_ENDPOINT_PATH`]) rows 7 and 9 are reported together as
/// [`Rejection::MissingFields`].
pub fn check_request<'a>(
    parts: &RequestParts<'a>,
    body_match: BodyMatch,
) -> Result<CheckedRequest<'a>, Rejection> {
    // Rows 3–5: presence. Invalid (duplicated, non-ASCII) values pass here and fail at the
    // row their header belongs to (`docs/design-decisions.md` 2).
    if parts.api_key == HeaderValue::Missing {
        return Err(ApiError::ApiKeyNotProvided.into());
    }
    if parts.payload == HeaderValue::Missing {
        return Err(ApiError::PayloadNotProvided.into());
    }
    if parts.signature == HeaderValue::Missing {
        return Err(ApiError::SignatureNotProvided.into());
    }

    // Row 6: payload decodes, matches the body, and is a JSON object without duplicates.
    let HeaderValue::Present(payload) = parts.payload else {
        return Err(ApiError::InvalidPayload.into());
    };
    let decoded = decode_payload(payload)?;
    let fields = json::parse_object(&decoded).map_err(|_| ApiError::InvalidPayload)?;
    let body_matches = match body_match {
        BodyMatch::Exact => decoded == parts.body,
        BodyMatch::Json => {
            matches!(json::parse(parts.body), Ok(JsonValue::Object(body)) if fields.same_members(&body))
        }
    };
    if !body_matches {
        return Err(ApiError::InvalidPayload.into());
    }

    let (path, nonce, nonce_window) = check_fields(&fields, parts.path)?;

    let api_key = match parts.api_key {
        HeaderValue::Present(key) => Some(key),
        _ => None,
    };
    let signature = match parts.signature {
        HeaderValue::Present(sig) => Signature::from_hex(sig.as_bytes()),
        _ => None,
    };
    Ok(CheckedRequest {
        api_key,
        payload,
        signature,
        decoded,
        path,
        nonce,
        nonce_window,
    })
}

fn present<'v, 'a>(fields: &'v JsonObject<'a>, name: &str) -> Option<&'v JsonValue<'a>> {
    fields.get(name).filter(|v| !matches!(v, JsonValue::Null))
}

// The verdicts of rows 6–12, one function each: `check_request` and `verify_signature` run
// them in order, and the doctor (`crate::doctor`) calls the same functions to explain a
// request, so the two cannot disagree about it.

/// Row 6, first part: `X-TXC-PAYLOAD` decoded as strict standard base64 (padding optional).
pub fn decode_payload(payload: &str) -> Result<Vec<u8>, ApiError> {
    base64_decode(payload.as_bytes()).ok_or(ApiError::InvalidPayload)
}

/// Row 7: `request`, present and a string.
pub fn request_field<'v>(fields: &'v JsonObject<'_>) -> Result<&'v str, ApiError> {
    match present(fields, "request") {
        Some(JsonValue::String(s)) => Ok(s.as_ref()),
        _ => Err(ApiError::RequestNotProvided),
    }
}

/// Row 8: the URL path and `request` both pass the path rule and are equal once normalised;
/// returns the normalised path.
pub fn request_path(url_path: &str, request: &str) -> Result<String, ApiError> {
    same_path(normalize_path(url_path), request)
}

/// Row 8 with the URL path already normalised.
fn same_path(url: Result<Cow<'_, str>, PathRejection>, request: &str) -> Result<String, ApiError> {
    match (url, normalize_path(request)) {
        (Ok(url), Ok(req)) if url == req => Ok(url.into_owned()),
        _ => Err(ApiError::RequestPathMismatch),
    }
}

/// Rows 9–10: `nonce`, present and a valid nonce ([`parse_nonce`]).
pub fn nonce_field(fields: &JsonObject<'_>) -> Result<u64, ApiError> {
    parse_nonce(present(fields, "nonce").ok_or(ApiError::NonceNotProvided)?)
}

/// Row 11: `nonceWindow`, absent or a JSON boolean.
pub fn nonce_window_field(fields: &JsonObject<'_>) -> Result<Option<bool>, ApiError> {
    match fields.get("nonceWindow") {
        None => Ok(None),
        Some(JsonValue::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::InvalidNonceWindow),
    }
}

/// Row 12's comparison, in constant time: whether `signature` (`X-TXC-SIGNATURE` parsed by
/// [`Signature::from_hex`]; `None` when it is not 128 hex digits) is the MAC of the
/// `X-TXC-PAYLOAD` value exactly as received. The MAC is computed either way.
#[must_use]
pub fn signature_matches(
    mac: &dyn PayloadMac,
    payload: &str,
    signature: Option<&Signature>,
) -> bool {
    let expected = mac.sign(payload.as_bytes());
    signature.is_some_and(|given| given.ct_eq(&expected))
}

/// Rows 7–11.
fn check_fields(
    fields: &JsonObject<'_>,
    url_path: &str,
) -> Result<(String, u64, Option<bool>), Rejection> {
    let request = request_field(fields).ok();
    let nonce_missing = present(fields, "nonce").is_none();
    let url = normalize_path(url_path);
    let on_jwt_endpoint = url.as_deref() == Ok(JWT_ENDPOINT_PATH);

    // Row 7 (and 9 with it on the token endpoint).
    let Some(request) = request else {
        if on_jwt_endpoint {
            return Err(Rejection::MissingFields {
                request: true,
                nonce: nonce_missing,
            });
        }
        return Err(ApiError::RequestNotProvided.into());
    };
    if on_jwt_endpoint && nonce_missing {
        return Err(Rejection::MissingFields {
            request: false,
            nonce: true,
        });
    }

    let path = same_path(url, request)?; // Row 8.
    let nonce = nonce_field(fields)?; // Rows 9–10.
    let nonce_window = nonce_window_field(fields)?; // Row 11.
    Ok((path, nonce, nonce_window))
}

impl<'a> CheckedRequest<'a> {
    /// The API key, or `None` when the header was invalid (then no key can match and
    /// row 12 fails).
    #[must_use]
    pub fn api_key(&self) -> Option<&'a str> {
        self.api_key
    }

    /// The normalised path (equal to the normalised `request`).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The nonce.
    #[must_use]
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// `nonceWindow` as sent (`None` when absent).
    #[must_use]
    pub fn nonce_window(&self) -> Option<bool> {
        self.nonce_window
    }

    /// The nonce mode the request asked for.
    #[must_use]
    pub fn nonce_mode(&self) -> NonceMode {
        NonceMode::from_window_flag(self.nonce_window.unwrap_or(false))
    }

    /// The decoded payload: exactly the bytes that were signed, and the only bytes that may
    /// be forwarded.
    #[must_use]
    pub fn decoded_payload(&self) -> &[u8] {
        &self.decoded
    }

    /// Row 12: verifies the signature with the key's MAC, or with a dummy key when the key
    /// is unknown (`None`), so both cost one HMAC. The MAC is computed over the
    /// `X-TXC-PAYLOAD` header value exactly as received.
    pub fn verify_signature(&self, key: Option<&dyn PayloadMac>) -> Result<(), ApiError> {
        thread_local! {
            static DUMMY: HmacSha512Key = HmacSha512Key::dummy();
        }
        let signature = self.signature.as_ref();
        let matches = match key {
            Some(mac) => signature_matches(mac, self.payload, signature),
            None => DUMMY.with(|dummy| signature_matches(dummy, self.payload, signature)),
        };
        if matches && key.is_some() && self.api_key.is_some() {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    /// Consumes the request, returning the decoded payload.
    #[must_use]
    pub fn into_decoded_payload(self) -> Vec<u8> {
        self.decoded
    }
}
