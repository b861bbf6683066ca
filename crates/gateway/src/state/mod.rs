//! What the gateway holds in memory between requests: every key, the Fiat Gateway partners,
//! and the batched last-used times waiting to be written.

pub mod keys;
pub mod partners;
pub mod touch;
