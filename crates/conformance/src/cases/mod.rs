//! The groups of cases, one file each.

pub(crate) mod errors;
pub(crate) mod fiat;
pub(crate) mod interop;
pub(crate) mod jwt;
pub(crate) mod nonces;
pub(crate) mod replay;
pub(crate) mod variants;
