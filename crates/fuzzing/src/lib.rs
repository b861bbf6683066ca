//! # wbauth-fuzzing
//!
//! The fuzz harnesses: one function per cargo-fuzz target of `fuzz/`, each taking arbitrary
//! bytes, returning normally for every input and asserting its invariants inside (a failed
//! assertion is a crash the fuzzer reports). The same functions replay the committed corpus
//! on stable in `tests/corpus.rs`.
//!
//! Inputs are split on NUL bytes into fields (the last field takes the rest, NULs included);
//! the first byte of an input is a set of flags that let the harness build what a fuzzer cannot
//! guess (a payload that is the base64 of the body, a valid HMAC, a signed token), so the
//! checks after them are reached too.
//!
//! - [`request`]: the private-request verifier of `whitebit-auth` (rows 3–12), the doctor, JSON,
//!   paths and nonces.
//! - [`jwt`]: Fiat Gateway partner tokens and the gateway's own issued tokens.
//! - [`config`]: the gateway's TOML configuration with its overrides and validation.
//! - [`service`]: the whole public axum service, built like the sandbox.

/// The API key of the conformance vectors (`crates/protocol/tests/vectors/signing.json`).
pub const API_KEY: &str = "4e32e2ba2e3b4b0b9d6f5c1a7e8f9a0b";
/// The API secret of the conformance vectors: the harnesses sign with it.
pub const API_SECRET: &str = "a5f3c1e9d7b2460f8e1c3a5b7d9f0e2c";
/// The Enc Key of the Fiat Gateway vectors (`fiat-jwt.json`).
pub const ENC_KEY: &str = "enc-5b1d9c7e2f4a6b8d0e1f3a5c7e9b1d3f";
/// The Auth Key of the Fiat Gateway vectors.
pub const AUTH_KEY: &str = "auth-9a8b7c6d5e4f3a2b1c0d";
/// The time the service harness's clock starts at, and the base of the token harness's clock
/// (Unix milliseconds; the vectors' tokens are issued at this instant).
pub const T0_MS: u64 = 1_700_000_000_000;

/// How far a harness got with one input (for tests that check that the seeds reach deep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed (a verified request, a valid token, a usable configuration, a 200).
    Accepted,
    /// The input was refused with a documented answer.
    Rejected,
}

/// Splits `data` into `N` fields on NUL bytes; the last field is the rest (NULs included);
/// missing fields are empty.
fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for slot in out.iter_mut().take(N.saturating_sub(1)) {
        match rest.iter().position(|&b| b == 0) {
            Some(at) => {
                *slot = &rest[..at];
                rest = &rest[at + 1..];
            }
            None => {
                *slot = rest;
                rest = &rest[rest.len()..];
            }
        }
    }
    if let Some(last) = out.last_mut() {
        *last = rest;
    }
    out
}

fn flags_and_rest(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&flags, rest)) => (flags, rest),
        None => (0, data),
    }
}

mod config;
mod jwt;
mod request;
mod service;

pub use config::config;
pub use jwt::jwt;
pub use request::request;
pub use service::{ServiceHarness, service};
