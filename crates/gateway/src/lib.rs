//! # whitebit-gateway
//!
//! The authenticating gateway: it sits in front of upstream services and lets through only
//! private requests that pass every check of `spec/errors.md`, in order.

pub mod clock;
pub mod config;
pub mod ip;
pub mod store;
