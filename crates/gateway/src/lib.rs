//! # whitebit-gateway
//!
//! The authenticating gateway: it sits in front of upstream services and lets through only
//! private requests that pass every check of `docs/errors.md`, in order, forwarding exactly
//! the signed bytes. `wbauth serve` and `wbauth sandbox` run it.

pub mod clock;
pub mod config;
pub mod edge;
mod error;
pub mod ip;
pub mod ops;
pub mod runtime;
pub mod service;
pub mod state;
pub mod tokens;
pub mod verify;

// Old paths, kept while the facade is built.
pub use edge::{admin, server};
pub use runtime as app;
pub use runtime::sandbox;
pub use service::totp;
pub use verify::gateway as pipeline;

pub use error::GatewayError;
/// The stores, from their own crate.
pub use wbauth_store as store;
