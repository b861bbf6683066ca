//! # whitebit-gateway
//!
//! The authenticating gateway: it sits in front of upstream services and lets through only
//! private requests that pass every check of `docs/errors.md`, in order, forwarding exactly
//! the signed bytes. `wbauth serve` and `wbauth sandbox` run it.

// The layers, each importing only from those below it:
//   runtime → edge → service, verify → state, tokens, ops → config, clock, ip → store → protocol
pub mod clock;
pub mod config;
pub(crate) mod edge;
mod error;
pub(crate) mod ip;
pub(crate) mod ops;
mod pem_files;
pub(crate) mod runtime;
pub(crate) mod service;
pub(crate) mod state;
pub mod tokens;
pub(crate) mod verify;

// ---- The facade: everything a program outside this crate uses ------------------------------

pub use error::GatewayError;
/// The stores, from their own crate.
pub use wbauth_store as store;

// Running a gateway: open the stores, listen, run until shutdown.
pub use runtime::{
    Addresses, AdminListener, Answers, Fault, Faults, Launch, Listening, Options, ServeClock,
    Stores, Teaching, TempDataDir, bind, check_certificates,
};

/// The offline sandbox: its configuration and demo keys.
pub mod sandbox {
    pub use crate::runtime::sandbox::{
        SandboxOptions, sandbox_config, seed_demo_key, seed_extra_keys,
    };
}

// The verifier as a library: the shared state, one request in, the refusal out; the public
// router over it (for in-process tests), and the HTTP/1.1 settings and serve loop it runs on.
pub use edge::listener::{HttpSettings, accept};
pub use edge::server::public_router;
pub use runtime::{build_gateway, open_stores};
pub use service::reload::LogFilter;
pub use verify::{Gateway, Incoming, Refusal, Verified};

/// The admin API's conventions: its token and the header naming who acts.
pub mod admin {
    pub use crate::edge::admin::{ACTOR_HEADER, ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE};
}

/// What the admin API answers with (JSON), for typed clients.
pub mod views {
    pub use crate::service::{
        AccountView, AuditView, KeyState, KeyView, PartnerState, PartnerView, TwoFactor,
    };
}

/// Time-based one-time codes (RFC 6238) as the gateway checks them.
pub mod totp {
    pub use crate::service::totp::{base32_encode, code_at_step, step_of};
}

/// The crate README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
