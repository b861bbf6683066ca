//! # whitebit-auth
//!
//! The sans-IO core of the WhiteBIT-style private HTTP API authentication scheme, shared by
//! the client that signs requests and the gateway that verifies them. No async runtime, no
//! HTTP, no storage: bytes and numbers in, typed outcomes out.
//!
//! - [`sign`]: build the body once, `X-TXC-PAYLOAD` = base64(body),
//!   `X-TXC-SIGNATURE` = hex(HMAC-SHA512(payload, secret)).
//! - [`verify`]: the verifier's checks 3–12 of `docs/errors.md`, in order.
//! - [`nonce`]: nonce parsing and the strict and window rules as pure functions.
//! - [`error`]: the error catalogue; every variant knows its status and exact body.
//! - [`fiat`]: Fiat Gateway partner tokens (HS256, millisecond claims).
//! - [`headers`]: the header names, written once.
//! - [`time`]: Unix milliseconds as UTC calendar time, the one date formatter.
//! - [`mac`], [`encoding`], [`json`], [`path`]: the building blocks.
//!
//! ```
//! use serde_json::{Map, json};
//! use whitebit_auth::mac::HmacSha512Key;
//! use whitebit_auth::sign::sign_request;
//! use whitebit_auth::verify::{BodyMatch, HeaderValue, RequestParts, check_request};
//!
//! let key = HmacSha512Key::new(b"secret");
//! let mut params = Map::new();
//! params.insert("ticker".into(), json!("BTC"));
//! let signed = sign_request("/api/v4/trade-account/balance", 1_700_000_000_000, Some(true), &params, &key)?;
//!
//! let parts = RequestParts {
//!     api_key: HeaderValue::Present("public-key"),
//!     payload: HeaderValue::Present(&signed.payload),
//!     signature: HeaderValue::Present(&signed.signature),
//!     body: &signed.body,
//!     path: "/api/v4/trade-account/balance",
//! };
//! let checked = check_request(&parts, BodyMatch::Exact).expect("well-formed");
//! assert_eq!(checked.nonce(), 1_700_000_000_000);
//! checked.verify_signature(Some(&key)).expect("signed with this key");
//! # Ok::<(), whitebit_auth::sign::BuildError>(())
//! ```

pub mod doctor;
pub mod encoding;
pub mod error;
pub mod fiat;
pub mod headers;
pub mod json;
pub mod mac;
pub mod nonce;
pub mod path;
pub mod sign;
pub mod time;
pub mod verify;

pub use error::{ApiError, JwtEndpointError, TokenRejection};
pub use mac::{HmacSha512Key, PayloadMac, Signature, verify_mac};
pub use nonce::NonceMode;
pub use sign::SignedRequest;
pub use verify::BodyMatch;

/// The crate README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
