//! Building signed requests: the body is serialised once, the payload is the standard
//! base64 of exactly those bytes, and the signature is the lowercase hex HMAC-SHA512 of the
//! payload string. Send `body` as the HTTP body unchanged.

use std::fmt;

use serde_json::{Map, Value};

use crate::encoding::base64_encode;
use crate::json::write_string;
use crate::mac::PayloadMac;

/// The fields the signer writes itself; callers may not pass them as parameters.
pub const RESERVED_FIELDS: [&str; 3] = ["request", "nonce", "nonceWindow"];

/// Why a request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A parameter used one of the names the signer writes (`request`, `nonce`,
    /// `nonceWindow`).
    #[error("parameter {0:?} is set by the signer; remove it from the parameters")]
    ReservedParameter(String),
    /// The endpoint path breaks the path rule ([`crate::path::normalize_path`]): no server
    /// following it would accept the request, and one that does not could route it elsewhere.
    #[error("the endpoint path {path:?} cannot be signed: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: crate::path::PathRejection,
    },
}

/// A request ready to send: body bytes and the two header values derived from them.
#[derive(Clone)]
pub struct SignedRequest {
    /// The exact HTTP body.
    pub body: Vec<u8>,
    /// `X-TXC-PAYLOAD`: standard padded base64 of `body`.
    pub payload: String,
    /// `X-TXC-SIGNATURE`: lowercase hex HMAC-SHA512 of `payload`.
    pub signature: String,
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Builds the body: `request`, `nonce`, `nonceWindow` (when given), then `params` in their
/// order, as compact JSON.
pub fn build_body(
    path: &str,
    nonce: u64,
    nonce_window: Option<bool>,
    params: &Map<String, Value>,
) -> Result<Vec<u8>, BuildError> {
    if let Err(reason) = crate::path::normalize_path(path) {
        return Err(BuildError::InvalidPath {
            path: path.to_owned(),
            reason,
        });
    }
    if let Some(name) = RESERVED_FIELDS
        .iter()
        .find(|name| params.contains_key(**name))
    {
        return Err(BuildError::ReservedParameter((*name).to_owned()));
    }
    let mut body = String::with_capacity(64 + path.len() + params.len() * 24);
    body.push_str("{\"request\":");
    write_string(path, &mut body);
    body.push_str(",\"nonce\":");
    body.push_str(&nonce.to_string());
    match nonce_window {
        Some(true) => body.push_str(",\"nonceWindow\":true"),
        Some(false) => body.push_str(",\"nonceWindow\":false"),
        None => {}
    }
    let mut out = body.into_bytes();
    for (name, value) in params {
        out.push(b',');
        let mut key = String::with_capacity(name.len() + 2);
        write_string(name, &mut key);
        out.extend_from_slice(key.as_bytes());
        out.push(b':');
        // Serialising a `Value` into a Vec cannot fail (no non-string map keys exist).
        if serde_json::to_writer(&mut out, value).is_err() {
            out.extend_from_slice(b"null");
        }
    }
    out.push(b'}');
    Ok(out)
}

/// Signs exact body bytes.
#[must_use]
pub fn sign_body(body: Vec<u8>, key: &dyn PayloadMac) -> SignedRequest {
    let payload = base64_encode(&body);
    let signature = key.sign(payload.as_bytes()).to_hex();
    SignedRequest {
        body,
        payload,
        signature,
    }
}

/// Builds and signs a request in one step.
pub fn sign_request(
    path: &str,
    nonce: u64,
    nonce_window: Option<bool>,
    params: &Map<String, Value>,
    key: &dyn PayloadMac,
) -> Result<SignedRequest, BuildError> {
    Ok(sign_body(
        build_body(path, nonce, nonce_window, params)?,
        key,
    ))
}
