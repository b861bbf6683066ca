//! # whitebit-client
//!
//! An async client for the WhiteBIT-style private HTTP API. It signs every request with
//! [`whitebit_auth`], sends exactly the bytes it signed, and turns every error shape the
//! service sends into a typed [`Error`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), whitebit_client::Error> {
//! use serde_json::json;
//! use whitebit_client::{Client, RetryPolicy};
//!
//! let client = Client::builder()
//!     .credentials("public-key", "secret")
//!     .base_url("http://127.0.0.1:8080")
//!     .retry(RetryPolicy::new(3))
//!     .build()?;
//! let balance = client
//!     .post("/api/v4/trade-account/balance", json!({ "ticker": "BTC" }))
//!     .await?;
//! println!("{balance}");
//! # Ok(()) }
//! ```
//!
//! Nonces come from a [`NonceSource`] (`max(now_ms, last + 1)`, shared by clones and, if you
//! pass it, by several clients of one key). Window mode (`nonceWindow: true`) is the
//! default; [`ClientBuilder::strict_nonces`] switches to strict mode.

mod client;
mod error;
mod fiat;
mod nonce;
mod retry;

pub use client::{
    BaseUrl, Client, ClientBuilder, EU_URL, GLOBAL_URL, IssuedToken, RequestBuilder, headers,
};
pub use error::{ApiFailure, Error, ErrorKind, causes};
pub use fiat::{FiatCredentials, FiatToken};
pub use nonce::{NonceSource, unix_ms};
pub use retry::{RetryPolicy, is_retryable};
pub use secrecy::{ExposeSecret, SecretString};
pub use whitebit_auth;
pub use whitebit_auth::NonceMode;
/// Offset (server − local, ms) from a whole-second server time.
pub use whitebit_auth::time::estimate_offset_ms;

/// The crate README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
