//! The nonce stores.

pub(crate) mod journal;
