//! # whitebit-gateway
//!
//! The authenticating gateway: it sits in front of upstream services and lets through only
//! private requests that pass every check of `docs/errors.md`, in order, forwarding exactly
//! the signed bytes. `wbauth serve` and `wbauth sandbox` run it.

pub mod admin;
pub mod app;
pub mod builtin;
pub mod clock;
pub mod config;
pub mod console;
mod error;
mod form;
pub mod forward;
pub mod health;
pub mod ip;
pub mod keys;
pub mod metrics;
pub mod partners;
pub mod pipeline;
pub mod rate;
pub mod routing;
pub mod sandbox;
pub mod server;
pub mod service;
pub mod throttle;
pub mod tokens;
pub mod totp;
pub mod touch;
pub mod verify;

pub use error::GatewayError;
/// The stores, from their own crate.
pub use wbauth_store as store;
